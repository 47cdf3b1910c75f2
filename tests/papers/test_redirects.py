"""Where a fetch may be redirected: a few hops, http(s) only, and never to another
service on a loopback, private or link-local address (real servers on 127.0.0.1)."""

import pytest

from papers import fetch, services
from papers.models import ImportRun, Paper
from papers.services import ImportFailed
from tests.papers import feeds

pytestmark = pytest.mark.django_db

FEED = feeds.daily_json(feeds.samples(2))


def redirect(server, path: str, to: str, status: int = 302) -> str:
    return server.add(path, b"", status=status, headers={"Location": to})


def test_a_redirect_within_the_configured_source_is_followed(feed_server):
    feed_server.add("/api/v2/daily_papers", FEED, content_type="application/json")
    url = redirect(feed_server, "/api/daily_papers", "/api/v2/daily_papers", status=301)
    assert services.import_source(url).created == 2
    assert feed_server.routes["/api/v2/daily_papers"].hits == 1


def test_a_redirect_to_another_loopback_service_is_refused_unread(feed_server, other_server):
    secret = other_server.add("/admin/secrets.json", FEED)
    url = redirect(feed_server, "/feed", secret)
    with pytest.raises(ImportFailed, match=r"redirected to a non-public address \(127\.0\.0\.1\), refused") as caught:
        services.import_source(url)
    assert not isinstance(caught.value, services.FetchFailed)  # not retried: it would go the same way
    assert other_server.routes["/admin/secrets.json"].hits == 0
    assert not Paper.objects.exists()
    assert "non-public address" in ImportRun.objects.get().error


def test_the_check_holds_at_every_hop(feed_server, other_server):
    secret = other_server.add("/secret", FEED)
    redirect(feed_server, "/second", secret, status=307)
    url = redirect(feed_server, "/first", f"{feed_server.base_url}/second")
    with pytest.raises(ImportFailed, match="non-public address"):
        services.import_source(url)
    assert (feed_server.routes["/second"].hits, other_server.routes["/secret"].hits) == (1, 0)


def test_at_most_five_redirects(feed_server):
    for hop in range(6):
        redirect(feed_server, f"/hop{hop}", f"/hop{hop + 1}")
    feed_server.add("/hop6", FEED)
    with pytest.raises(ImportFailed, match="more than 5 redirects"):
        services.import_source(f"{feed_server.base_url}/hop0")
    assert feed_server.routes["/hop6"].hits == 0
    feed_server.add("/hop5", FEED)  # five hops are fine
    assert services.import_source(f"{feed_server.base_url}/hop0").created == 2


@pytest.mark.parametrize("target", ["file:///etc/passwd", "ftp://127.0.0.1/feed", "gopher://127.0.0.1:70/"])
def test_redirects_go_to_http_only(feed_server, target):
    url = redirect(feed_server, "/feed", target)
    with pytest.raises(ImportFailed, match="not http"):
        services.import_source(url)


@pytest.mark.parametrize(
    "address, public",
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),
        ("0.0.0.0", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("224.0.0.1", False),
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
    ],
)
def test_which_addresses_are_public(address, public):
    assert fetch._public(address) is public
