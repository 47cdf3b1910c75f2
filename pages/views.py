"""The public site: the latest day, days, weeks and months, search, paper pages and the
JSON API. Each view validates its input, calls one selector and renders; what they read
is in ``pages.selectors``."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, JsonResponse
from django.middleware.http import ConditionalGetMiddleware
from django.shortcuts import redirect, render
from django.utils.decorators import decorator_from_middleware
from django.views.decorators.http import require_GET, require_http_methods
from django_ratelimit.core import is_ratelimited

from pages import cache as page_cache
from pages import periods, selectors
from pages.cache import public_page
from pages.forms import ApiForm, SearchForm
from pages.periods import DAILY, MONTHLY, WEEKLY
from subscriptions import views as subscription_views

API_CACHE_SECONDS = 60
conditional = decorator_from_middleware(ConditionalGetMiddleware)  # ETag from the body, 304 on a match


def limited(request, group: str, rate: str) -> bool:
    return is_ratelimited(request, group=group, key="ip", rate=rate, increment=True)


@require_http_methods(["GET", "POST"])
@public_page
def home(request):
    """The latest day that has papers. A POST is the signup form as it was posted here before
    it moved to /subscribe/: old pages and links keep working."""
    if request.method == "POST":
        return subscription_views.signup(request)
    day = selectors.latest_day()
    if day is None:
        return render(request, "pages/listing.html", {"listing": None, "is_home": True})
    listing = selectors.listing(periods.day_period(day), is_latest=True)
    return render(request, "pages/listing.html", {"listing": listing, "is_home": True})


def _period_page(request, kind: str, first_day):
    if first_day is None:
        raise Http404("No such date")
    listing = selectors.listing(periods.period_of(kind, first_day))
    response = render(request, "pages/listing.html", {"listing": listing})
    if kind == DAILY and listing.papers:  # an empty day's page points at the nearest days: any import may move them
        page_cache.for_day(response, first_day)
    return response


@require_GET
@public_page
def day(request, day):
    return _period_page(request, DAILY, periods.parse_day(day))


@require_GET
@public_page
def week(request, week):
    return _period_page(request, WEEKLY, periods.parse_week(week))


@require_GET
@public_page
def month(request, month):
    return _period_page(request, MONTHLY, periods.parse_month(month))


@require_GET
def papers_index(request):
    return redirect("pages:home")


@require_GET
@public_page(shared=False)  # 100,000 papers: kept where asked for, not all in Redis for the hour
def paper(request, pk):
    """A paper's own page: where digests link when a feed gave no link of its own."""
    paper, similar = selectors.paper_page(pk)
    if paper is None:
        raise Http404("No such paper")
    return render(request, "pages/paper.html", {"paper": paper, "similar": similar})


def search_over_limit(request) -> bool:
    """A search (not the empty form) beyond its client's rate limit (counted)."""
    return bool(SearchForm(request.GET).query()) and limited(request, "search-ip", settings.SEARCH_RATE_PER_IP)


@require_GET
@public_page(guard=search_over_limit)
def search(request):
    """The same for everyone who asks the same (after their rate limit): kept per URL."""
    form = SearchForm(request.GET)
    text = form.query()
    if text and limited(request, "search-ip", settings.SEARCH_RATE_PER_IP):
        return render(request, "pages/search.html", {"form": form, "text": text, "limited": True}, status=429)
    results = selectors.search(text, entries=True) if text else None
    return render(request, "pages/search.html", {"form": form, "text": text, "results": results})


def api_over_limit(request) -> bool:
    """Beyond the client's rate limit of the API and the search feed (counted)."""
    return limited(request, "api-ip", settings.API_RATE_PER_IP)


@require_GET
@public_page(seconds=API_CACHE_SECONDS, guard=api_over_limit)
@conditional
def api_papers(request):
    """``{"papers": [...]}``: a search (``q``), a day's papers (``date``), or both; the latest
    day's papers when neither is given."""
    if limited(request, "api-ip", settings.API_RATE_PER_IP):
        return JsonResponse({"error": "too many requests"}, status=429, headers={"Retry-After": "60"})
    form = ApiForm(request.GET)
    if not form.is_valid():
        return JsonResponse(form.errors_json(), status=400)
    data = selectors.api_papers(**form.cleaned_data, base_url=settings.SITE_URL)
    return JsonResponse(data, json_dumps_params={"ensure_ascii": False})
