"""bioRxiv and medRxiv's details JSON (``api.biorxiv.org/details/biorxiv/2024-01-01/
2024-01-07/0``, the same shape for ``medrxiv``): ``messages`` (one object with
``status``, ``cursor``, ``count``, ``total``) and ``collection``, one object per preprint
version with ``doi``, ``title``, ``authors`` ("Last, F.; Other, A. B."),
``author_corresponding``, ``date`` (posted, YYYY-MM-DD), ``version``, ``type``,
``license``, ``category``, ``abstract``, ``published`` (a journal DOI or "NA") and
``server``.

Each version of a preprint is its own object: they share the DOI, so they are one paper,
dated by the first version seen; its links lead to the latest version. Preprints have
no arXiv id: the DOI is their identity.
"""

from __future__ import annotations

from papers.importers.base import BadInput, PaperRecord, Records, load_json, usable
from papers.importers.normalise import clean_text

SERVERS = {"biorxiv": "https://www.biorxiv.org", "medrxiv": "https://www.medrxiv.org"}


def parse(data: bytes, *, url: str | None = None, charset: str | None = None) -> Records:
    document = load_json(data, charset)
    if not isinstance(document, dict) or not isinstance(document.get("collection"), list):
        raise BadInput("expected the bioRxiv/medRxiv details JSON: an object with a 'collection' list")
    collection = document["collection"]
    if not collection:
        raise BadInput(f"no papers found: the API answered {_status(document)!r}")
    records = usable((_record(item, number) for number, item in enumerate(collection, start=1)), "items")
    # The first version of each DOI dates the paper, whatever order the API lists them in.
    records.sort(key=lambda r: r.announced_on or "")
    return records


def _status(document: dict) -> str:
    messages = document.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[0], dict):
        return str(messages[0].get("status", "no status"))[:200]
    return "no status"


def _str(item: dict, name: str) -> str:
    value = item.get(name)
    return value.strip() if isinstance(value, str) else ""


def _author(name: str) -> str:
    """ "Last, Given" as "Given Last"."""
    last, _, given = name.partition(",")
    return f"{given.strip()} {last.strip()}".strip() if given.strip() else last.strip()


def _record(item, number: int) -> PaperRecord | None:
    if not isinstance(item, dict):
        raise BadInput(f"item {number} is a JSON {type(item).__name__}, not an object")
    title, doi = _str(item, "title"), _str(item, "doi")
    if not clean_text(title):
        return None
    site = SERVERS.get(_str(item, "server").lower(), SERVERS["biorxiv"])
    page = f"{site}/content/{doi}" if doi else ""  # without a version: the latest one
    return PaperRecord(
        title=title,
        abstract=_str(item, "abstract"),
        doi=doi,
        authors=[_author(name) for name in _str(item, "authors").split(";") if name.strip()],
        categories=[_str(item, "category")] if _str(item, "category") else [],
        published_at=_str(item, "date") or None,
        announced_on=_str(item, "date") or None,
        page_url=page,
        pdf_url=f"{page}.full.pdf" if page else "",
    )
