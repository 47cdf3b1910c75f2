"""The paper and import-run admin pages, as an operator uses them."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from papers import services
from papers.models import ImportRun, Paper
from tests.papers import feeds

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:papers_paper_changelist")


@pytest.fixture
def papers():
    services.import_bytes(feeds.daily_json(feeds.samples(3)), fmt="daily-json", source_name="day.json")
    services.import_bytes(feeds.text_page(feeds.samples(5)[3:]).encode(), fmt="text", source_name="page.txt")
    Paper.objects.filter(source="text").update(first_seen_at=timezone.now() - timedelta(days=40))
    Paper.objects.filter(key="2611.10001").update(authors=["Grace Hopper"])


def titles(response):
    return sorted(paper.title for paper in response.context["cl"].result_list)


def test_search_by_title_author_and_id(admin_client, papers):
    assert titles(admin_client.get(CHANGELIST, {"q": '"number 4"'})) == [feeds.samples(5)[4].title]
    assert titles(admin_client.get(CHANGELIST, {"q": "Hopper"})) == [feeds.samples(2)[1].title]
    assert titles(admin_client.get(CHANGELIST, {"q": "2611.10002"})) == [feeds.samples(3)[2].title]


def test_filter_by_source_and_date(admin_client, papers):
    assert len(titles(admin_client.get(CHANGELIST, {"source": "text"}))) == 2
    recent = admin_client.get(CHANGELIST, {"first_seen_at__gte": (timezone.now() - timedelta(days=7)).isoformat()})
    assert len(titles(recent)) == 3


def test_list_query_count_does_not_grow_with_papers(admin_client, papers, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        admin_client.get(CHANGELIST)
    services.import_bytes(feeds.daily_json(feeds.samples(40)), fmt="daily-json", source_name="more.json")
    with django_assert_max_num_queries(12):
        response = admin_client.get(CHANGELIST)
    # 40 papers: the two the text page brought (no ids) are two of the 40 (same titles).
    assert len(response.context["cl"].result_list) == 40


def test_markup_in_titles_is_escaped(admin_client):
    services.import_bytes(
        feeds.text_page([feeds.Sample("", "Why x < y: the <think> token & friends", "A " * 100 + ".")]).encode(),
        fmt="text",
        source_name="page.txt",
    )
    legacy = Paper.objects.create(key="legacy", title="<script>alert('t')</script><b>Bold</b>", abstract="<img src=x>")
    page = admin_client.get(CHANGELIST).content.decode()
    assert "Why x &lt; y: the &lt;think&gt; token &amp; friends" in page
    assert "&lt;script&gt;alert(&#x27;t&#x27;)&lt;/script&gt;" in page
    assert "<script>alert" not in page and "<b>Bold" not in page
    change = admin_client.get(reverse("admin:papers_paper_change", args=[legacy.pk])).content.decode()
    assert "<script>alert" not in change and "<img src=x>" not in change


def test_import_runs_are_listed_read_only(admin_client):
    with pytest.raises(services.ImportFailed):
        services.import_bytes(b"[{", fmt="auto", source_name="broken.json")
    response = admin_client.get(reverse("admin:papers_importrun_changelist"))
    assert response.status_code == 200
    assert "broken.json" in response.content.decode() and "JSON ends early" in response.content.decode()
    run = ImportRun.objects.get()
    assert admin_client.get(reverse("admin:papers_importrun_add")).status_code == 403
    assert (
        admin_client.post(reverse("admin:papers_importrun_change", args=[run.pk]), {"source": "x"}).status_code == 403
    )
