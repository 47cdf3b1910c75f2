"""The provider webhooks (django-anymail's URLs), each behind HTTP basic auth.

Anymail accepts every request when ``ANYMAIL_WEBHOOK_SECRET`` is unset, and a forged
bounce or unsubscribe event suppresses a real reader. Here a webhook answers 403 while
no secret is configured and 401 to a request without the right credentials, for every
provider (the ones that also sign their payloads are still checked by anymail).
"""

import functools

from anymail import urls as anymail_urls
from anymail.utils import get_request_basic_auth
from django.conf import settings
from django.http import HttpResponse
from django.urls import URLPattern
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt


def configured_secrets() -> list[str]:
    """The accepted ``user:password`` strings (anymail allows one or a list)."""
    secret = (getattr(settings, "ANYMAIL", None) or {}).get("WEBHOOK_SECRET") or []
    return [secret] if isinstance(secret, str) else [s for s in secret if s]


def require_webhook_secret(view):
    @csrf_exempt
    @functools.wraps(view)
    def guarded(request, *args, **kwargs):
        secrets = configured_secrets()
        if not secrets:
            return HttpResponse("Webhooks are off: no ANYMAIL_WEBHOOK_SECRET is set.\n", status=403)
        given = get_request_basic_auth(request) or ""
        if not any(constant_time_compare(given, secret) for secret in secrets):
            response = HttpResponse("Unauthorized\n", status=401)
            response["WWW-Authenticate"] = 'Basic realm="webhooks", charset="UTF-8"'
            return response
        return view(request, *args, **kwargs)

    return guarded


app_name = anymail_urls.app_name
urlpatterns = [
    URLPattern(p.pattern, require_webhook_secret(p.callback), p.default_args, p.name) for p in anymail_urls.urlpatterns
]
