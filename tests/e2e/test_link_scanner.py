"""A mail security scanner opens every link of every email we send, and every link of
the pages those open, with GET and HEAD. Nothing may change: no vote, no confirmation,
no unsubscribe, no mail sent."""

import datetime as dt
from urllib.parse import urljoin, urlsplit

import pytest
from bs4 import BeautifulSoup
from django.core import mail
from django.utils import timezone

from digests import delivery
from digests.models import Delivery, Issue
from papers.models import Paper
from subscriptions import services
from subscriptions.models import Feedback, Subscriber
from tests.digests.helpers import make_papers
from tests.link_scan import database_state, links_in

pytestmark = pytest.mark.django_db

SITE = "http://testserver"


def links_on(page_url: str, html: str) -> set[str]:
    soup = BeautifulSoup(html, "html.parser")
    return {urljoin(page_url, tag.get("href") or tag.get("src")) for tag in soup.find_all(["a", "link", "script"])}


def scan(client, messages) -> list[str]:
    """Open every link of these messages and of the pages they lead to (our site only,
    two levels), as a scanner does: GET following redirects, and HEAD."""
    seen: set[str] = set()
    todo = [(url, 0) for message in messages for url in sorted(links_in(message))]
    while todo:
        url, depth = todo.pop()
        if url in seen or not url.startswith(SITE + "/"):
            continue
        seen.add(url)
        path = url.removeprefix(SITE)
        client.head(path)
        response = client.get(path, follow=True)
        assert response.status_code < 500, url
        if depth < 1 and "html" in response.get("Content-Type", ""):
            todo += [(link, depth + 1) for link in links_on(url, response.content.decode())]
    return sorted(seen)


def test_scanning_every_email_and_page_changes_nothing(client, django_capture_on_commit_callbacks):
    papers = make_papers()
    with django_capture_on_commit_callbacks(execute=True):
        services.subscribe(email="reader@example.org", topics=["protein folding", "speech recognition"])
    reader = Subscriber.objects.get()
    (confirmation,) = mail.outbox

    before = database_state()
    scanned = scan(client, [confirmation])
    assert any("/confirm/" in url for url in scanned)
    assert database_state() == before and len(mail.outbox) == 1
    assert Subscriber.objects.get().status == Subscriber.Status.PENDING

    with django_capture_on_commit_callbacks(execute=True):  # confirming: the welcome issue
        services.confirm(reader)
    (welcome,) = mail.outbox[1:]
    with django_capture_on_commit_callbacks(execute=True):  # signing up again: the manage email
        services.subscribe(email="reader@example.org", topics=["graph networks"])
    manage = mail.outbox[-1]
    for n, title in enumerate(
        ["Protein folding kinetics from cryo-EM maps", "Speech recognition for whispered speech"]
    ):
        Paper.objects.create(  # new since the welcome issue, for the weekly one
            key=f"2612.{n:05d}",
            title=title,
            abstract=f"{title}. " * 5,
            authors=["Mira Okonkwo"],
            upvotes=50,
            first_seen_at=timezone.now() - dt.timedelta(hours=1),
        )
    issue = Issue.objects.create(frequency="weekly", period="2026-W48")
    row = Delivery.objects.create(issue=issue, subscriber=reader)
    delivery.deliver_batch([row.id])
    digest = mail.outbox[-1]
    assert digest is not manage and digest is not welcome  # the weekly issue has papers of its own
    # Give the reader a vote to lose, then scan.
    Feedback.objects.create(subscriber=reader, paper=papers["protein folding"][0], vote=1)
    sent = len(mail.outbox)

    before = database_state()
    scanned = scan(client, [welcome, manage, digest])
    kinds = {urlsplit(url).path.split("/")[1] for url in scanned}
    assert {"f", "manage", "unsubscribe", "d"} <= kinds, kinds
    assert sum("/f/" in url for url in scanned) >= 8  # 👍 and 👎 of each paper of both issues
    assert sum("/d/" in url for url in scanned) == 2  # their web versions
    assert links_in(welcome) <= set(scanned) | {u for u in links_in(welcome) if not u.startswith(SITE)}
    assert database_state() == before
    assert len(mail.outbox) == sent
    assert Subscriber.objects.get().status == Subscriber.Status.ACTIVE
    assert list(Feedback.objects.values_list("vote", flat=True)) == [1]
