"""The site's own URLs, reversed once per process (``pages.links``), stay right when the
script prefix or the URLconf changes."""

from django.urls import reverse, set_script_prefix

from pages import links


def test_links_are_what_reverse_gives_under_any_script_prefix():
    day = links.url("pages:day", "2026-03-13")
    assert day == reverse("pages:day", args=["2026-03-13"]) == "/papers/date/2026-03-13/"
    try:
        set_script_prefix("/digest/")
        assert links.url("pages:day", "2026-03-13") == "/digest/papers/date/2026-03-13/"
        assert links.url("pages:home") == "/digest/"
    finally:
        set_script_prefix("/")
    assert links.url("pages:home") == "/"


def test_static_urls_are_what_the_static_tag_gives(settings):
    from django.templatetags.static import static

    assert links.static("site.css") == static("site.css")
    settings.STATIC_URL = "/assets/"
    assert links.static("site.css") == static("site.css") == "/assets/site.css"
