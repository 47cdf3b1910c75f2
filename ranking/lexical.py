"""Lexical matching: BM25F over title and abstract, with stemming.

BM25F (Robertson & Zaragoza) adds each field's length-normalised term frequency with
a weight per field *before* saturating, so a word in the title counts more than the
same word in the abstract without one field's hits being counted twice.

Everything is sparse-matrix arithmetic: one ``(topics x vocabulary)`` query matrix
times the ``(vocabulary x papers)`` weight matrix scores every topic against every
paper at once.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import cached_property, lru_cache

import numpy as np
import snowballstemmer
from scipy import sparse

from ranking.acronyms import Acronyms
from ranking.spelling import american

_WORD = re.compile(r"[a-z0-9]+")
_WRITTEN_WORD = re.compile(r"[A-Za-z0-9]+")
_VOWELS = frozenset("aeiouy")

# Short English function words: they carry no topic (BM25 would weigh them near zero
# anyway, but leaving them out keeps "why" lines and phrase checks clean). "s", "t" and
# the rest of the last line are what apostrophes leave ("Alzheimer's disease", "isn't",
# "we'll"; not "re", which hyphens leave in "re-ranking").
_STOPWORDS_TEXT = """a about above after again against all am an and any are as at be because been before being
    below between
    both but by can could did do does doing down during each few for from further had has have having he her here
    hers him his how i if in into is it its itself just me more most my no nor not now of off on once only or other
    our ours out over own same she should so some such than that the their theirs them then there these they this
    those through to too under until up very was we were what when where which while who whom why will with would
    you your yours via using use based towards toward
    s t ll ve d m don doesn didn isn aren wasn weren hasn haven hadn wouldn shouldn couldn"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())

# A snowball stemmer keeps its state on the instance: threads (the web process's
# threads rank previews) each get their own, or they corrupt each other's stems.
_stemmers = threading.local()


def _stemmer():
    stemmer = getattr(_stemmers, "english", None)
    if stemmer is None:
        stemmer = _stemmers.english = snowballstemmer.stemmer("english")
    return stemmer


def _ascii(text: str) -> str:
    """``text`` with accents dropped (and any other non-ASCII character)."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def fold(text: str) -> str:
    """Lower-case ASCII form of ``text`` (accents dropped), for matching only."""
    return _ascii(text).lower()


def words(text: str) -> list[str]:
    """The words of ``text``: lower-case runs of letters and digits."""
    return _WORD.findall(fold(text))


def written_words(text: str) -> list[str]:
    """The words of ``text`` as written (accents dropped, case kept): ``words`` before
    lower-casing, for showing a reader their own words back."""
    return _WRITTEN_WORD.findall(_ascii(text))


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """Snowball English stem of the American spelling (``optimisation`` and
    ``optimization`` -> ``optim``, see ``spelling``); also folds acronym plurals (``LLMs``
    -> ``llm``), which the stemmer leaves alone because they have no vowel."""
    stemmed = _stemmer().stemWord(american(word))
    if stemmed.endswith("s") and len(stemmed) > 3 and not _VOWELS.intersection(stemmed[:-1]):
        stemmed = stemmed[:-1]
    return stemmed


def index_terms(text: str) -> list[str]:
    """Stems of the content words of ``text`` (stopwords left out), in order."""
    return [stem(w) for w in words(text) if w not in STOPWORDS]


def with_bigrams(terms: list[str]) -> list[str]:
    """``terms`` plus each pair of neighbouring terms (``"sequenc parallel"``): a paper
    that has the topic's words side by side, as the reader wrote them, is a closer
    match than one that has them apart."""
    return terms + [f"{a} {b}" for a, b in zip(terms, terms[1:], strict=False)]


def stem_sequence(text: str) -> str:
    """All words of ``text`` stemmed, space-separated and space-padded, so that a
    phrase is a substring check: ``" long context "`` in ``" ... long context ... "``."""
    return " " + " ".join(stem(w) for w in words(text)) + " "


class LexicalIndex:
    """BM25F weights of every (paper, term) pair of one set of papers."""

    def __init__(
        self,
        titles: list[str],
        abstracts: list[str],
        *,
        title_weight: float = 3.0,
        k1: float = 2.0,
        b_title: float = 0.3,
        b_abstract: float = 0.75,
        bigram_weight: float = 0.5,
    ):
        self.bigram_weight = bigram_weight
        self.vocabulary: dict[str, int] = {}
        n_docs = len(titles)
        self.n_docs = n_docs
        self.acronyms = Acronyms.of_texts((f"{t}. {a}" for t, a in zip(titles, abstracts, strict=True)), index_terms)
        own = self.acronyms.own
        title_terms = [self._field_terms(t, own[row]) for row, t in enumerate(titles)]
        abstract_terms = [self._field_terms(a, own[row]) for row, a in enumerate(abstracts)]
        for terms in title_terms + abstract_terms:
            for term in terms:
                self.vocabulary.setdefault(term, len(self.vocabulary))
        shape = (n_docs, max(len(self.vocabulary), 1))
        title_tf = self._term_frequencies(title_terms, shape)
        abstract_tf = self._term_frequencies(abstract_terms, shape)

        def length_normalised(tf, b):
            lengths = np.asarray(tf.sum(axis=1)).ravel()
            average = lengths.mean() if n_docs and lengths.mean() > 0 else 1.0
            return sparse.diags(1.0 / (1.0 - b + b * lengths / average)) @ tf

        pseudo_tf = title_weight * length_normalised(title_tf, b_title) + length_normalised(abstract_tf, b_abstract)
        pseudo_tf = sparse.csr_matrix(pseudo_tf)
        pseudo_tf.data = pseudo_tf.data / (k1 + pseudo_tf.data)  # saturation, in [0, 1)
        document_frequency = np.bincount(pseudo_tf.indices, minlength=shape[1])
        self.idf = np.log1p((n_docs - document_frequency + 0.5) / (document_frequency + 0.5))
        self._unseen_idf = float(np.log1p((n_docs + 0.5) / 0.5))
        # (papers x terms): saturated frequency times idf; a paper's BM25F score for a
        # query is the sum over the query's terms.
        self.weights = sparse.csr_matrix(pseudo_tf @ sparse.diags(self.idf))
        self.weights_by_term = self.weights.T.tocsr()
        self._sorted_columns: np.ndarray | None = None  # each paper's term columns in order (has_terms)

    @cached_property
    def single_words(self) -> np.ndarray:
        """Per column: is it a single word (not a pair of neighbours)."""
        return np.fromiter((" " not in term for term in self.vocabulary), dtype=bool, count=len(self.vocabulary))

    def _field_terms(self, text: str, own_acronyms) -> list[str]:
        """A field's index terms: its words, neighbouring pairs and both forms of the
        acronyms the papers (its own paper first) define (see ``acronyms``)."""
        terms = index_terms(text)
        return with_bigrams(terms) + self.acronyms.expansions(text, terms, own_acronyms)

    def _term_frequencies(self, docs_terms: list[list[str]], shape) -> sparse.csr_matrix:
        rows = [row for row, terms in enumerate(docs_terms) for _ in terms]
        cols = [self.vocabulary[term] for terms in docs_terms for term in terms]
        matrix = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=shape)
        matrix.sum_duplicates()
        return matrix

    def term_idf(self, term: str) -> float:
        column = self.vocabulary.get(term)
        return float(self.idf[column]) if column is not None else self._unseen_idf

    def query_matrix(self, queries_terms: list[list[str]]) -> tuple[sparse.csr_matrix, np.ndarray]:
        """One row per query over the vocabulary, and each query's best possible score
        (the sum of its terms' idf, unseen terms included), used to put scores on a
        0..1 scale that means the same for every query."""
        rows, cols, data, ceilings = [], [], [], np.zeros(len(queries_terms))
        for row, terms in enumerate(queries_terms):
            unigrams = list(dict.fromkeys(terms))
            for term in unigrams:
                ceilings[row] += self.term_idf(term)
            weighted = [(t, 1.0) for t in unigrams] + [
                (t, self.bigram_weight) for t in with_bigrams(terms)[len(terms) :]
            ]
            for term, weight in weighted:
                column = self.vocabulary.get(term)
                if column is not None:
                    rows.append(row)
                    cols.append(column)
                    data.append(weight)
        matrix = sparse.csr_matrix((data, (rows, cols)), shape=(len(queries_terms), self.weights.shape[1]))
        matrix.sum_duplicates()
        return matrix, ceilings

    def scores(self, queries_terms: list[list[str]]) -> np.ndarray:
        """(queries x papers) BM25F scores divided by each query's ceiling: 1.0 would be
        every query term saturated in a paper; a strong match is around 0.5-0.8."""
        if not queries_terms or not self.n_docs:
            return np.zeros((len(queries_terms), self.n_docs), dtype=np.float32)
        matrix, ceilings = self.query_matrix(queries_terms)
        raw = (matrix @ self.weights_by_term).toarray()
        ceilings[ceilings == 0] = 1.0
        return (raw / ceilings[:, None]).astype(np.float32)

    def papers_with_term(self, term: str) -> np.ndarray:
        """Row indices of the papers that contain ``term`` (a stem) anywhere."""
        column = self.vocabulary.get(term)
        if column is None:
            return np.zeros(0, dtype=np.int64)
        start, end = self.weights_by_term.indptr[column], self.weights_by_term.indptr[column + 1]
        return self.weights_by_term.indices[start:end]

    def has_terms(self, row: int, terms) -> list[str]:
        """Those of ``terms`` (stems) that paper ``row`` contains: the topic's few terms
        searched in one call among the paper's hundreds, kept sorted per paper."""
        start, end = int(self.weights.indptr[row]), int(self.weights.indptr[row + 1])
        if start == end or not terms:
            return []
        if self._sorted_columns is None:
            self._sorted_columns = self.weights.sorted_indices().indices
        own = self._sorted_columns[start:end]
        wanted = [self.vocabulary.get(term, -1) for term in terms]
        found = own[np.minimum(own.searchsorted(wanted), end - start - 1)] == wanted
        return [term for term, present in zip(terms, found.tolist(), strict=True) if present]

    def text_vector(self, text: str) -> sparse.csr_matrix:
        """A (1 x terms) tf-idf vector of any text, over this index's vocabulary (with the
        acronyms' other forms, as the papers' own rows have them)."""
        counts: dict[int, float] = {}
        terms = index_terms(text)
        for term in terms + self.acronyms.expansions(text, terms, Acronyms.defined_in(text, index_terms)):
            column = self.vocabulary.get(term)
            if column is not None:
                counts[column] = counts.get(column, 0.0) + 1.0
        cols = list(counts)
        data = np.array([counts[c] / (1.2 + counts[c]) * self.idf[c] for c in cols])
        return sparse.csr_matrix((data, ([0] * len(cols), cols)), shape=(1, self.weights.shape[1]))

    def similarity_to(self, vectors: sparse.csr_matrix) -> np.ndarray:
        """Cosine similarity of each given (k x terms) vector to every paper: (k x papers).
        Used for "more like this paper" when there are no sentence embeddings."""
        if vectors.shape[0] == 0 or not self.n_docs:
            return np.zeros((vectors.shape[0], self.n_docs), dtype=np.float32)
        doc_norms = np.sqrt(np.asarray(self.weights.multiply(self.weights).sum(axis=1)).ravel())
        doc_norms[doc_norms == 0] = 1.0
        vec_norms = np.sqrt(np.asarray(vectors.multiply(vectors).sum(axis=1)).ravel())
        vec_norms[vec_norms == 0] = 1.0
        raw = (vectors @ self.weights.T).toarray()
        return (raw / vec_norms[:, None] / doc_norms[None, :]).astype(np.float32)

    def row_vectors(self, rows: list[int]) -> sparse.csr_matrix:
        return self.weights[rows]
