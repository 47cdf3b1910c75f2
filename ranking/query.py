"""Topic query syntax.

A topic is plain words (``long context language models``); those who want more can
write:

- ``"exact phrase"``: the words must appear in this order, side by side, in the title
  or abstract (word endings ignored, so ``"language model"`` also finds "language
  models");
- ``-word`` or ``-"some phrase"``: papers containing it are left out;
- ``author:Name`` or ``author:"First Last"``: only papers by an author whose name
  contains all these words (several ``author:`` = any of them);
- ``cat:cs.CL``: only papers in that arXiv category (``cat:cs`` = any ``cs.*``;
  several ``cat:`` = any of them).

A topic made only of ``author:``/``cat:`` filters matches every paper that passes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ranking.lexical import STOPWORDS, fold, index_terms, stem_sequence, words

# A term is an optional "-" or "field:", then a quoted string or a bare word.
_TOKEN = re.compile(r'(-)?(?:(author|cat|au):)?(?:"([^"]*)"?|(\S+))', re.IGNORECASE)


@dataclass(frozen=True)
class ParsedQuery:
    text: str
    words: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()
    excluded_words: tuple[str, ...] = ()
    excluded_phrases: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    terms: tuple[str, ...] = field(default=())

    @property
    def free_text(self) -> str:
        """What the topic is about in plain words (for sentence embeddings)."""
        return " ".join([*self.words, *self.phrases])

    @property
    def is_filter_only(self) -> bool:
        return not self.terms and bool(self.authors or self.categories)

    @property
    def is_empty(self) -> bool:
        return not self.terms and not self.authors and not self.categories

    def stemmed_phrases(self) -> list[str]:
        return [seq for seq in (stem_sequence(p) for p in self.phrases) if seq.strip()]

    def stemmed_exclusions(self) -> tuple[list[str], list[str]]:
        """(single stems, stemmed phrases) that exclude a paper."""
        singles = [t for w in self.excluded_words for t in index_terms(w)]
        phrases = [seq for seq in (stem_sequence(p) for p in self.excluded_phrases) if seq.strip()]
        return singles, phrases


NAME_WORDS_MAX = 3  # "Mira Okonkwo", "Ana Lucia Costa"; more capitalised words are the topic's


def _capitalised(word: str) -> bool:
    return word[:1].isupper()


def quote_author_names(text: str) -> str:
    """``author:Mira Okonkwo`` -> ``author:"Mira Okonkwo"``: an unquoted name goes on over
    the capitalised words after it, so a full name typed without quotes names one author
    (rather than an author "Mira" and a topic word "okonkwo"). Done before a topic is
    lower-cased, while the capitals still say where the name ends."""
    tokens = list(_TOKEN.finditer(text))
    out, position, i = [], 0, 0
    while i < len(tokens):
        match = tokens[i]
        negated, prefix, quoted, bare = match.groups()
        end = i + 1
        if prefix and prefix.lower() in ("author", "au") and bare and not negated:
            while end < len(tokens) and end - i < NAME_WORDS_MAX and _follows_name(tokens[end]):
                end += 1
        if end > i + 1:
            names = [bare, *(tokens[j].group(4) for j in range(i + 1, end))]
            out.append(text[position : match.start()] + f'{prefix}:"{" ".join(names)}"')
            position = tokens[end - 1].end()
        i = end
    return "".join(out) + text[position:]


def _follows_name(match) -> bool:
    negated, prefix, quoted, bare = match.groups()
    return not negated and not prefix and quoted is None and bool(bare) and _capitalised(bare)


def parse_query(text: str) -> ParsedQuery:
    """Split a topic into plain words, phrases, exclusions and filters."""
    plain, phrases, excluded_words, excluded_phrases, authors, categories = [], [], [], [], [], []
    for match in _TOKEN.finditer(quote_author_names(text)):
        negated, prefix, quoted, bare = match.groups()
        value = quoted if quoted is not None else bare
        if not value or not value.strip():
            continue
        prefix = (prefix or "").lower()
        if prefix in ("author", "au"):
            name = " ".join(words(value.replace("_", " ")))
            if name:
                authors.append(name)
        elif prefix == "cat":
            categories.append(fold(value).strip().rstrip("."))
        elif negated:
            target = excluded_phrases if quoted is not None and len(words(value)) > 1 else excluded_words
            target.append(value.strip())
        elif quoted is not None:
            if len(words(value)) > 1:
                phrases.append(value.strip())
            else:
                plain.append(value.strip())
        elif bare == "-":
            continue
        else:
            plain.append(value)
    terms = tuple(index_terms(" ".join([*plain, *phrases])))
    return ParsedQuery(
        text=text.strip(),
        words=tuple(plain),
        phrases=tuple(phrases),
        excluded_words=tuple(excluded_words),
        excluded_phrases=tuple(excluded_phrases),
        authors=tuple(authors),
        categories=tuple(categories),
        terms=terms,
    )


def author_matches(wanted: str, author_name: str) -> bool:
    """``wanted`` (already folded words) names this author: all its words are in the name."""
    have = set(words(author_name))
    return all(part in have for part in wanted.split())


def category_matches(wanted: str, categories) -> bool:
    wanted = wanted.lower()
    for category in categories:
        category = str(category).lower()
        if category == wanted or category.startswith(wanted + "."):
            return True
    return False


def topic_problem(text: str) -> str | None:
    """Why a topic would match nothing useful, in words for the person who typed it, or None.

    A topic of stopwords only ("the", "of and") has no words to look for, and a topic of
    exclusions only ("-survey") says what to leave out of nothing: both would sit in a
    subscription and never bring a paper.
    """
    query = parse_query(text)
    if query.authors or query.categories or _content_words(query):
        return None
    if query.excluded_words or query.excluded_phrases:
        return f"“{text}” only says what to leave out. Add the words you do want, e.g. “{_example(query)}”."
    return f"“{text}” has no words to look for (only words like “the” or “of”). Say what the papers are about."


def _content_words(query: ParsedQuery) -> list[str]:
    """Words worth looking for, in any script (``terms`` keeps Latin ones only)."""
    found = (w for part in (*query.words, *query.phrases) for w in re.findall(r"\w+", part.casefold()))
    return [w for w in found if w not in STOPWORDS]


def _example(query: ParsedQuery) -> str:
    excluded = [*query.excluded_words, *(f'"{p}"' for p in query.excluded_phrases)]
    return "language models " + " ".join(f"-{w}" for w in excluded)
