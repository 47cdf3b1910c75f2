"""Search: the topic syntax over every paper, ranked by the hybrid ranker, and its pages."""

import re

import pytest
from django.db import connection

from pages.selectors import Found, _found_row
from papers.models import Paper
from ranking import index
from ranking.api import RankedPaper, parsed
from ranking.api import search_papers as search
from ranking.search import uses_full_text
from tests.pages.conftest import titles

pytestmark = pytest.mark.django_db


def test_search_ranks_with_the_hybrid_ranker_and_shows_count_time_and_email_me(client, papers):
    html = client.get("/search", {"q": "video understanding"}).content.decode()
    found = titles(html, papers)
    assert found[0] == "Long Video Understanding with Sparse Frame Sampling"
    assert "Protein Structure" not in " ".join(found) and "Legged Robot" not in " ".join(found)
    assert re.search(r"\d+ papers? match(es)? “video understanding”.*\(\d+\.\d\d s\)", html)
    assert "href=\"/subscribe/?topic=video%20understanding\">Email me new papers on 'video understanding'</a>" in html
    assert 'href="/feeds/search.atom?q=video%20understanding"' in html


def test_the_query_syntax_of_topics_works_in_search(papers):
    by = lambda text: [r.paper.title for r in search(text).papers]  # noqa: E731
    assert by('"latent diffusion"') == ["Video Generation with Latent Diffusion"]
    assert "Video Generation with Latent Diffusion" not in by("video -diffusion")
    assert by("video -diffusion")[0] == "Long Video Understanding with Sparse Frame Sampling"
    assert by("author:Hinton") == ["Reinforcement Learning for Legged Robot Locomotion"]
    assert set(by("cat:cs.CV")) == {
        "Long Video Understanding with Sparse Frame Sampling",
        "Video Generation with Latent Diffusion",
    }
    assert by("speech author:Hinton") == []


def test_upvotes_only_reorder_relevant_papers(papers):
    result = search("reinforcement learning robots")
    assert [r.paper.title for r in result.papers] == ["Reinforcement Learning for Legged Robot Locomotion"]
    assert result.total == 1 and result.seconds > 0


def test_an_empty_query_gets_help_not_an_error(client, papers):
    response = client.get("/search")
    assert response.status_code == 200
    html = response.content.decode()
    assert "author:Hinton" in html and '"video diffusion"' in html
    assert client.get("/search", {"q": "   "}).status_code == 200


def test_nothing_found_gets_suggestions_and_still_offers_email(client, papers):
    html = client.get("/search", {"q": "quantum chromodynamics lattice"}).content.decode()
    assert "No papers match “quantum chromodynamics lattice” yet" in html
    assert "try fewer or broader words" in html
    assert 'href="/subscribe/?topic=quantum%20chromodynamics%20lattice"' in html


def test_a_query_too_long_or_odd_is_never_an_error(client, papers):
    assert client.get("/search", {"q": "x" * 5000}).status_code == 200
    for odd in ['"', "-", "author:", "cat:", '-"', "a & b | !c", "'; drop table", "\\"]:
        assert client.get("/search", {"q": odd}).status_code == 200, odd


def test_searches_are_rate_limited_per_address(client, papers, settings):
    settings.SEARCH_RATE_PER_IP = "2/m"
    codes = [client.get("/search", {"q": f"video {n}"}).status_code for n in range(3)]
    assert codes == [200, 200, 429]
    assert "Too many searches" in client.get("/search", {"q": "video"}).content.decode()


def test_the_subscribe_page_takes_topics_from_the_link(client, db):
    html = client.get("/subscribe/", {"topic": ["video understanding", '"state space" models', ""]}).content.decode()
    textarea = re.search(r'<textarea name="topics"[^>]*>(.*?)</textarea>', html, re.DOTALL).group(1)
    assert textarea.strip() == "video understanding\n&quot;state space&quot; models"


def test_search_candidates_come_from_the_database_s_own_index(papers, django_assert_max_num_queries):
    """PostgreSQL: full-text search over the GIN index picks candidates; SQLite: the in-memory index."""
    if connection.vendor == "postgresql":
        assert uses_full_text()
        with connection.cursor() as cursor:
            cursor.execute("SET enable_seqscan = off")  # six rows: make the planner show it can use the index
            cursor.execute(
                "EXPLAIN SELECT id FROM papers_paper WHERE search_document @@ plainto_tsquery('english', 'video')"
            )
            plan = " ".join(row[0] for row in cursor.fetchall())
            cursor.execute("RESET enable_seqscan")
        assert "paper_search_document_gin" in plan
    else:
        assert not uses_full_text()
    assert search("video").total == 2


def test_a_full_name_after_author_finds_that_author(client, papers):
    by = lambda text: [r.paper.title for r in search(text).papers]  # noqa: E731
    video = "Long Video Understanding with Sparse Frame Sampling"
    assert by("author:Mei Tanaka") == by('author:"Mei Tanaka"') == by("author:tanaka") == [video]
    assert by("author:Mei Tanaka video") == [video]
    assert by("author:Mei Tanaka speech") == []
    html = client.get("/search", {"q": "author:Mei Tanaka"}).content.decode()
    assert video in titles(html, papers)


def _result(html: str, paper) -> str:
    """The list item of ``paper`` on a page."""
    return re.search(rf'<li class="entry">(?:(?!</li>).)*href="/papers/{paper.pk}/"(?:(?!</li>).)*</li>', html).group(0)


def test_a_result_shows_the_sentence_that_matches_with_the_searched_words_in_bold(client, papers):
    """A query-biased snippet: not the abstract's opening, but its sentence with the most
    searched words, those words in bold; the same once the search comes from the cache."""
    video = papers["2603.10001"]
    for url in ("/search?q=temporal+reasoning", "/search?q=temporal+reasoning&from=cache"):
        item = _result(client.get(url).content.decode(), video)
        snippet = re.search(r'<p class="entry-snippet entry-snippet-found">(.*?)</p>', item).group(1)
        assert snippet == (
            "Sparse frames answer questions about events, improving <strong>temporal</strong> "
            "<strong>reasoning</strong> over video. Code: https://github.com/example/sparse-frames."
        )
        assert "We study video understanding" not in item and "entry-why" not in item


def test_a_result_s_snippet_has_its_maths_as_unicode_and_everything_escaped(client, papers):
    Paper.objects.create(
        key="2603.10009",
        title="Graphene Transistors",
        abstract="Our <b>bold</b> claim & its proof. Graphene transistors switch at $10^{12}$ Hz.",
        first_seen_at=papers["2603.10001"].first_seen_at,
    )
    index.clear_cache()
    html = client.get("/search", {"q": "graphene transistors"}).content.decode()
    snippet = re.search(r'<p class="entry-snippet entry-snippet-found">(.*?)</p>', html).group(1)
    assert snippet == "<strong>Graphene</strong> <strong>transistors</strong> switch at 10¹² Hz."
    html = client.get("/search", {"q": "bold claim"}).content.decode()
    assert "Our &lt;b&gt;<strong>bold</strong>&lt;/b&gt; <strong>claim</strong> &amp; its proof." in html


def test_a_result_without_the_searched_words_says_it_is_close_in_meaning(papers):
    paper = papers["2603.10001"]
    row = _found_row(parsed("clips of moving pictures"), RankedPaper(paper, 0.4, matched_terms=[]))
    assert Found(paper, *row[1:]).note == "Close in meaning, without the words searched for"
    assert _found_row(parsed("video"), RankedPaper(paper, 0.4, matched_terms=["video"]))[3] == ""
    assert _found_row(parsed("author:Tanaka"), RankedPaper(paper, 0.4, matched_terms=[]))[3] == ""


@pytest.mark.django_db(transaction=True)  # the threads' own connections see the papers
def test_a_search_many_ask_for_at_once_is_ranked_once(papers, monkeypatch):
    """Right after an import every popular search is asked for by several web threads
    before the first has ranked it: one ranks, the others read its ranking."""
    import threading
    import time

    from pages import selectors

    ranked, real = [], selectors.search_papers

    def slow_ranking(*args, **kwargs):
        ranked.append(args)
        time.sleep(0.3)
        return real(*args, **kwargs)

    monkeypatch.setattr(selectors, "search_papers", slow_ranking)
    results, start = [], threading.Barrier(4)

    def ask():
        start.wait()
        results.append([found.paper.pk for found in selectors.search("video", entries=True).papers])
        connection.close()

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ranked) == 1
    assert len(results) == 4 and results[0] and all(result == results[0] for result in results)
