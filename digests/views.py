"""The web version of a delivered digest ("view in browser"), at a signed URL."""

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from digests import services
from digests.models import Delivery
from subscriptions.tokens import BadToken, read_token


@require_GET
def web_version(request, token):
    try:
        payload = read_token("webview", token)
    except BadToken:
        return _unavailable(request)
    delivery = (
        Delivery.objects.select_related("issue", "subscriber")
        .prefetch_related("subscriber__topics")
        .filter(id=payload.get("d"), subscriber_id=payload.get("s"), status=Delivery.Status.SENT)
        .first()
    )
    if delivery is None:
        return _unavailable(request)
    response = HttpResponse(services.web_version(delivery))
    response["X-Robots-Tag"] = "noindex"
    response["Referrer-Policy"] = "no-referrer"  # the URL is a capability: do not leak it
    return response


def _unavailable(request):
    return render(request, "digests/unavailable.html", status=404)
