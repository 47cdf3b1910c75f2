"""A reader opens a digest section's topic link, mutes a word and drops another topic
(real chromium); the page has no serious accessibility problems, light or dark."""

import pytest
from axe_playwright_python.sync_playwright import Axe

from subscriptions import services
from subscriptions.models import Subscriber
from subscriptions.topic_controls import controls_url
from tests.ranking_corpus import make_paper


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_mute_a_word_then_drop_a_topic(live_server, browser, settings, scheme):
    settings.SITE_URL = live_server.url
    services.subscribe(email="reader@example.com", topics=["state space models", "speech recognition"], timezone="UTC")
    reader = Subscriber.objects.get()
    paper = make_paper(key="p", title="Structured State Space Models", abstract="state space " * 20)
    topic = reader.topics.get(query="state space models")
    page = browser.new_page(color_scheme=scheme, viewport={"width": 390, "height": 800})

    page.goto(controls_url(reader, topic.id, [paper.id]) + "#mute")  # opening it changes nothing
    assert page.get_by_role("heading", name="“state space models” in your digest").is_visible()
    assert sorted(t.query for t in reader.topics.all()) == ["speech recognition", "state space models"]
    serious = [v for v in Axe().run(page).response["violations"] if v["impact"] in ("serious", "critical")]
    assert serious == [], serious
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    page.get_by_label("A word: papers that contain it are left out of this topic").fill("starcraft")
    page.get_by_role("button", name="Mute this word").click()
    assert "you now follow “state space models -starcraft”" in page.get_by_role("status").inner_text()
    assert sorted(t.query for t in reader.topics.all()) == ["speech recognition", "state space models -starcraft"]

    speech = reader.topics.get(query="speech recognition")
    page.goto(controls_url(reader, speech.id) + "#drop")
    page.get_by_role("button", name="Drop “speech recognition”").click()
    assert "you no longer follow “speech recognition”" in page.get_by_role("status").inner_text()
    assert [t.query for t in reader.topics.all()] == ["state space models -starcraft"]
    page.close()
