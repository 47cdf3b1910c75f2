"""Kept public pages, served before the rest of the middleware (``pages.cache``).

Placed right after WhiteNoise: a kept page skips the session, CSRF, authentication,
messages, clickjacking and CSP middleware (their headers were kept with it, as they were
when it was made) and the view, which is most of what a Django request costs once the
page itself is made (``bench/README.md``, site_load). Only GET requests for views marked
``pages.cache.public_page`` are looked up.
"""

from __future__ import annotations

from django.http import HttpResponse
from django.urls import Resolver404, resolve
from django.utils.cache import get_conditional_response
from django.utils.http import parse_http_date_safe

from pages import cache


class PublicPageCacheMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        view = self._public_view(request)
        if view is None:
            return self.get_response(request)
        key = cache.page_key(request)
        version, kept = cache.lookup(key)
        guard = view.public_page_guard
        if kept is not None and not (guard and guard(request)):
            return _answer(request, kept)
        response = self.get_response(request)
        cache.keep(key, version, response)
        return response

    @staticmethod
    def _public_view(request):
        if request.method != "GET" or not cache.is_enabled():
            return None
        try:
            view = resolve(request.path_info).func
        except Resolver404:
            return None
        return view if getattr(view, "public_page", False) else None


def _answer(request, kept) -> HttpResponse:
    _version, status, headers, content = kept
    response = HttpResponse(content, status=status, headers=dict(headers))
    etag, modified = response.get("ETag"), parse_http_date_safe(response.get("Last-Modified", ""))
    if etag or modified:  # feeds and the API: 304 for a copy the client has (ConditionalGetMiddleware's way)
        return get_conditional_response(request, etag=etag, last_modified=modified, response=response)
    return response
