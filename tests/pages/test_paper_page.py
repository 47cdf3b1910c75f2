"""A paper's own page."""

import re

import pytest

from papers.models import Paper

pytestmark = pytest.mark.django_db


def test_paper_without_links_points_to_its_own_page_which_escapes_markup(client, settings):
    paper = Paper.objects.create(
        key="title:abc",
        title="<script>alert(1)</script> Sliding Anchors",
        abstract="We keep <b>long</b> contexts focused.",
        authors=["Mira Okonkwo", "Tobias Lindqvist"],
        upvotes=3,
    )
    assert paper.url == f"{settings.SITE_URL}/papers/{paper.pk}/"
    response = client.get(f"/papers/{paper.pk}/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Sliding Anchors" in body
    assert "<script>alert(1)" not in body
    assert "Mira Okonkwo, Tobias Lindqvist" in body
    assert "We keep &lt;b&gt;long&lt;/b&gt; contexts focused." in body


def test_paper_with_a_page_links_there(client):
    paper = Paper.objects.create(key="2401.12345", title="T", page_url="https://papers.example.org/2401.12345")
    assert paper.url == "https://papers.example.org/2401.12345"
    assert client.get("/papers/999999/").status_code == 404


def test_the_page_has_links_maths_similar_papers_and_a_subscribe_call(client, papers, lexical_only):
    paper = papers["2603.10002"]
    html = client.get(paper.get_absolute_url()).content.decode()
    assert "Lena Novak" in html and "▲ 40 upvotes" in html and "Listed 13 March 2026" in html
    assert 'href="https://arxiv.org/abs/2603.10002"' in html and 'href="https://arxiv.org/pdf/2603.10002"' in html
    assert 'href="https://longctx.example.org/" rel="noopener nofollow">Project page' in html
    assert "$O(n^2)$" in html  # the source, for KaTeX (static/js/math.js) to typeset
    assert "/static/vendor/katex/katex.min.js" in html and "/static/js/math.js" in html
    assert "<script>" not in html and " onclick=" not in html  # no inline script: CSP-friendly
    assert 'class="paper"' not in html  # the numbered list style gave the title a stray "1" badge
    assert 'href="/subscribe/?paper=2603.10002"' in html  # the paper as an example: more like it
    similar = html[html.index('id="similar-title"') :]
    assert f'href="/papers/{paper.pk}/"' not in similar  # never itself


def test_similar_papers_are_neighbours_by_meaning(client, papers):
    html = client.get(papers["2603.10001"].get_absolute_url()).content.decode()
    similar = html[html.index('id="similar-title"') :]
    shown = re.findall(r'<a href="/papers/\d+/">([^<]+)</a>', similar)
    assert shown[0] == "Video Generation with Latent Diffusion"  # the other video paper comes first


def test_code_links_found_in_the_abstract(client, papers):
    html = client.get(papers["2603.10001"].get_absolute_url()).content.decode()
    assert 'href="https://github.com/example/sparse-frames" rel="noopener nofollow">Code' in html


def test_similar_papers_follow_the_stored_list_and_skip_a_deleted_one(client, papers, monkeypatch):
    """Read with the paper in one query: the list's order, a paper deleted since left out;
    an empty list is shown as such, never searched for again."""
    from pages import selectors
    from ranking.models import PaperNeighbours

    paper, others = papers["2603.10001"], [papers[key] for key in ("2603.07002", "2603.09001", "2603.10003")]
    gone = Paper.objects.create(key="title:gone", title="A Paper Deleted Since")
    PaperNeighbours.objects.update_or_create(
        paper=paper,
        defaults={"ids": [others[0].pk, gone.pk, others[1].pk, others[2].pk], "cosines": [0.9] * 4, "farthest": 0.5},
    )
    Paper.objects.filter(pk=gone.pk).delete()
    shown, similar = selectors.paper_page(paper.pk)
    assert shown.title == paper.title and shown.abstract == paper.abstract and shown.categories == ["cs.CV"]
    assert [entry.id for entry in similar] == [other.pk for other in others]
    monkeypatch.setattr(selectors, "similar_paper_ids", lambda *a, **k: pytest.fail("searched"))
    PaperNeighbours.objects.filter(paper=paper).update(ids=[], cosines=[])
    assert selectors.paper_page(paper.pk) == (shown, [])  # an empty list: nothing searched for
    assert selectors.paper_page(999_999) == (None, [])
