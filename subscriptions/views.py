"""Signup, confirmation, preferences and unsubscribe pages.

Each view validates with a form, calls one service and renders. Links carry signed
tokens (subscriptions.tokens): there are no passwords.
"""

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone as dj_timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods
from django_ratelimit.core import is_ratelimited

from subscriptions import examples, links, notices, previews, schedule, services
from subscriptions.forms import LostLinkForm, PreferencesFields, PreviewForm, SignupForm
from subscriptions.models import Subscriber
from subscriptions.tokens import CONFIRM_MAX_AGE, BadToken, ExpiredToken, read_token

SUGGESTED_TOPICS = [
    "large language models",
    "diffusion models",
    "reinforcement learning",
    "retrieval augmented generation",
    "ai agents",
    "computer vision",
    "speech recognition",
    "robotics",
]


def _ip_limited(request, group: str, rate: str) -> bool:
    return is_ratelimited(request, group=group, key="ip", rate=rate, increment=True)


def _address_limited(request, group: str, email: str) -> bool:
    return is_ratelimited(
        request,
        group=group,
        key=lambda _group, _request: email,
        rate=settings.SIGNUP_RATE_PER_ADDRESS,
        increment=True,
    )


def _message(request, title: str, message: str, *, status: int = 200, **extra) -> HttpResponse:
    return render(request, "subscriptions/message.html", {"title": title, "message": message, **extra}, status=status)


def _too_many(request) -> HttpResponse:
    return _message(
        request,
        "Too many attempts",
        "Too many requests came from your network in a short time. Please wait a while and try again.",
        status=429,
    )


def _bad_link(request) -> HttpResponse:
    return _message(
        request,
        "This link does not work",
        "The link is incomplete or was changed. Open it again from the email, or sign up again.",
        status=400,
        show_signup_link=True,
    )


def _signup_page(request, form, *, preview=None, preview_summary="", preview_busy=False, status=200):
    return render(
        request,
        "subscriptions/signup.html",
        {
            "form": form,
            "suggested_topics": SUGGESTED_TOPICS,
            "trending": previews.trending_papers(),
            "preview": preview,
            "preview_summary": preview_summary,
            "preview_busy": preview_busy,
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
def signup(request):
    """The signup page (/subscribe/). The answer to a signup is the same whatever the
    address's state, so nobody can find out who is subscribed."""
    if request.method == "GET":
        # ?topic=TEXT (repeatable): the public pages' "email me this" links land on a ready form.
        topics = services.clean_topics(request.GET.getlist("topic"))[: services.MAX_TOPICS]
        # ?paper=ID (a paper page's "more like this by email"): the paper as an example.
        papers = [p.strip()[:200] for p in request.GET.getlist("paper") if p.strip()][: examples.MAX_EXAMPLES]
        initial = {"topics": "\n".join(topics), "example_papers": examples.as_shown(papers)}
        form = SignupForm(initial=initial if topics or papers else None)
        form.fields["timezone"].widget.attrs["data-autofill"] = "1"  # the page's script fills in the browser's
        return _signup_page(request, form)
    if request.POST.get("action") == "preview":
        if _ip_limited(request, "preview-ip", settings.PREVIEW_RATE_PER_IP):
            return _too_many(request)
        preview_form = PreviewForm(request.POST)
        preview_form.is_valid()
        topics = preview_form.cleaned_data.get("topics", [])
        authors = preview_form.cleaned_data.get("authors", [])
        liked = preview_form.cleaned_data.get("example_papers", [])
        typed = {key: request.POST.get(key, "") for key in SignupForm.base_fields if key != "website"}
        try:
            preview, status = previews.preview_papers(topics, authors, liked), 200
        except previews.PreviewBusy:
            preview, status = None, 503
        return _signup_page(
            request,
            SignupForm(initial=typed),  # shown back as typed, without errors: a preview is not a submit
            preview=preview,
            preview_summary=previews.summary(len(preview or []), topics, authors, len(liked)),
            preview_busy=status == 503,
            status=status,
        )
    if _ip_limited(request, "signup-ip", settings.SIGNUP_RATE_PER_IP):
        return _too_many(request)
    form = SignupForm(request.POST)
    if not form.is_valid():
        return _signup_page(request, form, status=400)
    email = form.cleaned_data["email"]
    if not form.is_bot() and not _address_limited(request, "signup-address", email):
        services.subscribe(email=email, **form.service_kwargs())
    return _check_inbox(request, email)


def _check_inbox(request, email: str, *, lost_link: bool = False) -> HttpResponse:
    # No form and no CSRF token on this page: its bytes depend only on the address typed.
    return render(request, "subscriptions/check_inbox.html", {"email": email, "lost_link": lost_link})


@require_GET
def preview_json(request):
    """The papers the typed topics would bring this week (the signup page's live preview)."""
    if _ip_limited(request, "preview-ip", settings.PREVIEW_RATE_PER_IP):
        return JsonResponse({"error": "too many requests"}, status=429)
    form = PreviewForm(request.GET)
    if not form.is_valid():
        return JsonResponse({"error": "bad query", "fields": form.errors.get_json_data()}, status=400)
    topics, authors = form.cleaned_data["topics"], form.cleaned_data["authors"]
    try:
        papers = previews.preview_papers(topics, authors, form.cleaned_data["example_papers"])
    except previews.PreviewBusy:
        # Shed load rather than queue without end: the page's script says so and the
        # next keystroke (or the button) asks again.
        return JsonResponse({"error": "busy"}, status=503, headers={"Retry-After": "1", "Cache-Control": "no-store"})
    liked = form.cleaned_data["example_papers"]
    return JsonResponse(
        {
            "topics": topics,
            "summary": previews.summary(len(papers), topics, authors, len(liked)),
            "papers": [{"title": p.title, "url": p.url, "why": p.why} for p in papers],
        },
        headers={"Cache-Control": "no-store"},
    )


def _subscriber_from(token: str, purpose: str, **kwargs) -> Subscriber | None:
    payload = read_token(purpose, token, **kwargs)
    return Subscriber.objects.filter(id=payload.get("s")).first()


@never_cache
@require_http_methods(["GET", "POST"])
def confirm(request, token):
    """GET shows one button (mail scanners follow links; a GET must not subscribe anyone);
    POST confirms. An expired link offers a fresh one."""
    try:
        payload = read_token("confirm", token, max_age=CONFIRM_MAX_AGE)
    except ExpiredToken:
        return _message(
            request,
            "This link has expired",
            "Confirmation links work for 7 days. Ask for a new one and we will email it to you.",
            resend_url=reverse("subscriptions:resend", args=[token]),
        )
    except BadToken:
        return _bad_link(request)
    subscriber = Subscriber.objects.filter(id=payload.get("s"), email=payload.get("e")).first()
    if subscriber is not None and subscriber.status in (Subscriber.Status.ACTIVE, Subscriber.Status.PAUSED):
        # No manage link here: whoever holds an old confirmation email is not the owner for good.
        return _message(
            request,
            "Already confirmed",
            "This subscription is confirmed. To change it, use the link at the bottom of any digest, "
            "or ask for a new one.",
            show_lost_link=True,
        )
    if subscriber is None or subscriber.status != Subscriber.Status.PENDING:
        return _message(
            request,
            "This link is no longer valid",
            "This subscription was removed or cancelled. You are welcome to sign up again.",
            show_signup_link=True,
        )
    if payload.get("c") != links.confirmation_stamp(subscriber):
        return _message(
            request,
            "This link was replaced",
            "We sent a newer confirmation email to this address since; use the link in that one, or ask for a new one.",
            resend_url=reverse("subscriptions:resend", args=[token]),
        )
    if request.method == "POST":
        services.confirm(subscriber)
        return redirect(reverse("subscriptions:preferences", args=[links.manage_token(subscriber)]) + "?welcome=1")
    return render(
        request,
        "subscriptions/confirm.html",
        {
            "subscriber": subscriber,
            "topics": subscriber.topics.all(),
            "schedule": notices.describe_schedule(subscriber),
        },
    )


@require_http_methods(["POST"])
def resend_confirmation(request, token):
    """The expired-link page's button: a new confirmation link, for a still-pending address."""
    if _ip_limited(request, "signup-ip", settings.SIGNUP_RATE_PER_IP):
        return _too_many(request)
    try:
        payload = read_token("confirm", token)  # expired is fine here; tampered is not
    except BadToken:
        return _bad_link(request)
    subscriber = Subscriber.objects.filter(id=payload.get("s"), email=payload.get("e")).first()
    if subscriber is not None and not _address_limited(request, "signup-address", subscriber.email):
        services.resend_confirmation(subscriber)
    return _check_inbox(request, payload.get("e", ""))


@require_http_methods(["GET", "POST"])
def lost_link(request):
    """ "Lost your link?": type an address, and if we know it, it gets its manage link by
    email. The answer is the same page whatever the address, so nobody learns who is
    subscribed; the limits per network and per address stop it being used to flood a mailbox."""
    form = LostLinkForm(request.POST or None)
    if request.method == "GET" or not form.is_valid():
        return render(request, "subscriptions/lost_link.html", {"form": form}, status=400 if form.is_bound else 200)
    if _ip_limited(request, "lost-link-ip", settings.SIGNUP_RATE_PER_IP):
        return _too_many(request)
    email = form.cleaned_data["email"]
    if not form.is_bot() and not _address_limited(request, "lost-link-address", email):
        services.send_manage_link(email)
    return _check_inbox(request, email, lost_link=True)


@never_cache
@require_http_methods(["GET", "POST"])
def preferences(request, token):
    """Everything a subscriber can change, from the signed link in every email."""
    try:
        subscriber = _subscriber_from(token, "manage")
    except BadToken:
        return _bad_link(request)
    if subscriber is None:
        return _message(request, "Nothing to manage", "There is no subscription for this link any more.")

    form = None
    if request.method == "POST":
        action = request.POST.get("action", "save")
        if action == "pause":
            services.pause(subscriber)
            return _back_to(token, "paused")
        if action == "resume":
            services.resume(subscriber)
            return _back_to(token, "resumed")
        if action == "subscribe-again":
            if services.ask_to_confirm_again(subscriber):
                return _check_inbox(request, subscriber.email)
            return _back_to(token, "unchanged")
        if action == "delete":
            return render(request, "subscriptions/delete_confirm.html", {"subscriber": subscriber, "token": token})
        if action == "delete-confirmed":
            services.delete_subscriber_data(subscriber)
            return _message(
                request,
                "Your data is deleted",
                "We removed your address, your topics and your history. We will not email you again.",
                show_signup_link=True,
            )
        form = PreferencesFields(request.POST)
        if form.is_valid():
            services.update_preferences(subscriber, **form.service_kwargs())
            return _back_to(token, "saved")

    if form is None:
        form = PreferencesFields(
            initial={
                "topics": "\n".join(t.query for t in subscriber.topics.all()),
                "authors": "\n".join(subscriber.authors),
                "example_papers": examples.shown(subscriber.example_paper_ids),
                "frequency": subscriber.frequency,
                "weekday": subscriber.weekday,
                "send_hour": subscriber.send_hour,
                "timezone": subscriber.timezone,
            }
        )
    messages = {
        "saved": "Your preferences are saved.",
        "paused": "Your digest is paused. Resume it whenever you like.",
        "resumed": "Your digest is on again.",
        "unchanged": "Nothing changed.",
        "welcome": "You're subscribed. Your first digest arrives "
        + schedule.next_issue_text(schedule.Schedule.of(subscriber), dj_timezone.now())
        + ". If the past week already has strong matches for your topics, a welcome email with them is on its way.",
    }
    notice = next((text for key, text in messages.items() if key in request.GET), "")
    return render(
        request,
        "subscriptions/preferences.html",
        {
            "form": form,
            "subscriber": subscriber,
            "notice": notice,
            "schedule": notices.describe_schedule(subscriber),
            "unsubscribe_url": reverse("subscriptions:unsubscribe", args=[links.unsubscribe_token(subscriber)]),
            "suggested_topics": SUGGESTED_TOPICS,
        },
        status=400 if form.is_bound else 200,
    )


def _back_to(token: str, notice: str):
    return redirect(reverse("subscriptions:preferences", args=[token]) + f"?{notice}=1")


@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token):
    """RFC 8058 one-click unsubscribe.

    A POST (the mail client's ``List-Unsubscribe=One-Click``, or this page's button)
    unsubscribes at once: no cookie, login or CSRF token, and never a redirect. A GET
    only shows the button, because mail scanners follow links.
    """
    try:
        subscriber = _subscriber_from(token, "unsubscribe")
    except BadToken:
        return _bad_link(request)
    if request.method == "GET":
        return render(
            request,
            "subscriptions/unsubscribe.html",
            {"subscriber": subscriber, "already": subscriber is None or subscriber.status == "unsubscribed"},
        )
    if subscriber is not None:
        services.unsubscribe(subscriber)
    return render(
        request,
        "subscriptions/unsubscribed.html",
        {
            "preferences_url": reverse("subscriptions:preferences", args=[links.manage_token(subscriber)])
            if subscriber
            else ""
        },
    )


@require_GET
def inert_link(request, link):
    """Where every reader link of a preview or test copy leads: it does nothing."""
    return _message(
        request,
        "This is a test copy",
        "This link comes from a preview or test copy of someone's digest sent to an operator. "
        "It does nothing: the reader's real links are only in the reader's own email.",
    )
