"""URLs of the site's own pages, reversed once per process: ``reverse`` was nearly half of
a made paper page's template time (six links, the same on every page; a listing has
eleven). Keyed by the script prefix and URLconf as well, which ``reverse`` depends on.
Static files' URLs likewise (the manifest of hashed names is read once per process anyway)."""

from __future__ import annotations

import functools

from django.conf import settings
from django.templatetags.static import static as static_url
from django.urls import get_script_prefix, get_urlconf, reverse


def url(name: str, *args) -> str:
    urlconf = get_urlconf() or settings.ROOT_URLCONF
    return _reversed(name, tuple(str(arg) for arg in args), get_script_prefix(), urlconf)


@functools.lru_cache(maxsize=8192)
def _reversed(name: str, args: tuple, prefix: str, urlconf) -> str:
    return reverse(name, args=list(args), urlconf=urlconf)


def static(path: str) -> str:
    return _static(path, settings.STATIC_URL, settings.STORAGES["staticfiles"]["BACKEND"])


@functools.lru_cache(maxsize=1024)
def _static(path: str, prefix: str, backend: str) -> str:
    return static_url(path)
