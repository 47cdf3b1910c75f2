import re
import time
from unittest import mock

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from subscriptions import services
from subscriptions.links import confirm_url, preferences_url, unsubscribe_url
from subscriptions.models import Subscriber
from subscriptions.tokens import make_token

pytestmark = pytest.mark.django_db

FORM = {
    "email": "ada@example.org",
    "topics": "Diffusion models\nreinforcement learning",
    "authors": "Ann Lee",
    "frequency": "weekly",
    "weekday": "0",
    "timezone": "Europe/Berlin",
    "website": "",
}


def path_of(url):
    return url.replace("http://testserver", "")


@pytest.fixture
def post_signup(client, django_capture_on_commit_callbacks):
    def post(c=None, **overrides):
        with django_capture_on_commit_callbacks(execute=True):
            return (c or client).post("/", {**FORM, **overrides})

    return post


@pytest.fixture
def active(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        services.subscribe(
            email="ada@example.org", topics=["rl"], authors=[], frequency="weekly", weekday=0, timezone="UTC"
        )
    subscriber = Subscriber.objects.get()
    services.confirm(subscriber)
    mail.outbox.clear()
    return subscriber


# --- Signup page ---------------------------------------------------------------------


def test_signup_page_has_the_form_suggestions_and_no_third_party_assets(client):
    response = client.get("/subscribe/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Get trending papers in your email inbox" in html
    for name in ("email", "topics", "authors", "frequency", "weekday", "timezone"):
        assert f'name="{name}"' in html
    assert 'data-topic="diffusion models"' in html
    assert 'aria-live="polite"' in html
    assert "csrfmiddlewaretoken" in html
    # Every src/href on the page is our own (relative) or a data: URI.
    assert not re.findall(r'(?:src|href)="(?:https?:)?//', html)


def test_signup_sends_a_confirmation_and_shows_check_your_inbox(post_signup):
    response = post_signup()
    assert response.status_code == 200
    assert b"Check your inbox" in response.content
    assert Subscriber.objects.get().status == "pending"
    assert len(mail.outbox) == 1
    link = re.search(r"http://testserver(/confirm/\S+)", mail.outbox[0].body).group(1)
    # The same signed payload (a token made a second later differs only in its timestamp).
    assert link.split(":")[0] == path_of(confirm_url(Subscriber.objects.get())).split(":")[0]


def test_csrf_is_required_on_the_signup_form():
    client = Client(enforce_csrf_checks=True)
    assert client.post("/", FORM).status_code == 403
    assert not Subscriber.objects.exists()


def test_same_response_whether_or_not_the_address_is_known(post_signup, active):
    known = post_signup()
    mail_for_known = [m.subject for m in mail.outbox]
    mail.outbox.clear()
    Subscriber.objects.all().delete()
    unknown = post_signup()
    assert (known.status_code, known.content) == (unknown.status_code, unknown.content)
    assert mail_for_known == ["Your Paper Digest subscription"]
    assert [m.subject for m in mail.outbox] == ["Confirm your Paper Digest subscription"]


def test_honeypot_gets_the_same_page_and_nothing_happens(post_signup):
    normal = Client().post("/", {**FORM, "email": "b@example.org"})
    Subscriber.objects.all().delete()
    mail.outbox.clear()
    bot = post_signup(email="b@example.org", website="http://spam.example")
    assert (bot.status_code, bot.content) == (normal.status_code, normal.content)
    assert not Subscriber.objects.exists()
    assert mail.outbox == []


def test_rate_limit_per_address_stops_mail_without_telling(post_signup, settings):
    settings.SIGNUP_RATE_PER_ADDRESS = "2/h"
    responses = [post_signup(c=Client(REMOTE_ADDR=f"10.0.0.{i}")) for i in range(4)]
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert len(mail.outbox) == 2


def test_rate_limit_per_ip(post_signup, settings):
    settings.SIGNUP_RATE_PER_IP = "3/h"
    codes = [post_signup(email=f"p{i}@example.org").status_code for i in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    assert len(mail.outbox) == 3
    other = post_signup(c=Client(REMOTE_ADDR="192.0.2.7"), email="q@example.org")
    assert other.status_code == 200


@pytest.mark.parametrize(
    "email",
    [
        "ada@example.org\nBcc: victim@example.org",
        "ada@example.org\r\nSubject: hi",
        "ada@example.org%0aBcc:victim@example.org",
        "Ada <ada@example.org>, victim@example.org",
    ],
)
def test_header_injection_in_the_address_is_refused(post_signup, email):
    response = post_signup(email=email)
    assert response.status_code == 400
    assert b"Enter a valid email address" in response.content
    assert not Subscriber.objects.exists() and mail.outbox == []


def test_header_injection_in_topics_authors_and_timezone_stays_in_the_body(post_signup):
    response = post_signup(
        topics="graphs\r\nBcc: victim@example.org\r\nSubject: pwned",
        authors="Ann\nBcc: victim2@example.org",
    )
    assert response.status_code == 200
    message = mail.outbox[0]
    raw = message.message().as_bytes().decode()
    headers = raw.split("\n\n", 1)[0]
    assert "victim" not in headers and "pwned" not in headers
    assert message.to == ["ada@example.org"] and message.bcc == [] and message.cc == []
    assert message.subject == "Confirm your Paper Digest subscription"
    bad_tz = post_signup(email="b@example.org", timezone="UTC\r\nBcc: victim@example.org")
    assert bad_tz.status_code == 400 and b"Unknown time zone" in bad_tz.content


def test_very_long_and_non_ascii_topics(post_signup):
    long_topic = "Sehr lange Überschrift über maschinelles Lernen " * 10
    refused = post_signup(topics=f"{long_topic}\n大规模语言模型")
    assert refused.status_code == 400 and not Subscriber.objects.exists()
    assert "has 479 characters; a topic can have at most 200" in refused.content.decode()
    assert "大规模语言模型" in refused.content.decode()  # what was typed is shown back, nothing lost
    response = post_signup(topics=f"{long_topic[:200]}\n大规模语言模型\nκβαντική πληροφορία")
    assert response.status_code == 200
    queries = sorted(t.query for t in Subscriber.objects.get().topics.all())
    assert len(queries) == 3 and all(len(q) <= 200 for q in queries)
    assert "大规模语言模型" in queries and "κβαντική πληροφορία" in queries
    assert any(q.startswith("sehr lange überschrift") for q in queries)
    assert "大规模语言模型" in mail.outbox[0].body


def test_bad_values_are_shown_back_with_what_was_typed(post_signup):
    response = post_signup(email="not-an-address", topics="  \n ", authors="", timezone="Nowhere/City")
    assert response.status_code == 400
    html = response.content.decode()
    assert "Enter a valid email address" in html
    assert "Add at least one topic" in html
    assert "Unknown time zone" in html
    assert 'value="not-an-address"' in html and 'aria-invalid="true"' in html


def test_too_many_topics_is_an_error(post_signup):
    response = post_signup(topics="\n".join(f"topic {i}" for i in range(25)))
    assert response.status_code == 400 and b"at most 20 topics" in response.content


# --- Preview ---------------------------------------------------------------------------


def test_preview_json_returns_this_weeks_papers(client, make_paper):
    make_paper("Diffusion models <b>for</b> video", "We study diffusion.", upvotes=5)
    make_paper("Protein folding", "biology")
    response = client.get("/preview.json", {"topics": "Diffusion Models\n", "authors": ""})
    assert response.status_code == 200
    data = response.json()
    assert data["topics"] == ["diffusion models"]
    assert [p["title"] for p in data["papers"]] == ["Diffusion models <b>for</b> video"]
    assert data["papers"][0]["url"].startswith("https://") and data["papers"][0]["why"]


def test_preview_json_is_rate_limited(client, settings):
    settings.PREVIEW_RATE_PER_IP = "2/m"
    codes = [client.get("/preview.json", {"topics": "x"}).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_preview_without_javascript_is_a_form_post(client, make_paper):
    make_paper("Diffusion models <script>alert(1)</script>", "diffusion")
    response = client.post("/", {**FORM, "email": "", "topics": "diffusion models", "action": "preview"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "Your digest this week" in html
    assert "Diffusion models &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Enter a valid email" not in html  # a preview is not a submit
    assert not Subscriber.objects.exists() and mail.outbox == []


# --- Confirmation ------------------------------------------------------------------------


def test_confirm_get_shows_a_button_and_post_confirms(client, post_signup):
    post_signup()
    subscriber = Subscriber.objects.get()
    url = path_of(confirm_url(subscriber))
    page = client.get(url)
    assert page.status_code == 200 and b"Yes, send me the digest" in page.content
    subscriber.refresh_from_db()
    assert subscriber.status == "pending"  # a mail scanner's GET subscribes nobody
    response = client.post(url)
    assert response.status_code == 302 and "/manage/" in response["Location"]
    subscriber.refresh_from_db()
    assert subscriber.status == "active"
    assert b"You&#x27;re subscribed" in client.get(response["Location"]).content
    assert len(mail.outbox) == 1  # nothing but the confirmation so far


def test_expired_confirmation_link_offers_a_new_one(client, post_signup, django_capture_on_commit_callbacks):
    post_signup()
    subscriber = Subscriber.objects.get()
    with mock.patch("django.core.signing.time.time", return_value=time.time() - 8 * 24 * 3600):
        old = path_of(confirm_url(subscriber))
    page = client.get(old)
    assert page.status_code == 200 and b"This link has expired" in page.content
    assert client.post(old).status_code == 200
    subscriber.refresh_from_db()
    assert subscriber.status == "pending"  # an expired link confirms nothing
    mail.outbox.clear()
    resend = re.search(r'action="([^"]+/resend/)"', page.content.decode()).group(1)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(resend)
    assert response.status_code == 200 and b"Check your inbox" in response.content
    assert len(mail.outbox) == 1
    fresh = re.search(r"http://testserver(/confirm/\S+)", mail.outbox[0].body).group(1)
    client.post(fresh)
    subscriber.refresh_from_db()
    assert subscriber.status == "active"


@pytest.mark.parametrize("view", ["confirm", "preferences", "unsubscribe"])
def test_tampered_and_wrong_purpose_tokens_are_refused(client, active, view):
    good = {"confirm": confirm_url, "preferences": preferences_url, "unsubscribe": unsubscribe_url}[view](active)
    token = good.rstrip("/").rsplit("/", 1)[1]
    tampered = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    other = make_token("feedback", active.id)
    for bad in (tampered, other, "garbage", token + "x"):
        assert client.get(reverse(f"subscriptions:{view}", args=[bad])).status_code == 400
        assert client.post(reverse(f"subscriptions:{view}", args=[bad])).status_code == 400
    active.refresh_from_db()
    assert active.status == "active"


def test_confirmation_link_for_a_replaced_address_does_nothing(client, post_signup):
    post_signup()
    subscriber = Subscriber.objects.get()
    url = path_of(confirm_url(subscriber))
    Subscriber.objects.filter(id=subscriber.id).update(email="someone-else@example.org")
    assert b"no longer valid" in client.post(url).content
    subscriber.refresh_from_db()
    assert subscriber.status == "pending"


# --- Preferences -------------------------------------------------------------------------


def test_preferences_change_everything(client, active):
    url = path_of(preferences_url(active))
    page = client.get(url)
    assert page.status_code == 200 and b"ada@example.org" in page.content
    response = client.post(
        url,
        {
            "topics": "Graph Neural Networks\n",
            "authors": "Ann Lee, Bo Chen",
            "frequency": "daily",
            "weekday": "4",
            "send_hour": "21",
            "timezone": "America/New_York",
            "action": "save",
        },
    )
    assert response.status_code == 302
    assert b"Your preferences are saved" in client.get(response["Location"]).content
    active.refresh_from_db()
    assert (active.frequency, active.weekday, active.send_hour, active.timezone) == ("daily", 4, 21, "America/New_York")
    assert active.authors == ["Ann Lee", "Bo Chen"]
    assert [t.query for t in active.topics.all()] == ["graph neural networks"]


def test_signup_stores_the_chosen_hour_and_shows_a_bad_one_back(post_signup):
    post_signup(send_hour="6")
    assert Subscriber.objects.get(email="ada@example.org").send_hour == 6
    response = post_signup(email="bo@example.org", send_hour="25")
    assert response.status_code == 400 and b"Select a valid choice" in response.content
    assert not Subscriber.objects.filter(email="bo@example.org").exists()
    page = response.content.decode()
    assert 'name="topics"' in page and "Diffusion models" in page  # what was typed stays


def test_preferences_show_bad_values_back(client, active):
    url = path_of(preferences_url(active))
    response = client.post(url, {"topics": "x", "frequency": "weekly", "weekday": "0", "timezone": "Moon/Base"})
    assert response.status_code == 400 and b"Unknown time zone" in response.content
    active.refresh_from_db()
    assert active.timezone == "UTC"


def test_preferences_need_csrf(active):
    client = Client(enforce_csrf_checks=True)
    assert client.post(path_of(preferences_url(active)), {"action": "pause"}).status_code == 403
    active.refresh_from_db()
    assert active.status == "active"


def test_pause_resume_and_delete_from_preferences(client, active):
    url = path_of(preferences_url(active))
    client.post(url, {"action": "pause"})
    active.refresh_from_db()
    assert active.status == "paused"
    client.post(url, {"action": "resume"})
    active.refresh_from_db()
    assert active.status == "active"
    ask = client.post(url, {"action": "delete"})
    assert ask.status_code == 200 and b"Delete everything" in ask.content
    assert Subscriber.objects.exists()
    done = client.post(url, {"action": "delete-confirmed"})
    assert done.status_code == 200 and b"Your data is deleted" in done.content
    assert not Subscriber.objects.exists()
    assert b"no subscription for this link" in client.get(url).content


# --- Unsubscribe -------------------------------------------------------------------------


def test_unsubscribe_get_only_shows_a_button(client, active):
    response = client.get(path_of(unsubscribe_url(active)))
    assert response.status_code == 200
    assert b'<button type="submit" class="button danger">Unsubscribe</button>' in response.content
    active.refresh_from_db()
    assert active.status == "active"


def test_rfc8058_one_click_post_without_cookies_or_csrf(active):
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        path_of(unsubscribe_url(active)),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200  # never a redirect
    assert "Location" not in response
    assert not response.cookies
    active.refresh_from_db()
    assert active.status == "unsubscribed" and active.unsubscribed_at is not None
    again = client.post(
        path_of(unsubscribe_url(active)),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert again.status_code == 200


def test_one_click_post_as_multipart_form_data(active):
    response = Client(enforce_csrf_checks=True).post(
        path_of(unsubscribe_url(active)), {"List-Unsubscribe": "One-Click"}
    )
    assert response.status_code == 200
    active.refresh_from_db()
    assert active.status == "unsubscribed"


def test_unsubscribe_after_data_was_deleted_is_still_200(active):
    url = path_of(unsubscribe_url(active))
    services.delete_subscriber_data(active)
    response = Client(enforce_csrf_checks=True).post(url, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200


def test_preview_without_javascript_keeps_what_was_typed(client):
    response = client.post(
        "/", {**FORM, "topics": "graphs\nrl", "frequency": "daily", "timezone": "Asia/Tokyo", "action": "preview"}
    )
    html = response.content.decode()
    assert 'value="ada@example.org"' in html and 'value="Asia/Tokyo"' in html
    assert ">\ngraphs\nrl</textarea>" in html
    assert re.search(r'value="daily"[^>]*checked', html) and not re.search(r'value="weekly"[^>]*checked', html)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("the", "has no words to look for"),
        ("of and", "has no words to look for"),
        ("-survey", "only says what to leave out"),
        ('-"systematic review"', "only says what to leave out"),
    ],
)
def test_topics_that_match_nothing_are_refused_with_a_message(client, post_signup, active, typed, message):
    response = post_signup(email="new@example.org", topics=f"protein folding\n{typed}")
    assert response.status_code == 400 and message in response.content.decode()
    assert not Subscriber.objects.filter(email="new@example.org").exists()
    manage = path_of(preferences_url(active))
    before = sorted(t.query for t in active.topics.all())
    saved = client.post(manage, {**FORM, "topics": typed, "action": "save"})
    assert saved.status_code == 400 and message in saved.content.decode()
    assert sorted(t.query for t in active.topics.all()) == before


def test_a_full_author_name_typed_without_quotes_is_kept_as_one_name(post_signup):
    post_signup(topics="author:Mira Okonkwo\nprotein folding author:Mira Okonkwo")
    queries = sorted(t.query for t in Subscriber.objects.get().topics.all())
    assert queries == ['author:"mira okonkwo"', 'protein folding author:"mira okonkwo"']
