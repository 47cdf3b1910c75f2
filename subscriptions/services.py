"""Subscribing, confirming, changing preferences and leaving: the only code that writes
subscribers. Views and admin actions call these; they take keyword arguments, own
their transactions, and send mail only after the transaction commits.
"""

from __future__ import annotations

import functools
import logging
import unicodedata
import zoneinfo

from django.db import transaction
from django.db.models import Count
from django.utils import timezone as dj_timezone

from ranking import tasks as ranking_tasks
from ranking.api import forget_topic_embeddings, quote_author_names, topic_problem
from subscriptions import signals, tasks
from subscriptions.models import Subscriber, Subscription, Topic

logger = logging.getLogger(__name__)

TOPIC_MAX_LENGTH = 200
AUTHOR_MAX_LENGTH = 100
MAX_TOPICS = 20
DEFAULT_SEND_HOUR = 8  # local time: mail arrives with the morning coffee
MAX_FOLLOWED_AUTHORS = 20

# Typographic quotes and dashes that phones and word processors put in for the plain
# ones the query syntax uses ("exact phrase", -excluded).
_TYPOGRAPHIC = str.maketrans({"“": '"', "”": '"', "„": '"', "‟": '"', "″": '"', "−": "-", "–": "-"})
# Format characters kept because some scripts need them to spell words.
_KEEP_FORMAT = {"\u200c", "\u200d"}


def _clean_text(text: str) -> str:
    """NFKC, no control or invisible format characters, whitespace collapsed to single spaces."""
    text = unicodedata.normalize("NFKC", str(text or "")).translate(_TYPOGRAPHIC)
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if category in ("Cc", "Zl", "Zp"):
            kept.append(" ")  # newlines, tabs, NUL...: a separator, never part of a header
        elif category in ("Cf", "Cs", "Co") and char not in _KEEP_FORMAT:
            continue  # bidi overrides, zero-width spaces, lone surrogates
        else:
            kept.append(char)
    return " ".join("".join(kept).split())


def _cut(text: str, limit: int) -> str:
    """At most ``limit`` characters, cut at a word boundary where there is one."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    if text[limit] != " " and " " in head:
        head = head.rsplit(" ", 1)[0]
    return head.strip()


def normalise_topic(text) -> str:
    """The one stored form of a topic query, so each distinct topic is a single row.

    Lower-cased, whitespace collapsed, control characters and line breaks removed, at
    most 200 characters. The query syntax ranking reads survives unchanged:
    ``"exact phrase"``, ``-excluded``, ``author:name``, ``cat:cs.cl``; a full name typed
    without quotes (``author:Mira Okonkwo``) is quoted while its capitals show where it ends.
    """
    return _cut(quote_author_names(_clean_text(text)).lower(), TOPIC_MAX_LENGTH)


def topic_errors(items) -> list[str]:
    """What is wrong with typed topics, one message each: too long, or matching nothing
    (only stopwords, or only exclusions). Empty when all are fine."""
    errors = []
    for item in items:
        text = _clean_text(item)
        if len(text) > TOPIC_MAX_LENGTH:
            errors.append(f"“{text[:40]}…” has {len(text)} characters; a topic can have at most {TOPIC_MAX_LENGTH}.")
        elif text and (problem := topic_problem(normalise_topic(text))):
            errors.append(problem)
    return errors


def normalise_author(text) -> str:
    """An author name as typed (case kept: it is a name), cleaned like a topic."""
    return _cut(_clean_text(text), AUTHOR_MAX_LENGTH)


def split_lines(text: str, *, commas: bool = False) -> list[str]:
    """Items typed one per line (or comma-separated for authors)."""
    text = str(text or "").replace("\r\n", "\n").replace("\r", "\n")
    if commas:
        text = text.replace(",", "\n")
    return [line for line in text.split("\n") if line.strip()]


def clean_topics(items) -> list[str]:
    """Normalised, de-duplicated topics in the order given; empty ones dropped."""
    return list(dict.fromkeys(t for t in map(normalise_topic, items) if t))


def clean_authors(items) -> list[str]:
    seen: dict[str, str] = {}
    for name in map(normalise_author, items):
        if name and name.casefold() not in seen:
            seen[name.casefold()] = name
    return list(seen.values())


@functools.cache
def known_timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


@functools.cache
def timezone_names() -> tuple[str, ...]:
    """The known time zones in order, for the pages' list of suggestions."""
    return tuple(sorted(known_timezones()))


def is_valid_timezone(name: str) -> bool:
    return name in known_timezones()


# ---------------------------------------------------------------------------
# Signing up


class SignupOutcome:
    """What ``subscribe`` did; the page shown is the same for all of them."""

    CONFIRMATION_SENT = "confirmation_sent"
    MANAGE_LINK_SENT = "manage_link_sent"


def _set_topics(subscriber: Subscriber, queries: list[str]) -> None:
    """Make the subscriber follow exactly ``queries`` (already normalised); topics are shared rows."""
    existing = {t.query: t for t in Topic.objects.filter(query__in=queries)}
    missing = [q for q in queries if q not in existing]
    if missing:
        Topic.objects.bulk_create([Topic(query=q) for q in missing], ignore_conflicts=True)
        existing = {t.query: t for t in Topic.objects.filter(query__in=queries)}
        _embed_after_commit(missing)
    wanted_ids = {existing[q].id for q in queries}
    current_ids = set(Subscription.objects.filter(subscriber=subscriber).values_list("topic_id", flat=True))
    if current_ids - wanted_ids:
        Subscription.objects.filter(subscriber=subscriber, topic_id__in=current_ids - wanted_ids).delete()
    if wanted_ids - current_ids:
        Subscription.objects.bulk_create(
            [Subscription(subscriber=subscriber, topic_id=tid) for tid in wanted_ids - current_ids],
            ignore_conflicts=True,
        )
    _delete_orphan_topics(current_ids - wanted_ids)


def _embed_after_commit(queries: list[str]) -> None:
    """New topics get their embeddings from a worker, so that the issue's ranking finds
    them stored; if this fails, ranking computes them when it needs them."""
    transaction.on_commit(lambda: ranking_tasks.store_topic_embeddings.delay(queries), robust=True)


def _delete_orphan_topics(topic_ids) -> None:
    """A topic nobody follows any more is someone's words: do not keep it (nor what the
    ranking stored for it)."""
    if topic_ids:
        orphans = Topic.objects.filter(id__in=topic_ids).annotate(n=Count("subscriptions")).filter(n=0)
        queries = list(orphans.values_list("query", flat=True))
        orphans.delete()
        forget_topic_embeddings(queries)


def _apply_preferences(subscriber, *, frequency, weekday, timezone, send_hour) -> None:
    subscriber.frequency = frequency
    subscriber.weekday = weekday
    subscriber.timezone = timezone
    subscriber.send_hour = send_hour


def validate_preferences(
    *, topics, authors, frequency, weekday, timezone, send_hour, examples=()
) -> tuple[list[str], list[str]]:
    """Clean topics and authors; raise ValueError on values a form should have caught."""
    problems = topic_errors(topics)
    if problems:
        raise ValueError(" ".join(problems))
    queries = clean_topics(topics)
    names = clean_authors(authors)
    if not queries and not names and not examples:
        raise ValueError("follow at least one topic or author")
    if len(queries) > MAX_TOPICS or len(names) > MAX_FOLLOWED_AUTHORS:
        raise ValueError(f"at most {MAX_TOPICS} topics and {MAX_FOLLOWED_AUTHORS} authors")
    if frequency not in Subscriber.Frequency.values:
        raise ValueError(f"unknown frequency {frequency!r}")
    if not 0 <= int(weekday) <= 6:
        raise ValueError("weekday must be 0 (Monday) to 6 (Sunday)")
    if not is_valid_timezone(timezone):
        raise ValueError(f"unknown time zone {timezone!r}")
    if not 0 <= int(send_hour) <= 23:
        raise ValueError("send_hour must be 0 to 23")
    return queries, names


def subscribe(
    *,
    email,
    topics,
    authors=(),
    frequency="weekly",
    weekday=0,
    timezone="UTC",
    send_hour=DEFAULT_SEND_HOUR,
    example_paper_ids=(),
) -> str:
    """Start a double opt-in, or remind a known address how to manage it.

    - New, pending, unsubscribed or bounced address: the submitted preferences are
      stored (status pending, nothing is sent but the confirmation) and a
      confirmation email goes out.
    - Active or paused address: nothing changes (a stranger must not be able to
      alter someone's subscription); the address gets a "manage your subscription"
      email instead.

    Returns a ``SignupOutcome`` value; callers show the same page either way.
    """
    email = email.strip().lower()
    when = {"frequency": frequency, "weekday": weekday, "timezone": timezone, "send_hour": send_hour}
    examples = [int(i) for i in example_paper_ids]
    queries, names = validate_preferences(topics=topics, authors=authors, examples=examples, **when)
    with transaction.atomic():
        subscriber, created = Subscriber.objects.select_for_update().get_or_create(
            email=email, defaults={**when, "authors": names, "example_paper_ids": examples}
        )
        if not created and subscriber.status in (Subscriber.Status.ACTIVE, Subscriber.Status.PAUSED):
            _after_commit(tasks.send_manage_email, subscriber.id)
            return SignupOutcome.MANAGE_LINK_SENT
        if not created:
            subscriber.status = Subscriber.Status.PENDING
            subscriber.authors = names
            subscriber.example_paper_ids = examples
            _apply_preferences(subscriber, **when)
        subscriber.confirmation_sent_at = dj_timezone.now()
        subscriber.save()
        _set_topics(subscriber, queries)
        _after_commit(tasks.send_confirmation_email, subscriber.id)
    return SignupOutcome.CONFIRMATION_SENT


def _after_commit(task, subscriber_id: int) -> None:
    """Queue an email once the transaction commits. A broker or mail outage is logged
    and never undoes the signup: the person can ask again."""

    def enqueue():
        task.delay(subscriber_id)

    enqueue.__qualname__ = f"enqueue {task.name}"
    transaction.on_commit(enqueue, robust=True)


def resend_confirmation(subscriber: Subscriber) -> bool:
    """Send a fresh confirmation link to a subscriber still pending; False if not pending."""
    with transaction.atomic():
        updated = Subscriber.objects.filter(id=subscriber.id, status=Subscriber.Status.PENDING).update(
            confirmation_sent_at=dj_timezone.now()
        )
        if updated:
            _after_commit(tasks.send_confirmation_email, subscriber.id)
    return bool(updated)


def confirm(subscriber: Subscriber) -> bool:
    """The address owner followed the link: start sending. False when it was not pending
    (already confirmed, or left since: an old link does not bring anyone back)."""
    now = dj_timezone.now()
    with transaction.atomic():
        updated = Subscriber.objects.filter(id=subscriber.id, status=Subscriber.Status.PENDING).update(
            status=Subscriber.Status.ACTIVE,
            confirmed_at=now,
            unsubscribed_at=None,
            suppressed_at=None,
            suppression_reason="",
        )
        subscriber.refresh_from_db()
        if updated:
            signals.subscriber_confirmed.send(sender=Subscriber, subscriber=subscriber)
    return bool(updated)


# ---------------------------------------------------------------------------
# Managing a subscription (from the signed preferences link)


def update_preferences(
    subscriber: Subscriber, *, topics, authors=(), frequency, weekday, timezone, send_hour=None, example_paper_ids=None
) -> Subscriber:
    """Store new preferences; ``send_hour`` None keeps the current hour."""
    send_hour = subscriber.send_hour if send_hour is None else send_hour
    when = {"frequency": frequency, "weekday": weekday, "timezone": timezone, "send_hour": send_hour}
    examples = subscriber.example_paper_ids if example_paper_ids is None else [int(i) for i in example_paper_ids]
    queries, names = validate_preferences(topics=topics, authors=authors, examples=examples, **when)
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().get(id=subscriber.id)
        subscriber.authors = names
        subscriber.example_paper_ids = examples
        _apply_preferences(subscriber, **when)
        subscriber.save(update_fields=["authors", "example_paper_ids", *when])
        _set_topics(subscriber, queries)
    return subscriber


def pause(subscriber: Subscriber) -> bool:
    """Stop sending for now, keeping everything. Only an active subscription pauses."""
    updated = Subscriber.objects.filter(id=subscriber.id, status=Subscriber.Status.ACTIVE).update(
        status=Subscriber.Status.PAUSED
    )
    subscriber.refresh_from_db()
    return bool(updated)


def resume(subscriber: Subscriber) -> bool:
    """Send again after a pause. An unsubscribed or bounced address comes back only through
    a fresh confirmation email (``ask_to_confirm_again``): a manage link can be old, forwarded
    or leaked, and the mailbox may have changed hands since."""
    updated = Subscriber.objects.filter(id=subscriber.id, status=Subscriber.Status.PAUSED).update(
        status=Subscriber.Status.ACTIVE
    )
    subscriber.refresh_from_db()
    return bool(updated)


def ask_to_confirm_again(subscriber: Subscriber) -> bool:
    """Subscribe an unsubscribed or bounced address again: it becomes pending, keeps its
    preferences, and gets a new confirmation link (earlier ones stop working). False when
    the address is in any other state."""
    with transaction.atomic():
        updated = Subscriber.objects.filter(
            id=subscriber.id, status__in=[Subscriber.Status.UNSUBSCRIBED, Subscriber.Status.BOUNCED]
        ).update(status=Subscriber.Status.PENDING, confirmation_sent_at=dj_timezone.now())
        if updated:
            _after_commit(tasks.send_confirmation_email, subscriber.id)
    subscriber.refresh_from_db()
    return bool(updated)


def send_manage_link(email: str) -> bool:
    """The "Lost your link?" form: email the address its manage link if we know it.
    The caller answers the same whether or not we do. Returns whether mail was queued."""
    subscriber = Subscriber.objects.filter(email=(email or "").strip().lower()).only("id", "status").first()
    if subscriber is None or subscriber.status == Subscriber.Status.PENDING:
        return False  # a pending address has its confirmation link; nothing to manage yet
    subscriber_id = subscriber.id
    transaction.on_commit(lambda: tasks.send_manage_email.delay(subscriber_id, asked_for_link=True), robust=True)
    return True


def unsubscribe(subscriber: Subscriber) -> bool:
    """Stop all mail at once. Idempotent; False when already unsubscribed."""
    updated = _unsubscribe(Subscriber.objects.filter(id=subscriber.id))
    subscriber.refresh_from_db()
    return bool(updated)


def unsubscribe_address(email: str) -> bool:
    """The same, for an address (a provider's unsubscribe event)."""
    return bool(_unsubscribe(Subscriber.objects.filter(email=(email or "").strip().lower())))


def _unsubscribe(subscribers) -> int:
    return subscribers.exclude(status=Subscriber.Status.UNSUBSCRIBED).update(
        status=Subscriber.Status.UNSUBSCRIBED, unsubscribed_at=dj_timezone.now()
    )


def delete_subscriber_data(subscriber: Subscriber) -> None:
    """Remove the person and everything about them: subscriptions, feedback, deliveries
    (cascade), and topics nobody else follows."""
    with transaction.atomic():
        topic_ids = set(Subscription.objects.filter(subscriber_id=subscriber.id).values_list("topic_id", flat=True))
        Subscriber.objects.filter(id=subscriber.id).delete()
        _delete_orphan_topics(topic_ids)
    logger.info("subscriber data deleted", extra={"subscriber_id": subscriber.id})
