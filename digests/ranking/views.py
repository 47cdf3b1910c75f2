from django.http import HttpResponseBadRequest
from django.shortcuts import render
from django.views.decorators.http import require_GET

from subscriptions.models import Feedback, Subscriber
from subscriptions.tokens import BadToken, read_token


@require_GET
def feedback(request, token):
    """Record a vote from a digest link (first version: a GET records it)."""
    try:
        payload = read_token("feedback", token)
    except BadToken:
        return HttpResponseBadRequest("This link is not valid.")
    subscriber = Subscriber.objects.filter(id=payload["s"]).first()
    if subscriber is None:
        return HttpResponseBadRequest("This link is not valid.")
    Feedback.objects.update_or_create(
        subscriber=subscriber, paper_id=payload["p"], defaults={"vote": payload["v"], "topic_id": payload.get("t")}
    )
    return render(request, "subscriptions/message.html", {"title": "Thanks", "message": "Your vote was recorded."})
