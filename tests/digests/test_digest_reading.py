"""What a reader sees in the digest: an honest heading and subject, a snippet that shows
why, maths that reads, a text part that fits a terminal, and buttons a thumb can hit in
light and dark mode on a phone and a desktop (Debian's chromium)."""

import re

import pytest
from bs4 import BeautifulSoup

import emails
from digests import content
from digests.content import DigestItem
from papers.models import Paper
from tests.digests.helpers import make_subscriber

pytestmark = pytest.mark.django_db

ABSTRACT = (
    r"Transformers cost $O(n^2)$ in the sequence length. We propose structured state space models "
    r"that reach 91\% of the accuracy with \( \alpha \geq 0.5 \) and run in near-linear time. "
    "Experiments cover language, audio and images."
)


def ssm_paper(n: int, **fields) -> Paper:
    values = dict(
        id=n,
        title=rf"Selective State Spaces in $\mathcal{{O}}(n)$, part {n}",
        page_url=f"https://papers.example.org/papers/2612.{n:05d}",
        authors=["Mira Okonkwo", "Jonas Weber"],
        upvotes=n,
        abstract=ABSTRACT,
    )
    values.update(fields)
    return Paper(**values)


@pytest.fixture
def reader():
    return make_subscriber("reader@example.org", topics=["state space models", "speech recognition", "robotics"])


def render(reader, papers, topics=("state space models",)):
    items = [
        DigestItem(p, topics[i % len(topics)], "Matches your topic “state space models”") for i, p in enumerate(papers)
    ]
    ctx = content.digest_context(subscriber=reader, frequency="weekly", period="2026-W50", items=items, web=None)
    return emails.render("digest", ctx)


def test_heading_and_subject_say_how_many_strong_matches_honestly(reader):
    rendered = render(reader, [ssm_paper(1), ssm_paper(2)])
    text = BeautifulSoup(rendered.html, "html.parser").get_text(" ", strip=True)
    assert "2 strong matches this week" in text and "2 strong matches this week" in rendered.text
    assert rendered.subject == "2 papers on state space models"
    many = render(reader, [ssm_paper(n) for n in range(1, 6)], topics=("state space models", "speech", "robotics"))
    assert many.subject == "5 papers on state space models, +2 topics"


@pytest.mark.parametrize("names", [["a" * 200], ["x " * 60, "b"], ["long context language models for " * 3, "c", "d"]])
def test_subject_stays_within_70_characters(names):
    subject = content.subject(12, names)
    assert len(subject) <= 70 and subject.startswith("12 papers on ")
    if len(names) > 1:
        assert subject.endswith(f"+{len(names) - 1} topic{'s' if len(names) > 2 else ''}")


def test_latex_reads_as_unicode_in_both_parts(reader):
    rendered = render(reader, [ssm_paper(1)])
    shown = BeautifulSoup(rendered.html, "html.parser").get_text(" ", strip=True)
    for part in (shown, " ".join(rendered.text.split())):
        assert "Selective State Spaces in 𝒪(n)" in part
        assert "91% of the accuracy with α≥0.5" in part
        assert "\\" not in part and "$" not in part


def test_snippet_is_the_sentence_that_matches_with_the_topic_words_in_bold(reader):
    rendered = render(reader, [ssm_paper(1)])
    soup = BeautifulSoup(rendered.html, "html.parser")
    excerpt = soup.find("div", class_="excerpt")
    assert excerpt.get_text(" ", strip=True).startswith("We propose structured state space models")
    assert [b.get_text() for b in excerpt.find_all("strong")] == ["state", "space", "models"]
    assert "Transformers cost" not in excerpt.get_text()  # not the abstract's first 300 characters


def test_text_part_wraps_at_72_and_has_no_blank_author_lines(reader):
    papers = [ssm_paper(1, authors=[]), ssm_paper(2, authors=["", " "], upvotes=0), ssm_paper(3)]
    text = render(reader, papers).text
    for line in text.splitlines():
        assert len(line) <= 72 or "http" in line, line
        assert line == line.rstrip(), repr(line)
    assert "\n\n\n" not in text  # a paper without authors has no empty line where they would be
    assert "   Mira Okonkwo, Jonas Weber · 3\u00a0upvotes" in text


def test_text_part_never_breaks_a_count_from_its_word(reader):
    # Authors of every length up to a line: somewhere the wrap falls at the count.
    papers = [ssm_paper(n, authors=["Ada " + "x" * n, "Alan Turing"], upvotes=15) for n in range(40, 70)]
    text = render(reader, papers).text
    assert text.count("15\u00a0upvotes") == len(papers)
    assert not re.search(r"\d\n\s*upvote", text)
    assert "Why you see this: Matches your topic “state space models”" in " ".join(text.split())


def test_vote_buttons_are_buttons_with_44px_targets(reader):
    soup = BeautifulSoup(render(reader, [ssm_paper(1)]).html, "html.parser")
    buttons = soup.find_all("a", class_="button")
    assert [b.get_text() for b in buttons] == ["👍 More like this", "👎 Less like this"]
    assert all("min-height:44px" in b["style"] for b in buttons)


@pytest.mark.browser
@pytest.mark.parametrize("width", [390, 1280])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_digest_in_chromium_at_phone_and_desktop_width_light_and_dark(reader, page, width, scheme, tmp_path):
    html = render(reader, [ssm_paper(n) for n in range(1, 4)], topics=("state space models", "speech")).html
    page.set_viewport_size({"width": width, "height": 900})
    page.emulate_media(color_scheme=scheme)
    page.set_content(html)
    page.screenshot(path=str(tmp_path / f"digest-{width}-{scheme}.png"), full_page=True)
    boxes = [page.locator("a.button").nth(i).bounding_box() for i in range(page.locator("a.button").count())]
    assert len(boxes) == 6
    assert all(box["height"] >= 44 and box["width"] >= 44 for box in boxes), boxes
    # Nothing wider than the screen (no sideways scrolling on a phone).
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    preheader = page.locator(".preheader")
    assert not preheader.is_visible()
    background = page.evaluate("getComputedStyle(document.querySelector('.card td') || document.body).backgroundColor")
    text_colour = page.evaluate("getComputedStyle(document.querySelector('.excerpt')).color")
    if scheme == "dark":
        assert background in ("rgb(22, 27, 34)", "rgb(13, 17, 23)"), background
        assert text_colour == "rgb(230, 237, 243)", text_colour
    else:
        assert background in ("rgb(255, 255, 255)", "rgba(0, 0, 0, 0)"), background
        assert text_colour == "rgb(31, 35, 40)", text_colour
