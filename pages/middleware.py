"""Kept public pages, served before the rest of the middleware (``pages.cache``).

Placed right after WhiteNoise: a kept page skips the session, CSRF, authentication,
messages, clickjacking and CSP middleware (their headers were kept with it, as they were
when it was made) and the view, which is most of what a Django request costs once the
page itself is made (``bench/README.md``, site_load).
"""

from __future__ import annotations

from django.http import HttpResponse
from django.utils.cache import get_conditional_response
from django.utils.http import parse_http_date_safe

from pages import cache


class PublicPageCacheMiddleware:
    """Any GET is looked up (at most one cache read: the URL is not even resolved); only answers of
    views marked ``public_page`` are kept, with their guard (a rate limit) to check again
    whenever they are served."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method != "GET" or not cache.is_enabled():
            return self.get_response(request)
        key = cache.page_key(request)
        version, kept = cache.lookup(key, shared=not cache.never_shared(request.path_info))
        if kept is not None and not kept.check(request):
            return _answer(request, kept)
        response = self.get_response(request)
        cache.keep(key, version, response)
        return response


def _answer(request, kept) -> HttpResponse:
    response = HttpResponse(kept.content, status=kept.status, headers=dict(kept.headers))
    etag, modified = response.get("ETag"), parse_http_date_safe(response.get("Last-Modified", ""))
    if etag or modified:  # feeds and the API: 304 for a copy the client has (ConditionalGetMiddleware's way)
        return get_conditional_response(request, etag=etag, last_modified=modified, response=response)
    return response
