"""Why a paper matched a topic, in the paper's own words: the phrase of its title or
abstract that matched (for the "why" line), and the abstract sentence that best
matches the topic with the matching words marked (a query-biased snippet).

Both work on the text as written, word by word, comparing stems with the topic's
content words (the stems the lexical index matched on), so "parallelism" in the paper
matches "parallel" in the topic and the shown words are the paper's own.
"""

from __future__ import annotations

import re
from functools import lru_cache

from ranking.lexical import STOPWORDS, fold, stem
from ranking.query import parse_query

SNIPPET_CHARS = 240
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_JOINS_A_PHRASE = re.compile(r"^[\s\-/]*$")  # between two words of one phrase: spaces, hyphens
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[“\"'])")


@lru_cache(maxsize=4096)
def topic_stems(query: str) -> frozenset[str]:
    """The stems of a topic's content words (filters and exclusions left out)."""
    parsed = parse_query(query)
    return frozenset(stem(w) for w in _TOKEN.findall(fold(parsed.free_text)) if w not in STOPWORDS)


@lru_cache(maxsize=8192)
def _tokens(text: str) -> tuple[tuple[int, int, str | None], ...]:
    """(start, end, stem) of each word of ``text``; stem None for a stopword. Kept per text:
    one paper's title and abstract are explained for every reader it matches, each time
    for another topic (so ``matched_phrase``'s own cache, per topic and text, rarely hits)."""
    found = []
    plain = text.isascii()  # nothing to fold but the case
    for match in _TOKEN.finditer(text):
        word = match.group().lower() if plain else fold(match.group()).lower()
        found.append((match.start(), match.end(), None if word in STOPWORDS else stem(word)))
    return tuple(found)


@lru_cache(maxsize=8192)
def _joins(text: str) -> bytes:
    """Per gap between two neighbouring words of ``text`` (``_tokens``), 1 where it joins
    them into one phrase (spaces, hyphens). Kept per text, as ``_tokens``, in a byte each."""
    tokens = _tokens(text)
    return bytes(bool(_JOINS_A_PHRASE.match(text[a[1] : b[0]])) for a, b in zip(tokens, tokens[1:], strict=False))


@lru_cache(maxsize=20_000)
def _best_run(query: str, text: str) -> tuple[str, int]:
    """``matched_phrase`` and how many distinct topic words it has. Only the positions of
    the topic's words start a run; the gaps come from ``_joins``, not a regex each time."""
    stems = topic_stems(query)
    if not stems or not text:
        return "", 0
    tokens, joins = _tokens(text), _joins(text)
    starts = [position for position, token in enumerate(tokens) if token[2] in stems]
    best, best_key = "", (0, 0)
    following = 0  # the first position not yet inside a run
    for i in starts:
        if i < following:
            continue
        j, last, seen = i, i, {tokens[i][2]}
        while j + 1 < len(tokens) and joins[j]:
            nxt = tokens[j + 1][2]
            if nxt is not None and nxt not in stems:
                break
            j += 1
            if nxt is not None:
                last = j
                seen.add(nxt)
        key = (len(seen), -(last - i + 1))  # the most topic words, in the fewest words
        if key > best_key:
            best, best_key = text[tokens[i][0] : tokens[last][1]], key
        following = last + 1
    return best, best_key[0]


def matched_phrase(query: str, text: str) -> str:
    """The longest run of ``text`` made of the topic's words (stopwords allowed inside),
    as the paper writes it: "structured state space models" for "state space models".
    The run with the most distinct topic words wins, the earliest among equals; ""
    when the text has none of them."""
    return _best_run(query, text)[0]


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(" ".join(text.split())) if s.strip()]


@lru_cache(maxsize=20_000)
def snippet(query: str, abstract: str, limit: int = SNIPPET_CHARS) -> tuple[tuple[str, bool], ...]:
    """The abstract sentence that best matches the topic, as (text, is_topic_word) pieces.

    Best: the most distinct topic words, then the longest phrase of them, then the
    earliest. With no topic word anywhere (a match in meaning only), the abstract's
    opening. A sentence over ``limit`` characters is cut at a word, around its first
    topic word."""
    stems = topic_stems(query) if query else frozenset()
    sentences = _sentences(abstract or "")
    if not sentences:
        return ()
    best, best_key = 0, (0, 0)
    for position, sentence in enumerate(sentences):
        distinct = {t[2] for t in _tokens(sentence) if t[2] in stems}
        key = (len(distinct), len(matched_phrase(query, sentence).split()) if distinct else 0)
        if key > best_key:
            best, best_key = position, key
    if best_key == (0, 0):
        best = 0
    chosen = sentences[best]
    for following in sentences[best + 1 :]:  # a short sentence: the next ones too, while they fit
        if len(chosen) + 1 + len(following) > limit:
            break
        chosen = f"{chosen} {following}"
    return _pieces(_shortened(chosen, stems, limit), stems)


def _shortened(sentence: str, stems, limit: int) -> str:
    if len(sentence) <= limit:
        return sentence
    first = next((start for start, _end, s in _tokens(sentence) if s in stems), 0)
    start = 0 if first < limit // 2 else sentence.rfind(" ", 0, first - limit // 3) + 1
    cut = sentence[start : start + limit]
    cut = cut.rsplit(" ", 1)[0] if start + limit < len(sentence) else cut
    return ("…" if start else "") + cut.rstrip(",;:") + ("…" if start + len(cut) < len(sentence) else "")


def _pieces(text: str, stems) -> tuple[tuple[str, bool], ...]:
    pieces: list[tuple[str, bool]] = []
    position = 0
    for start, end, word_stem in _tokens(text):
        if word_stem in stems:
            if start > position:
                pieces.append((text[position:start], False))
            pieces.append((text[start:end], True))
            position = end
    if position < len(text):
        pieces.append((text[position:], False))
    return tuple(pieces)


def topic_reason(topic: str, matched: list[str], close: bool, title: str, abstract: str) -> str:
    """Why a paper matched a keyword topic, in words: the topic, and the phrase of the
    paper that matched it (where it is written), or "close in meaning".

    ``matched``: the topic words the index found (``ranker.matched_words``); those shown
    with an acronym ("MLLM (multimodal large language models)") are said as such."""
    stems = topic_stems(topic)
    # A run's count of distinct topic words is how much of the topic it covers.
    (in_title, title_covers), (in_abstract, abstract_covers) = _best_run(topic, title), _best_run(topic, abstract)
    if title_covers >= abstract_covers:
        phrase, where, covered = in_title, "title", title_covers
    else:
        phrase, where, covered = in_abstract, "abstract", abstract_covers
    parts = [f"its {where} says “{phrase}”"] if phrase else []
    for word in matched:
        acronym, _, meaning = word.partition(" (")
        if meaning == "spelled out)":
            parts.append(f"it spells out “{acronym}”")
        elif meaning:
            parts.append(f"“{acronym}” stands for “{meaning.rstrip(')')}”")
    if not parts:
        return f"Close in meaning to your topic “{topic}”"
    if close and covered * 2 < len(stems):
        parts.append("it is close in meaning")
    return f"Matches your topic “{topic}”: " + ", and ".join(parts)
