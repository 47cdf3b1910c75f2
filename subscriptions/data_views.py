"""A subscriber's own data, as JSON, from the link on their preferences page.

A GET that only reads: the signed manage token is the key, as for the preferences page.
"""

import json

from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from subscriptions.exports import personal_data
from subscriptions.models import Subscriber
from subscriptions.tokens import BadToken, read_token


@never_cache
@require_GET
def my_data(request, token):
    try:
        payload = read_token("manage", token)
    except BadToken:
        return HttpResponse("This link is not valid.", status=404, content_type="text/plain; charset=utf-8")
    subscriber = Subscriber.objects.filter(id=payload.get("s")).first()
    if subscriber is None:
        return HttpResponse("There is no subscription for this link any more.", status=404, content_type="text/plain")
    response = HttpResponse(
        json.dumps(personal_data(subscriber), indent=2, ensure_ascii=False),
        content_type="application/json; charset=utf-8",
    )
    response["Content-Disposition"] = 'attachment; filename="my-paper-digest-data.json"'
    response["X-Robots-Tag"] = "noindex"
    return response
