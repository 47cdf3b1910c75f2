"""A reader clicks 👎 in a digest, votes on the page it opens, then changes their mind (real chromium)."""

import pytest

from subscriptions.links import FeedbackLinks
from subscriptions.models import Feedback, Subscriber
from tests.ranking_corpus import make_paper


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_click_down_then_change_to_up(live_server, page, settings):
    settings.SITE_URL = live_server.url
    reader = Subscriber.objects.create(email="reader@example.com", status=Subscriber.Status.ACTIVE)
    paper = make_paper(key="p", title="Sparse <i>Attention</i> for Long Videos", abstract="video " * 40)
    _, down = FeedbackLinks(reader.id).of(paper.id)

    page.goto(down)  # opening the link (as a mail scanner does) records nothing
    assert page.get_by_role("link", name="“Sparse <i>Attention</i> for Long Videos”").is_visible()
    assert not Feedback.objects.exists()
    page.get_by_role("button", name="👎 Less like this").click()
    page.wait_for_load_state()
    assert "👎 less like this" in page.get_by_test_id("vote").inner_text()
    assert Feedback.objects.get().vote == -1

    page.get_by_role("button", name="Change to 👍 more like this").click()
    page.wait_for_load_state()
    assert "👍 more like this" in page.get_by_test_id("vote").inner_text()
    assert Feedback.objects.get().vote == 1
