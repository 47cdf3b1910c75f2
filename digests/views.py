"""The web version of a delivered digest ("view in browser"), at a signed URL."""

from csp.decorators import csp_update
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from digests import content
from digests.models import Delivery
from subscriptions.links import read_webview_token
from subscriptions.tokens import BadToken


@require_GET
@csp_update({"style-src": ["'unsafe-inline'"]})  # the email's own HTML: <style> blocks, no scripts
def web_version(request, token):
    try:
        subscriber_id, delivery_id = read_webview_token(token)
    except BadToken:
        return _unavailable(request)
    delivery = (
        Delivery.objects.select_related("issue", "subscriber")
        .prefetch_related("subscriber__topics")
        .filter(id=delivery_id, subscriber_id=subscriber_id, status=Delivery.Status.SENT)
        .first()
    )
    if delivery is None:
        return _unavailable(request)
    response = HttpResponse(content.web_version(delivery))
    response["X-Robots-Tag"] = "noindex"
    response["Referrer-Policy"] = "no-referrer"  # the URL is a capability: do not leak it
    return response


def _unavailable(request):
    return render(request, "digests/unavailable.html", status=404)
