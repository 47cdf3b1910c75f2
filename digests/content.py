"""What a digest shows: each paper's entry, the sections and their words, and the same
for previews, test sends and the web version of a delivered copy."""

from __future__ import annotations

import datetime as dt
import functools
import textwrap
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone
from markupsafe import Markup, escape

import emails
from digests import schedule
from digests.matching import rank_for_subscribers
from digests.models import Delivery
from papers.latex import to_unicode
from papers.models import Paper
from ranking.api import snippet_pieces
from subscriptions.links import (
    FeedbackLinks,
    InertFeedbackLinks,
    inert_url,
    preferences_url,
    unsubscribe_url,
    webview_url,
)
from subscriptions.topic_controls import controls_url

EXCERPT_CHARS = 220
SUBJECT_CHARS = 70  # what a phone shows of a subject line
AUTHORS_SHOWN = 4  # more are "et al."
THIS_PERIOD = {"daily": "today", "weekly": "this week", "monthly": "this month", "welcome": "from the past week"}


@functools.lru_cache(maxsize=4096)
def _excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """Two or three lines of the abstract, cut at a word."""
    text = " ".join(to_unicode(text or "").split())
    if len(text) <= limit:
        return text
    return textwrap.shorten(text, width=limit, placeholder="…")


@functools.lru_cache(maxsize=8192)
def _snippet(topic: str, abstract: str) -> tuple[str, Markup]:
    """The abstract sentence that best matches the topic: as plain text, and as HTML
    with the topic's words in bold. Remembered: an issue shows the same (topic, paper)
    pairs to everyone who shares the topic."""
    pieces = snippet_pieces(topic, to_unicode(abstract or ""), EXCERPT_CHARS)
    if not pieces:
        return "", Markup("")
    text = "".join(piece for piece, _bold in pieces)
    # A line break for the space before each bold word: the same on screen, and the
    # HTML keeps short lines (a line over 998 characters makes the whole part QP-encoded).
    html = Markup("").join(
        Markup("<strong>{}</strong>").format(p)
        if bold
        else escape(p[:-1]) + Markup("\n")
        if p.endswith(" ")
        else escape(p)
        for p, bold in pieces
    )
    return text, html


def _authors(names) -> str:
    names = [to_unicode(str(n)) for n in (names or []) if str(n).strip()]
    if len(names) > AUTHORS_SHOWN:
        return ", ".join(names[:AUTHORS_SHOWN]) + " et al."
    return ", ".join(names)


def _phrase(names: list[str]) -> str:
    if not names:
        return "your topics"
    if len(names) == 1:
        return names[0]
    if len(names) <= 3:
        return ", ".join(names[:-1]) + " and " + names[-1]
    return f"{', '.join(names[:2])} and {len(names) - 2} more topics"


def _controls(subscriber, topic_id, papers, test_copy: bool) -> str:
    """The section's "less of this topic" / "mute a word" page ("" for a section that is
    no followed topic: followed authors, liked papers)."""
    if topic_id is None:
        return ""
    if test_copy:
        return inert_url("preferences")
    return controls_url(subscriber, topic_id, [p.paper_id for p in papers])


def heading(count: int, frequency: str) -> str:
    """What the digest holds, said honestly: "2 strong matches this week"."""
    return f"{count} strong match{'es' if count != 1 else ''} {THIS_PERIOD.get(frequency, 'this time')}"


def subject(count: int, topic_names: list[str], limit: int = SUBJECT_CHARS, prefix: str = "") -> str:
    """The count and the first topic, at most ``limit`` characters ("5 papers on state
    space models, +2 topics"), the topic shortened at a word when it is long."""
    noun = f"{prefix}{count} paper{'s' if count != 1 else ''}"
    if not topic_names:
        return f"{noun} for you"
    first = " ".join(topic_names[0].split())
    more = len(topic_names) - 1
    rest = f", +{more} topic{'s' if more != 1 else ''}" if more else ""
    room = limit - len(f"{noun} on ") - len(rest)
    if len(first) > room:
        first = textwrap.shorten(first, width=room, placeholder="…")
        if first == "…":  # one long word: cut it
            first = topic_names[0][: room - 1] + "…"
    return f"{noun} on {first}{rest}"


def web_url(delivery: Delivery) -> str:
    """The signed "view in browser" link of one delivered copy."""
    return webview_url(delivery.subscriber_id, delivery.id)


@dataclass
class DigestItem:
    """One paper as a digest shows it (ranking's RankedPaper, or a stored copy's item)."""

    paper: object
    topic: str | None
    why: str


@dataclass(slots=True)
class PaperEntry:
    """One paper as the digest templates show it. An object, not a dict: Jinja2 looks
    ``paper.title`` up as an attribute first, and on a dict that lookup raises and
    catches an AttributeError each time (bench/README.md, "Costs behind the code")."""

    paper_id: int
    title: str
    url: str
    authors: str
    upvotes: int
    excerpt: str  # plain text (the text part)
    excerpt_html: Markup  # the same, the topic's words in bold
    why: str
    up_url: str
    down_url: str


def digest_context(
    *,
    subscriber,
    frequency: str,
    period: str,
    items: list[DigestItem],
    web: str | None,
    topic_ids: dict[str, int] | None = None,
    test_copy: bool = False,
) -> dict:
    """Everything the digest templates show, computed once for the HTML, text and subject.

    ``topic_ids``: the subscriber's topics (query: id), when the caller has them already.
    ``test_copy``: an operator's preview or test send; the reader's links are replaced by
    inert ones that say so.
    """
    if topic_ids is None:
        topic_ids = {t.query: t.id for t in subscriber.topics.all()}
    feedback = InertFeedbackLinks() if test_copy else FeedbackLinks(subscriber.id)
    sections: dict[str, list[PaperEntry]] = {}
    for item in items:
        paper = item.paper
        name = item.topic or "More papers for you"
        up_url, down_url = feedback.of(paper.id, topic_ids.get(item.topic))
        if item.topic:
            excerpt, excerpt_html = _snippet(item.topic, paper.abstract or "")
        else:
            excerpt = _excerpt(paper.abstract)
            excerpt_html = escape(excerpt)
        sections.setdefault(name, []).append(
            PaperEntry(
                paper_id=paper.id,
                title=" ".join(to_unicode(paper.title or "").split()),
                url=paper.url,
                authors=_authors(paper.authors),
                upvotes=paper.upvotes or 0,
                excerpt=excerpt,
                excerpt_html=excerpt_html,
                why=" ".join((item.why or "").split()),
                up_url=up_url,
                down_url=down_url,
            )
        )
    topics = [
        {"name": name, "papers": papers, "controls_url": _controls(subscriber, topic_ids.get(name), papers, test_copy)}
        for name, papers in sections.items()
    ]
    followed = sorted(topic_ids) or [t["name"] for t in topics]
    label = schedule.period_label(frequency, period)
    names = [t["name"] for t in topics]
    phrase = _phrase(names)
    count = len(items)
    first = topics[0]["papers"][0].title if topics else ""
    welcome = frequency == schedule.WELCOME
    return {
        "welcome": welcome,
        "next_issue": schedule.next_issue_text(schedule.Schedule.of(subscriber), timezone.now()) if welcome else "",
        "frequency": frequency,
        "period": period,
        "period_label": label,
        "period_title": label[:1].upper() + label[1:],
        "paper_count": count,
        "heading": heading(count, frequency),
        "subject": subject(count, names, prefix="Welcome: " if welcome else ""),
        "topics": topics,
        "topics_phrase": phrase,
        "preheader": textwrap.shorten(f"{first} — and {count - 1} more picked for you", 140, placeholder="…")
        if count > 1
        else textwrap.shorten(first, 140, placeholder="…"),
        "subscriber_email": subscriber.email,
        "preferences_url": inert_url("preferences") if test_copy else preferences_url(subscriber),
        "drop_topics": [{"name": t["name"], "url": t["controls_url"] + "#drop"} for t in topics if t["controls_url"]],
        "unsubscribe_url": inert_url("unsubscribe") if test_copy else unsubscribe_url(subscriber),
        "web_url": web,
        "why_text": (
            f"You receive this {frequency} email because {subscriber.email} subscribed to papers on "
            f"{_phrase(followed)} at {settings.SITE_URL.split('://', 1)[-1]}."
        ),
    }


def list_id(frequency: str) -> str:
    return f"{settings.SENDER_NAME} {frequency} digest <{frequency}.digest.{settings.MAIL_DOMAIN}>"


def items_of(ranked) -> list[DigestItem]:
    return [DigestItem(r.paper, r.topic, r.why) for r in ranked]


def rank(subscribers, *, frequency: str, period: str, now: dt.datetime) -> dict[int, list]:
    """The papers of these subscribers' copies of one issue."""
    since = now - schedule.lookback(frequency, period)
    return rank_for_subscribers(subscribers, since=since, limit=settings.DIGEST_MAX_PAPERS)


def _next_digest(subscriber, *, now: dt.datetime):
    slot = schedule.next_slot(schedule.Schedule.of(subscriber), now)
    ranked = rank([subscriber], frequency=slot.frequency, period=slot.period, now=now)
    return slot, items_of(ranked.get(subscriber.id) or [])


def preview_digest(subscriber, *, now: dt.datetime | None = None) -> emails.RenderedEmail:
    """What the subscriber would get next (their papers as of now); records nothing. Its
    links are inert (``digest_context``'s ``test_copy``).

    An empty digest (nothing relevant) renders too, so an operator can see it would be skipped.
    """
    slot, items = _next_digest(subscriber, now=now or timezone.now())
    context = digest_context(
        subscriber=subscriber, frequency=slot.frequency, period=slot.period, items=items, web=None, test_copy=True
    )
    return emails.render("digest", context)


def send_test_digest(*, subscriber, to_address: str, connection=None) -> emails.RenderedEmail:
    """Send the subscriber's next digest to another address (an operator's), recording nothing.

    It carries no List-Unsubscribe header: a one-click unsubscribe from the operator's
    mailbox would unsubscribe the subscriber.
    """
    rendered = preview_digest(subscriber)
    rendered = emails.RenderedEmail(subject=f"[Test] {rendered.subject}", text=rendered.text, html=rendered.html)
    emails.build_message(rendered, to=to_address, list_id=list_id(subscriber.frequency), connection=connection).send()
    return rendered


def web_version(delivery: Delivery) -> str:
    """The HTML of a delivered copy, rebuilt from what it showed (papers, topics, whys)."""
    stored = delivery.items or [{"paper": pid, "topic": None, "why": ""} for pid in delivery.paper_ids]
    papers = Paper.objects.in_bulk([entry["paper"] for entry in stored])
    items = [
        DigestItem(papers[entry["paper"]], entry.get("topic"), entry.get("why", ""))
        for entry in stored
        if entry["paper"] in papers
    ]
    context = digest_context(
        subscriber=delivery.subscriber,
        frequency=delivery.issue.frequency,
        period=delivery.issue.period,
        items=items,
        web=None,
    )
    return emails.render("digest", context).html
