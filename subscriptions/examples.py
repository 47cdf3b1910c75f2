"""Example papers as a way of following ("more like these"): what a reader types, one per
line, resolved to papers of our catalogue. An arXiv id (``2312.00752``, with or without
a version), an arXiv or paper-page link (the id in it; our own ``/papers/<id>/`` pages),
or a title as the catalogue has it (the signup page offers them as you type)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from papers.models import Paper

MAX_EXAMPLES = 10
_ARXIV_ID = re.compile(r"(?<![\d.])(\d{4}\.\d{4,5})(?:v\d+)?(?![\d])")
_OUR_PAPER_PAGE = re.compile(r"^/papers/(\d+)/?$")


class UnknownExamples(ValueError):
    """Lines that name no paper of the catalogue; the message lists them."""


def _lookup(line: str):
    """("id", paper id) / ("arxiv", arXiv id) / ("title", text) for one typed line."""
    parts = urlsplit(line) if "://" in line or line.startswith("/") else None
    if parts and (match := _OUR_PAPER_PAGE.match(parts.path)) and not _ARXIV_ID.search(line):
        return "id", int(match.group(1))
    if match := _ARXIV_ID.search(line):
        return "arxiv", match.group(1)
    return "title", " ".join(line.split())


def resolve(lines) -> list[int]:
    """The paper ids the lines name, in order, each once; raises ``UnknownExamples`` naming
    every line that matches nothing (nothing is stored then)."""
    wanted = [(line, _lookup(line)) for line in (" ".join(str(x).split()) for x in lines) if line]
    by_id = {kind_value[1] for _line, kind_value in wanted if kind_value[0] == "id"}
    by_arxiv = {kind_value[1] for _line, kind_value in wanted if kind_value[0] == "arxiv"}
    by_title = {kind_value[1].lower() for _line, kind_value in wanted if kind_value[0] == "title"}
    ids = set(Paper.objects.filter(id__in=by_id).values_list("id", flat=True)) if by_id else set()
    arxiv = {}
    if by_arxiv:
        for pid, arxiv_id in Paper.objects.filter(arxiv_id__in=by_arxiv).values_list("id", "arxiv_id"):
            arxiv[arxiv_id] = pid
        for pid, key in Paper.objects.filter(key__in=by_arxiv - set(arxiv)).values_list("id", "key"):
            arxiv[key] = pid
    titles = {}
    for title in by_title:
        found = Paper.objects.filter(title__iexact=title).order_by("-id").values_list("id", flat=True).first()
        if found:
            titles[title] = found
    resolved, unknown = [], []
    for line, (kind, value) in wanted:
        pid = {
            "id": value if value in ids else None,
            "arxiv": arxiv.get(value),
            "title": titles.get(str(value).lower()),
        }[kind]
        (resolved.append(pid) if pid else unknown.append(line))
    if unknown:
        names = "; ".join(f"“{line[:80]}”" for line in unknown)
        raise UnknownExamples(
            f"Not in our catalogue: {names}. Use an arXiv id, a link to the paper, or its exact title."
        )
    return list(dict.fromkeys(resolved))[:MAX_EXAMPLES]


def resolve_known(lines) -> list[int]:
    """The papers the lines name, leaving out those that name none (for the live preview:
    it shows what it can while the reader is still typing)."""
    known = []
    for line in lines:
        try:
            known.extend(resolve([line]))
        except UnknownExamples:
            continue
    return list(dict.fromkeys(known))[:MAX_EXAMPLES]


def _name(paper) -> str:
    return paper.arxiv_id or paper.title


def shown(paper_ids) -> str:
    """The stored examples as the form shows them back: one arXiv id or title per line."""
    papers = Paper.objects.in_bulk(list(paper_ids or []))
    return "\n".join(_name(papers[i]) for i in paper_ids or [] if i in papers)


def as_shown(lines) -> str:
    """Typed lines as the form shows them: those that name a paper of the catalogue as
    ``shown`` writes it (its arXiv id or title, not "/papers/12/"), the others as typed."""
    found = [resolve_known([line]) for line in lines]
    papers = Paper.objects.in_bulk([ids[0] for ids in found if ids])
    return "\n".join(
        _name(papers[ids[0]]) if ids and ids[0] in papers else line for line, ids in zip(lines, found, strict=True)
    )
