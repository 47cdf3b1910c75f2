"""Atom feeds (Django's syndication framework): the latest days' papers, and any search.

Feed readers cannot run scripts: titles and summaries carry maths as Unicode
(``pages.text.plain_text``)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.syndication.views import Feed
from django.http import HttpResponse, HttpResponseBadRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.feedgenerator import Atom1Feed

from pages import periods, selectors
from pages.cache import public_page
from pages.forms import SearchForm
from pages.text import plain_text
from pages.views import api_over_limit, conditional, limited

FEED_CACHE_SECONDS = 300
TRENDING_DAYS = 3
SEARCH_FEED_DAYS = 30  # a search feed carries the matching papers of the last month, newest first


class _StableAtom(Atom1Feed):
    def latest_post_date(self):
        """An empty feed is 'updated' at midnight, not at every request (Django's default):
        its body, and so its ETag, stays the same until something changes."""
        if any(item.get("updateddate") or item.get("pubdate") for item in self.items):
            return super().latest_post_date()
        return periods.midnight(timezone.localdate())


class _PaperFeed(Feed):
    feed_type = _StableAtom

    def item_title(self, item):
        return plain_text(item.title)

    def item_description(self, item):
        return plain_text(item.abstract or "")

    def item_link(self, item):
        return item.get_absolute_url()

    def item_guid(self, item):
        return settings.SITE_URL + item.get_absolute_url()

    item_guid_is_permalink = True

    def item_author_name(self, item):
        authors = list(item.authors or [])
        return ", ".join(authors[:10]) + (" et al." if len(authors) > 10 else "") if authors else None

    def item_pubdate(self, item):
        """The start of the day it is listed under (when it was first seen, for a paper
        whose source gave no date)."""
        return periods.midnight(item.announced_on) if item.announced_on else item.first_seen_at

    item_updateddate = item_pubdate


class TrendingFeed(_PaperFeed):
    title = "Paper Digest: trending papers"
    subtitle = f"The papers of the last {TRENDING_DAYS} days that have papers, by upvotes."

    def link(self):
        return reverse("pages:home")

    def feed_url(self):
        return reverse("pages:trending-feed")

    def items(self):
        return selectors.latest_days(TRENDING_DAYS)


class SearchFeed(_PaperFeed):
    def get_object(self, request):
        return request.GET.get("q", "")

    def title(self, obj):
        return f"Paper Digest: “{obj}”"

    def subtitle(self, obj):
        return f"New papers matching “{obj}”, newest first (the last {SEARCH_FEED_DAYS} days)."

    def link(self, obj):
        return reverse("pages:search") + "?" + _query(obj)

    def feed_url(self, obj):
        return reverse("pages:search-feed") + "?" + _query(obj)

    def items(self, obj):
        since = timezone.localdate() - timedelta(days=SEARCH_FEED_DAYS)
        papers = [result.paper for result in selectors.search(obj, since=since).papers]
        return sorted(papers, key=lambda p: (periods.listed_on(p), p.first_seen_at), reverse=True)


def _query(text: str) -> str:
    from urllib.parse import urlencode

    return urlencode({"q": text})


@public_page(seconds=FEED_CACHE_SECONDS)
@conditional
def trending_feed(request):
    return TrendingFeed()(request)


@public_page(seconds=FEED_CACHE_SECONDS, guard=api_over_limit)
@conditional
def search_feed(request):
    if limited(request, "api-ip", settings.API_RATE_PER_IP):
        return HttpResponse("Too many requests", status=429, content_type="text/plain")
    form = SearchForm(request.GET)
    if not form.is_valid() or not form.query():
        return HttpResponseBadRequest("Give a search as ?q=TEXT (at most 300 characters).", content_type="text/plain")
    return SearchFeed()(request)
