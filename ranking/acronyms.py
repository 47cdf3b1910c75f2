"""Acronyms the papers define, so that "MLLM" and "multimodal large language model"
match each other.

Papers name their subject by acronym, often in the title ("MiniCPM-V: A GPT-4V Level
MLLM on Your Phone", "FAST-VQA"), and define it once in the abstract: "Multimodal
Large Language Models (MLLMs)". A reader's topic uses one form or the other. The
definitions are found with the algorithm of Schwartz & Hearst (2003, "A simple
algorithm for identifying abbreviation definitions in biomedical text"): a short form
in parentheses after its long form, whose letters appear in order in the long form,
the first at the start of a word.

Every paper of an index lends its definitions to all the others (one paper defines
"LLM", hundreds use it), except an acronym the papers define in several ways with no
clear winner ("CL": continual or contrastive learning), and a paper's own definition
always wins in that paper ("AD" as Alzheimer's disease, where most mean anomaly
detection). Each field of a paper is indexed with both forms: an
acronym adds its definition's words, a definition adds its acronym, once per field
however often it occurs (a paper that says "RNN" twenty times is not made twenty
times more about "neural networks"). Topics are left as written.

Measured with ``bench/ranking_quality.py`` (nDCG@10 on the dev / extra / blind
topics): 0.951 / 0.857 / 0.781 -> 0.966 / 0.865 / 0.794, and lexical only 0.909 /
0.830 / 0.711 -> 0.908 / 0.830 / 0.730. Adding the definition at every occurrence
gave lexical-only ranking 0.801 on the extra topics; expanding the topics' acronyms
as well counted them twice and lowered all three sets.

The ``abbreviations`` package implements the same algorithm, but configures the root
logger when imported and skips a whole abstract over one unbalanced parenthesis.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

# "long form (SF)": a short form of 2-10 characters in parentheses, one word, at least
# two capitals ("MoE", "LLMs", "NeRF"; not "i", "iii" or "see Table 2").
_SHORT_FORM = re.compile(r"(?<=\s)\(([A-Za-z][A-Za-z0-9]{1,9})\)")
_WORDS = re.compile(r"[A-Za-z0-9]+")
_CAPITALISED = re.compile(r"\b[a-z0-9]*[A-Z][a-z0-9]*[A-Z][A-Za-z0-9]*\b")  # two capitals or more
_SENTENCE_END = re.compile(r"[.;:!?]\s|[()\[\]]")


def definitions_in(text: str) -> list[tuple[str, str]]:
    """(short form, long form) pairs defined in ``text``, as written."""
    found = []
    for match in _SHORT_FORM.finditer(text):
        short = match.group(1)
        if sum(c.isupper() for c in short) < 2:
            continue
        before = text[max(0, match.start() - 300) : match.start()].rstrip()  # 20 words at most
        # Only the words of the same clause, at most min(|A| + 5, 2 |A|) of them.
        clause_start = max((m.end() for m in _SENTENCE_END.finditer(before)), default=0)
        core = short[:-1] if short.endswith("s") and short[-2].isupper() else short  # "LLMs"
        candidate = before[clause_start:].split()[-min(len(core) + 5, 2 * len(core)) :]
        long_form = _best_long_form(core, " ".join(candidate))
        if long_form and len(_WORDS.findall(long_form)) > 1:
            found.append((short, long_form))
    return found


def _best_long_form(short: str, candidate: str) -> str | None:
    """Schwartz & Hearst's match, right to left: every letter or digit of the short form
    in order in the long form, the first one at the start of a word."""
    s = len(short) - 1
    i = len(candidate) - 1
    while s >= 0:
        char = short[s].lower()
        if not char.isalnum():
            s -= 1
            continue
        while i >= 0 and (candidate[i].lower() != char or (s == 0 and i > 0 and candidate[i - 1].isalnum())):
            i -= 1
        if i < 0:
            return None
        i -= 1
        s -= 1
    start = candidate.rfind(" ", 0, i + 1) + 1
    long_form = candidate[start:]
    if short.lower() in long_form.lower().split():
        return None
    return long_form


@dataclass
class Acronyms:
    """The acronyms of a set of papers, as index terms: acronym stem -> definition stems.

    ``definitions`` are lent to every paper; ``own`` holds each text's own definitions
    (in the order of the texts), which win in that paper: where "AD" is "anomaly
    detection" for most papers, one that defines it as "Alzheimer's disease" keeps its
    meaning. ``index_terms`` turns text into index terms (the lexical index's stemmer)."""

    definitions: dict[str, tuple[str, ...]]
    index_terms: Callable[[str], list[str]]
    own: list[dict[str, tuple[str, ...]]] = field(default_factory=list)
    _by_first_term: dict[str, list[tuple[tuple[str, ...], str]]] = field(default_factory=dict, repr=False)

    def __post_init__(self):
        by_first = defaultdict(list)
        for acronym, terms in self.definitions.items():
            by_first[terms[0]].append((terms, acronym))
        self._by_first_term = dict(by_first)

    @classmethod
    def of_texts(cls, texts, index_terms) -> Acronyms:
        """Every definition in ``texts``. An acronym the papers define in more than one way
        is lent only when one definition has at least twice the support of any other;
        otherwise only the papers that define it expand it."""
        seen: dict[str, Counter] = defaultdict(Counter)
        own = []
        for text in texts:
            mine = cls.defined_in(text, index_terms)
            own.append(mine)
            for acronym, terms in mine.items():
                seen[acronym][terms] += 1
        lent = {}
        for acronym, counts in seen.items():
            (best, support), *others = counts.most_common(2)
            if not others or support >= 2 * others[0][1]:
                lent[acronym] = best
        return cls(lent, index_terms, own)

    @staticmethod
    def defined_in(text: str, index_terms) -> dict[str, tuple[str, ...]]:
        """The acronyms ``text`` itself defines, as index terms."""
        found = {}
        if "(" in text:
            for short, long_form in definitions_in(text):
                acronym = index_terms(short)
                terms = tuple(index_terms(long_form))
                if len(acronym) == 1 and len(terms) > 1 and acronym[0] not in terms:
                    found.setdefault(acronym[0], terms)
        return found

    def written_in(self, text: str, own: dict[str, tuple[str, ...]] | None = None) -> dict[str, tuple[str, ...]]:
        """The acronyms written in capitals in ``text`` that have a meaning, as written ->
        their definition's terms: ``own`` (the paper's definitions) first, else the lent one."""
        found = {}
        for written in dict.fromkeys(_CAPITALISED.findall(text)):
            for acronym in self.index_terms(written):
                definition = (own or {}).get(acronym) or self.definitions.get(acronym)
                if definition:
                    found[written] = definition
        return found

    def expansions(self, text: str, terms: list[str], own: dict[str, tuple[str, ...]] | None = None) -> list[str]:
        """Terms to index beside ``terms`` (the index terms of ``text``), each once: the
        definition of every acronym written in capitals in ``text`` (its words and their
        neighbouring pairs; "CLIP" is the model, "video clips" are not), from ``own`` (the
        paper's definitions) first, and the acronym of every definition in ``terms``."""
        extra: dict[str, None] = {}
        if self.definitions or own:
            for definition in self.written_in(text, own).values():
                extra.update(dict.fromkeys(definition))
                extra.update(dict.fromkeys(f"{a} {b}" for a, b in zip(definition, definition[1:], strict=False)))
        for position in [i for i, term in enumerate(terms) if term in self._by_first_term]:
            for long_terms, acronym in self._by_first_term[terms[position]]:
                if tuple(terms[position : position + len(long_terms)]) == long_terms:
                    extra[acronym] = None
        return list(extra)
