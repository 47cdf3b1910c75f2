"""The page behind a digest section's "Less of this topic", "Mute a word" and the footer's
"Drop a topic": a GET shows the choices (mail scanners open every link: a GET changes
nothing), each choice is a POST. The manage token in the path is the authority (as on
the preferences page), so the POST needs no CSRF cookie."""

from django.http import HttpResponseBadRequest
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from subscriptions import links, topic_controls
from subscriptions.models import Subscriber
from subscriptions.tokens import BadToken, read_token


def _paper_ids(text: str) -> list[int]:
    return [int(p) for p in (text or "").split(",") if p.strip().isdigit()][:50]


@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def topic_page(request, token, topic):
    try:
        payload = read_token("manage", token)
    except BadToken:
        return HttpResponseBadRequest("This link is not valid.")
    subscriber = Subscriber.objects.filter(id=payload.get("s")).first()
    if subscriber is None:
        return HttpResponseBadRequest("There is no subscription for this link any more.")
    papers = _paper_ids(request.POST.get("papers") if request.method == "POST" else request.GET.get("papers"))
    context = {
        "token": token,
        "papers": ",".join(map(str, papers)),
        "preferences_url": links.preferences_url(subscriber),
        "unsubscribe_url": links.unsubscribe_url(subscriber),
    }
    try:
        followed = topic_controls.followed_topic(subscriber, topic)
        context["topic"] = followed.query
        if request.method == "POST":
            context["done"] = _act(request.POST.get("action"), subscriber, topic, papers, request.POST.get("word", ""))
    except topic_controls.TopicControlError as error:
        context["error"] = str(error)
    status = 400 if "error" in context and request.method == "POST" else 200
    return render(request, "subscriptions/topic.html", context, status=status)


def _act(action, subscriber, topic_id, papers, word) -> str:
    if action == "less":
        count = topic_controls.less_of_topic(subscriber, topic_id, papers)
        return f"Noted: {count} paper{'s' if count != 1 else ''} like these will count against this topic."
    if action == "mute":
        return f"Done: you now follow “{topic_controls.mute_word(subscriber, topic_id, word)}”."
    if action == "drop":
        return f"Done: you no longer follow “{topic_controls.drop_topic(subscriber, topic_id)}”."
    raise topic_controls.TopicControlError("Choose one of the buttons.")
