"""The ranking itself: score every distinct topic once against the paper index, then
pick each reader's papers from those scores.

A "request" is one reader: a subscriber, or the anonymous reader of the signup
preview and of ``rank_papers``. All requests of one call share one index, one topic
score matrix and one feedback similarity matrix; the per-reader step is numpy over
the papers, never a Python loop over (topic, paper) pairs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from functools import lru_cache

import numpy as np

from ranking import fusion, selection, semantic, store
from ranking.explain import topic_reason
from ranking.fusion import FusionConfig, floor_for, fuse, semantic_scale, trending_prior, with_feedback
from ranking.index import PaperIndex, get_index
from ranking.lexical import stem, words, written_words
from ranking.personal import STRONG_LIKE_SHARE, Vote, VoteSimilarity, evidence_of, personalise
from ranking.query import ParsedQuery, author_matches, category_matches, parse_query

log = logging.getLogger(__name__)

MAX_PAPERS = 20
MATCHED_WORDS_KEPT = 200_000  # (topic, paper) explanations remembered per paper index


@dataclass
class RankedPaper:
    paper: object
    score: float
    topic: str | None = None
    why: str = ""
    matched_terms: list[str] = field(default_factory=list)
    topic_id: int | None = None


@dataclass(frozen=True)
class TopicRef:
    """A topic to rank: its query text, and for a followed topic the caller's id for it
    (given back on each ``RankedPaper``; its embedding is kept in ranking's store)."""

    query: str
    id: int | None = None


@dataclass
class Request:
    """One reader: their topics and followed authors, the papers never to show them
    (``exclude_ids``: those sent before; nor any paper with the same identity), and
    their evidence: ``votes`` (``Vote``: paper, 👍/👎, the topic's section, when),
    ``example_paper_ids`` (papers they gave as examples of what they want: a 👍 each)
    and plain ``liked_ids``/``disliked_ids`` (votes with no section or date). Papers
    voted on or given as examples are never shown either."""

    key: object
    topics: list[TopicRef]
    authors: list[str] = field(default_factory=list)
    exclude_ids: set[int] = field(default_factory=set)
    liked_ids: list[int] = field(default_factory=list)
    disliked_ids: list[int] = field(default_factory=list)
    votes: list[Vote] = field(default_factory=list)
    example_paper_ids: list[int] = field(default_factory=list)


@dataclass
class TopicScores:
    queries: list[ParsedQuery]
    refs: list[TopicRef]
    lexical: np.ndarray
    semantic: np.ndarray | None  # on the 0..1 scale
    relevance: np.ndarray  # -inf where a filter (phrase, exclusion, author, cat) rules a paper out


@lru_cache(maxsize=50_000)
def parsed(query: str) -> ParsedQuery:
    return parse_query(query)


def as_datetime(since):
    """``since`` as an aware datetime (a date means its midnight, UTC)."""
    if since is None or isinstance(since, datetime):
        return since
    if isinstance(since, date):
        return datetime.combine(since, time.min, tzinfo=UTC)
    raise TypeError(f"since must be a date or datetime, not {type(since).__name__}")


# -- topics -------------------------------------------------------------------------


def topic_vectors(refs: list[TopicRef], queries: list[ParsedQuery]) -> np.ndarray:
    """Embeddings of the topics. Followed topics (those with an ``id``) are looked up in
    ranking's store first, and what has to be computed for them is stored; the others
    (a preview's words) come from the caches or the model and are never stored."""
    texts = [query.free_text for query in queries]
    followed = {query.free_text for ref, query in zip(refs, queries, strict=True) if ref.id is not None}
    followed.discard("")
    known = store.stored_query_vectors(followed)
    for text, vector in known.items():
        semantic.remember_query(text, vector)
    wanted = [text for text in dict.fromkeys(texts) if text and text not in known]
    if wanted:
        known.update(zip(wanted, semantic.embed_queries(wanted), strict=True))
        store.store_query_vectors({text: known[text] for text in wanted if text in followed})
    vectors = np.zeros((len(refs), semantic.DIMENSIONS), dtype=np.float32)
    for row, text in enumerate(texts):
        if text:
            vectors[row] = known[text]
    return vectors


def score_topics(index: PaperIndex, refs: list[TopicRef], config: FusionConfig | None = None) -> TopicScores:
    """Every topic against every paper of the index, in a few matrix operations.

    A topic's scores depend only on its words, the papers and the configuration, so they
    are kept per index (``PaperIndex.topic_scores``, bounded in bytes): the topics an
    issue's readers share are scored once, not again in every batch.
    """
    config = config or fusion.DEFAULT
    if not refs:
        return compute_topic_scores(index, refs, config)
    known = index.known_topic_scores([(config, ref.query) for ref in refs])
    missing = list({ref.query: ref for ref in refs if (config, ref.query) not in known}.values())
    if missing:
        fresh = compute_topic_scores(index, missing, config)
        for row, ref in enumerate(missing):  # copies: a kept row must not hold the whole matrix
            semantic_row = fresh.semantic[row].copy() if fresh.semantic is not None else None
            known[(config, ref.query)] = (fresh.lexical[row].copy(), semantic_row, fresh.relevance[row].copy())
        index.keep_topic_scores({(config, ref.query): known[(config, ref.query)] for ref in missing})
    rows = [known[(config, ref.query)] for ref in refs]
    return TopicScores(
        [parsed(ref.query) for ref in refs],
        refs,
        np.stack([r[0] for r in rows]),
        None if rows[0][1] is None else np.stack([r[1] for r in rows]),
        np.stack([r[2] for r in rows]),
    )


def compute_topic_scores(index: PaperIndex, refs: list[TopicRef], config: FusionConfig) -> TopicScores:
    """Every topic against every paper, computed now (``score_topics`` keeps the rows)."""
    queries = [parsed(ref.query) for ref in refs]
    lexical = index.lexical.scores([list(q.terms) for q in queries])
    cosine = None
    if index.embeddings is not None and index.size:
        cosine = topic_vectors(refs, queries) @ index.embeddings.T
    relevance = fuse(lexical, cosine, config)
    for row, query in enumerate(queries):
        _apply_syntax(index, query, relevance[row])
    semantic_scores = None
    if cosine is not None:
        semantic_scores = semantic_scale(cosine, config)
        # Again, with what the topic's confident matches are about (filters still apply).
        topic_rows = [row for row, query in enumerate(queries) if query.terms]
        relevance = with_feedback(relevance, semantic_scores, index.embeddings, topic_rows, config)
    return TopicScores(queries, refs, lexical, semantic_scores, relevance)


def _apply_syntax(index: PaperIndex, query: ParsedQuery, relevance: np.ndarray) -> None:
    """Phrases, exclusions, author: and cat: on one topic's row, in place."""
    if query.is_empty:
        relevance[:] = -np.inf
        return
    allowed = None
    if query.phrases:
        allowed = _papers_with_phrases(index, query.stemmed_phrases())
    if query.authors:
        by_author = index.papers_by_authors(query.authors)
        allowed = by_author if allowed is None else allowed & by_author
    if query.categories:
        in_category = index.papers_in_categories(query.categories)
        allowed = in_category if allowed is None else allowed & in_category
    excluded_terms, excluded_phrases = query.stemmed_exclusions()
    if excluded_terms or excluded_phrases:
        excluded = np.zeros(index.size, dtype=bool)
        for term in excluded_terms:
            excluded[index.lexical.papers_with_term(term)] = True
        if excluded_phrases:
            excluded |= _papers_with_phrases(index, excluded_phrases, any_of=True)
        allowed = ~excluded if allowed is None else allowed & ~excluded
    if query.is_filter_only:
        # Nothing to be relevant to but the filters: every paper that passes them is.
        relevance[:] = np.where(allowed, 1.0, -np.inf)
    elif allowed is not None:
        relevance[~allowed] = -np.inf


def _papers_with_phrases(index: PaperIndex, phrases: list[str], *, any_of: bool = False) -> np.ndarray:
    """Papers whose stemmed title+abstract contains all (or any) of the stemmed phrases;
    only papers holding every word of a phrase are scanned."""
    result = np.zeros(index.size, dtype=bool) if any_of else np.ones(index.size, dtype=bool)
    for phrase in phrases:
        found = np.zeros(index.size, dtype=bool)
        candidates = None
        for term in phrase.split():
            rows = set(index.lexical.papers_with_term(term).tolist())
            if index.lexical.vocabulary.get(term) is None:
                continue  # a stopword: not indexed, checked by the substring test
            candidates = rows if candidates is None else candidates & rows
        scan = range(index.size) if candidates is None else candidates
        for row in scan:
            if phrase in index.sequences[row]:
                found[row] = True
        result = result | found if any_of else result & found
    return result


# -- readers ------------------------------------------------------------------------


@dataclass
class _Choice:
    row: int
    score: float
    topic_row: int | None = None
    liked_row: int | None = None  # column of the liked paper it is like (VoteSimilarity)
    author: str | None = None
    example: bool = False  # the liked paper (``liked_row``) is one of the reader's example papers


def rank_requests(requests: list[Request], *, since=None, limit: int = 10, config: FusionConfig | None = None):
    """``{request.key: [RankedPaper, ...]}``, best first, at most ``limit`` each."""
    config = config or fusion.DEFAULT
    limit = max(1, min(int(limit), MAX_PAPERS))
    since = as_datetime(since)
    index = get_index(since)
    semantic_on = index.embeddings is not None
    if not semantic_on:
        semantic.is_available()  # logs once why ranking is lexical only

    refs, topic_row = [], {}
    for request in requests:
        for ref in request.topics:
            if ref.query not in topic_row:
                topic_row[ref.query] = len(refs)
                refs.append(ref)
    scores = score_topics(index, refs, config)
    evidence = {id(request): evidence_of(request) for request in requests}
    voted = [vote.paper_id for votes in evidence.values() for vote in votes]
    feedback = VoteSimilarity(index, voted, semantic_on)
    prior = trending_prior(index.upvotes if index.upvotes is not None else np.zeros(index.size))
    floor = floor_for(semantic_on, config)
    cuts = selection.topic_cuts(scores.relevance, scores.lexical, scores.semantic)
    shared = _Shared(config.trending_weight * prior, np.arange(index.size), selection.near_duplicates(index))

    choices = {}
    for request in requests:
        rows = [topic_row[ref.query] for ref in request.topics]
        votes = evidence[id(request)]
        choices[request.key] = _choose(index, scores, rows, request, votes, feedback, prior, floor, limit, cuts, shared)

    wanted_ids = {int(index.ids[c.row]) for chosen in choices.values() for c in chosen}
    papers = index.papers(wanted_ids)
    result = {}
    for request in requests:
        result[request.key] = [
            _explain(index, scores, feedback, choice, papers[int(index.ids[choice.row])])
            for choice in choices[request.key]
            if int(index.ids[choice.row]) in papers
        ]
    return result


def _strong_topics(scores: TopicScores, cuts, rows, block, by_text=None):
    """Per paper, which of the reader's topics (position in ``rows``) it is a strong
    match for (``selection``; ``block`` is their relevance, votes applied), -1 for none.

    ``by_text``: the papers strong by the text alone stay strong whatever the votes
    (the cuts are the text's: votes bring in only what they lift over them)."""
    semantic_rows = None if scores.semantic is None else scores.semantic[rows]
    mask = selection.strong_mask(cuts, rows, block, scores.lexical[rows], semantic_rows)
    if by_text is not None:
        mask |= by_text
    return selection.best_strong_topic(mask, block)


def _strong_by_text(scores: TopicScores, cuts, rows) -> np.ndarray:
    semantic_rows = None if scores.semantic is None else scores.semantic[rows]
    return selection.strong_mask(cuts, rows, scores.relevance[rows], scores.lexical[rows], semantic_rows)


@dataclass
class _Shared:
    """What every reader of one call uses alike, worked out once per call: the trending
    prior as added to scores, the papers' positions, and the near-duplicate test (it
    keeps the normalised titles it compared)."""

    trend: np.ndarray
    positions: np.ndarray
    same: object


def _choose(index, scores: TopicScores, rows, request: Request, votes, feedback, prior, floor, limit, cuts, shared):
    size = index.size
    if size == 0:
        return []
    trend, positions = shared.trend, shared.positions
    kept = np.zeros(size, dtype=bool)
    excluded = index.rows_same_as([*request.exclude_ids, *(vote.paper_id for vote in votes)])
    if rows:
        block, by_text = scores.relevance[rows], None
        ordered = block  # what orders the strong matches
        if votes:  # a strong match by the text stays one (and in) whatever the votes
            topic_ids = [scores.refs[row].id for row in rows]
            personal = personalise(block, topic_ids, votes, feedback, floor, unavailable=excluded)
            by_text = _strong_by_text(scores, cuts, rows)
            kept[by_text.any(axis=0)] = True
            ordered = selection.order_with_votes(
                block, personal.ordering, by_text, STRONG_LIKE_SHARE, brought=personal.relevance
            )
            block = personal.relevance
        strong = _strong_topics(scores, cuts, rows, block, by_text)
        if len(rows) == 1:  # one topic: it is every paper's best
            best_topic = np.zeros(size, dtype=np.int64)
            best, order = block[0], ordered[0] + trend
        else:
            best_topic = np.where(strong >= 0, strong, block.argmax(axis=0))
            best = block[best_topic, positions]
            order = ordered[best_topic, positions] + trend
    else:
        strong = np.full(size, -1, dtype=np.int64)
        best_topic = np.zeros(size, dtype=np.int64)
        best = np.full(size, -np.inf, dtype=np.float32)
        order = best + trend
    score = np.array(best, dtype=np.float64)  # the reader's relevance, votes included
    eligible = (strong >= 0) & ((best >= floor) | kept)
    liked_col = personal.liked_col[best_topic, positions] if rows and votes else None
    score = score + trend

    like_example, example_col = selection.like_examples(feedback, request.example_paper_ids)
    example_only = like_example & ~eligible & ~excluded  # a strong match by its example paper alone
    eligible = (eligible | like_example) & ~excluded
    score = np.where(example_only, np.maximum(score, floor), score)
    order = np.where(example_only, np.maximum(order, floor), order)

    chosen: list[_Choice] = []
    if request.authors:
        by_author = index.papers_by_authors(request.authors) & ~excluded
        author_rows = np.flatnonzero(by_author)
        author_rows = author_rows[np.lexsort((-prior[author_rows], -index.first_seen[author_rows]))]
        for row in author_rows[:limit]:
            chosen.append(_Choice(int(row), float(max(score[row], 1.0)), author=_followed_name(index, row, request)))
        eligible[author_rows] = False

    candidates = np.flatnonzero(eligible)
    room = limit - len(chosen)
    if room > 0 and candidates.size:
        # Each topic's strong matches in turn (selection.interleave), near-duplicates left
        # out; within a topic, what only the reader's votes make strong comes after what
        # the text makes strong. Papers like an example paper take their turn as a group
        # of their own (also when the example, a like, lifts them over a topic's cut),
        # and are listed after the topics' papers.
        same = shared.same
        picked_rows = [c.row for c in chosen]
        by_evidence = ~kept[candidates] if rows and votes else None
        group = np.where(strong >= 0, strong, len(rows))
        if rows and votes:
            group = np.where(like_example & ~kept, len(rows), group)
        top = selection.interleave(
            candidates,
            order[candidates],
            group[candidates],
            index.first_seen[candidates],
            room,
            lambda row, picked: same(row, picked_rows + picked),
            later=by_evidence,
        )
        top = [row for row in top if group[row] < len(rows)] + [row for row in top if group[row] >= len(rows)]
        examples = _example_columns(feedback, request)
        for row in top:
            col = int(liked_col[row]) if liked_col is not None and liked_col[row] >= 0 else None
            if strong[row] >= 0:
                topic = int(rows[strong[row]])
                chosen.append(_Choice(int(row), float(score[row]), topic, liked_row=col, example=col in examples))
            else:
                chosen.append(_Choice(int(row), float(score[row]), liked_row=int(example_col[row]), example=True))
    return chosen


def _example_columns(feedback: VoteSimilarity, request: Request) -> set[int]:
    """The columns (``VoteSimilarity``) of the reader's example papers that they did not
    also vote on: a paper like one of those is "like one of your example papers", not
    "like one you liked"."""
    voted = {int(i) for i in request.liked_ids} | {int(v.paper_id) for v in request.votes}
    examples = {int(i) for i in request.example_paper_ids} - voted
    return {feedback.column_of[i] for i in examples if i in feedback.column_of}


def _followed_name(index: PaperIndex, row, request: Request) -> str:
    for name in index.authors[row]:
        for followed in request.authors:
            if words(followed) and author_matches(" ".join(words(followed)), name):
                return name
    return ""


# -- why ----------------------------------------------------------------------------


def _explain(index: PaperIndex, scores: TopicScores, feedback: VoteSimilarity, choice: _Choice, paper):
    if choice.author:
        return RankedPaper(paper, choice.score, None, f"New paper by {choice.author}, whom you follow", [])
    parts, matched, topic, topic_id = [], [], None, None
    if choice.topic_row is not None:
        ref, query = scores.refs[choice.topic_row], scores.queries[choice.topic_row]
        topic, topic_id = ref.query, ref.id
        matched = matched_words(index, query, choice.row, f"{paper.title}. {paper.abstract or ''}")
        close = scores.semantic is not None and scores.semantic[choice.topic_row, choice.row] >= 0.5
        if query.is_filter_only:
            parts.append(_filters_reason(query, paper))
        else:
            parts.append(topic_reason(query.free_text, matched, close, paper.title or "", paper.abstract or ""))
    if choice.liked_row is not None:
        title = feedback.titles[choice.liked_row]
        short = title if len(title) <= 70 else title[:67].rstrip() + "…"
        said = "one of your example papers" if choice.example else "which you liked"
        parts.append(f"{'close' if parts else 'Close'} to “{short}”, {said}")
    why = "; ".join(parts) if parts else "Relevant to your topics"
    return RankedPaper(paper, choice.score, topic, why, matched, topic_id)


def _filters_reason(query: ParsedQuery, paper) -> str:
    """A topic of filters only, said in words: "By Mira Okonkwo, whom you follow", "In
    cs.CL, which you follow"."""
    said = []
    names = [name for name in paper.authors or [] for wanted in query.authors if author_matches(wanted, name)]
    if names:
        said.append(f"by {names[0]}, whom you follow")
    categories = [c for c in paper.categories or [] if any(category_matches(w, [c]) for w in query.categories)]
    if categories or query.categories:
        said.append(f"in {categories[0] if categories else query.categories[0]}, which you follow")
    text = " and ".join(said) or "matches your filters"
    return text[:1].upper() + text[1:]


def matched_words(index: PaperIndex, query: ParsedQuery, row: int, paper_text: str = "") -> list[str]:
    """The topic's own words (as the reader wrote them) that this paper contains.

    Words the paper has only through an acronym are shown with it: "MLLM (multimodal
    large language models)" where the topic spells out what the paper abbreviates, and
    "MLLM (spelled out)" the other way round; ``paper_text`` is the paper's title and
    abstract, where the acronym is looked up as written.

    Remembered per index: an issue explains the same (topic, paper) pairs to everyone
    who shares the topic."""
    key = (query.text, row)
    shown = index.matched.get(key)
    if shown is None:
        present = set(index.lexical.has_terms(row, query.terms))
        found = {term: word for term, word in _topic_words(query.free_text) if term in present}
        sequence = index.sequences[row]  # stems of the title and abstract, space-padded
        written = {term for term in found if f" {term} " in sequence}
        shown = list(found.values())
        if len(written) < len(found):
            shown = _with_acronyms(index, row, found, written, paper_text)
        if len(index.matched) >= MATCHED_WORDS_KEPT:
            index.matched.clear()
        index.matched[key] = shown
    return list(shown)


@lru_cache(maxsize=50_000)
def _topic_words(free_text: str) -> tuple[tuple[str, str], ...]:
    """(stem, the word as the reader wrote it) of each word of a topic, the first word
    of each stem: worked out once per topic, not for every paper it is explained on."""
    found: dict[str, str] = {}
    for word in written_words(free_text):
        found.setdefault(stem(word.lower()), word)
    return tuple(found.items())


def _with_acronyms(index: PaperIndex, row: int, found: dict[str, str], written: set[str], paper_text: str):
    """``found`` (stem -> topic word) shown with the acronyms of this paper that explain
    the words it does not write (``written``: those of ``found`` it does write): each
    acronym with every topic word of its definition."""
    acronyms = index.lexical.acronyms
    unwritten = {term for term in found if term not in written}
    explained: dict[str, list[str]] = {}  # acronym as written -> stems of topic words it stands for
    for acronym, definition in acronyms.written_in(paper_text, acronyms.own[row]).items():
        if unwritten.intersection(definition):
            explained[acronym] = [term for term in found if term in definition]
            unwritten.difference_update(definition)
    in_acronyms = {term for terms in explained.values() for term in terms}
    shown = [word for term, word in found.items() if term in written and term not in in_acronyms]
    shown += [f"{acronym} ({' '.join(found[t] for t in terms)})" for acronym, terms in explained.items()]
    shown += [f"{found[term]} (spelled out)" for term in found if term in unwritten]
    return shown
