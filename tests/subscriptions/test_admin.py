import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from subscriptions import services
from subscriptions.models import Feedback, Subscriber, Topic

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    user = User.objects.create_superuser("op", "op@example.org", "pw")
    client.force_login(user)
    return client


def _people(n, *, start=0, topics=("rl", "graphs")):
    for i in range(start, start + n):
        services.subscribe(
            email=f"p{i}@example.org", topics=list(topics), authors=[], frequency="weekly", weekday=0, timezone="UTC"
        )


def _queries(client, url):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured), response


@pytest.mark.parametrize(
    "url", ["/admin/subscriptions/subscriber/", "/admin/subscriptions/topic/", "/admin/subscriptions/feedback/"]
)
def test_list_pages_run_the_same_number_of_queries_for_3_or_30_rows(staff_client, make_paper, url):
    def add(n, start):
        _people(n, start=start, topics=("rl", f"topic {start}"))
        for i, subscriber in enumerate(Subscriber.objects.filter(feedback__isnull=True)[:n]):
            Feedback.objects.create(
                subscriber=subscriber,
                paper=make_paper(f"paper {start}-{i}"),
                vote=1,
                topic=Topic.objects.get(query="rl"),
            )

    add(3, 0)
    few, _ = _queries(staff_client, url)
    add(27, 100)
    many, _ = _queries(staff_client, url)
    assert few == many


def test_topic_list_shows_subscriber_counts(staff_client):
    _people(3, topics=("rl",))
    _people(1, start=10, topics=("graphs",))
    services.confirm(Subscriber.objects.get(email="p0@example.org"))
    _, response = _queries(staff_client, "/admin/subscriptions/topic/?o=2")
    rows = response.context["cl"].result_list
    counts = {t.query: (t.subscriber_count, t.active_subscriber_count) for t in rows}
    assert counts == {"rl": (3, 1), "graphs": (1, 0)}


def test_subscriber_search_and_status_filter(staff_client):
    _people(2, topics=("rl",))
    _people(1, start=5, topics=("graph neural networks",))
    services.confirm(Subscriber.objects.get(email="p5@example.org"))
    Subscriber.objects.filter(email="p1@example.org").update(status="bounced")

    def emails(query):
        _, response = _queries(staff_client, "/admin/subscriptions/subscriber/" + query)
        return sorted(s.email for s in response.context["cl"].result_list)

    assert emails("?q=graph") == ["p5@example.org"]
    assert emails("?status__exact=active") == ["p5@example.org"]
    assert emails("?status__exact=bounced") == ["p1@example.org"]
    assert emails("?status__exact=pending") == ["p0@example.org"]
    html = staff_client.get("/admin/subscriptions/subscriber/").content.decode()
    for status in ("Pending", "Active", "Paused", "Unsubscribed", "Bounced"):
        assert f">{status}</a>" in html


def test_subscriber_change_page_shows_topics_inline(staff_client):
    _people(1, topics=("rl", "graphs"))
    subscriber = Subscriber.objects.get()
    response = staff_client.get(f"/admin/subscriptions/subscriber/{subscriber.id}/change/")
    assert response.status_code == 200
    assert response.context["inline_admin_formsets"][0].formset.queryset.count() == 2


def test_admin_actions_call_the_services(staff_client):
    _people(2, topics=("rl",))
    for subscriber in Subscriber.objects.all():
        services.confirm(subscriber)
    ids = list(Subscriber.objects.values_list("id", flat=True))
    response = staff_client.post(
        "/admin/subscriptions/subscriber/", {"action": "pause_selected", "_selected_action": ids}
    )
    assert response.status_code == 302
    assert set(Subscriber.objects.values_list("status", flat=True)) == {"paused"}
    staff_client.post("/admin/subscriptions/subscriber/", {"action": "unsubscribe_selected", "_selected_action": ids})
    assert set(Subscriber.objects.values_list("status", flat=True)) == {"unsubscribed"}
    assert all(s.unsubscribed_at for s in Subscriber.objects.all())


def test_subscriber_list_links_to_preview_and_send_test_of_their_next_digest(staff_client):
    _people(1, topics=("rl",))
    html = staff_client.get("/admin/subscriptions/subscriber/").content.decode()
    assert '<a href="/admin/dashboard/preview/?subscriber=p0%40example.org">Preview</a>' in html
    assert '<a href="/admin/dashboard/send-test/?subscriber=p0%40example.org">Send test</a>' in html
    preview = staff_client.get("/admin/dashboard/preview/?subscriber=p0%40example.org")
    assert preview.status_code == 200


def test_a_readers_votes_show_on_their_page_with_the_section_and_a_fixed_number_of_queries(staff_client, make_paper):
    _people(1, topics=("rl", "graphs"))
    reader = Subscriber.objects.get()
    url = f"/admin/subscriptions/subscriber/{reader.id}/change/"
    Feedback.objects.create(
        subscriber=reader, paper=make_paper("Policy Gradients Revisited"), vote=1, topic=Topic.objects.get(query="rl")
    )
    few, _ = _queries(staff_client, url)
    Feedback.objects.create(
        subscriber=reader,
        paper=make_paper("Graph Transformers at Scale"),
        vote=-1,
        topic=Topic.objects.get(query="graphs"),
    )
    many, response = _queries(staff_client, url)
    html = response.content.decode()
    assert "Policy Gradients Revisited" in html and "Graph Transformers at Scale" in html
    assert "👎" in html and "👍" in html
    assert few == many
