"""Hostile input: every importer answers records or the one bad-input error, writes
nothing on failure, and one failing source never stops the others."""

import logging

import pytest
from django.core.management import CommandError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from papers import importers, services
from papers.importers.base import BadInput
from papers.importers.normalise import _has_markup as has_markup
from papers.importers.normalise import normalise_record
from papers.models import ImportRun, Paper
from tests.papers import feeds

DEEP = 1100


def deep_json(opening: str = "[", closing: str = "]") -> bytes:
    return (opening * DEEP + closing * DEEP).encode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name, data",
    [
        ("deep.json", deep_json()),
        ("deep-objects.json", ('{"a":' * DEEP + "1" + "}" * DEEP).encode()),
        ("deep-papers.json", b'{"papers": ' + deep_json() + b"}"),
        ("deep-biorxiv.json", b'{"collection": ' + deep_json() + b', "messages": []}'),
    ],
)
def test_json_nested_1100_deep_is_a_clear_error(import_file, name, data):
    assert len(data) <= 12 * 1024
    with pytest.raises(CommandError, match=r"import failed: malformed JSON: nested too deeply") as caught:
        import_file(name, data)
    assert "\n" not in str(caught.value)
    assert not Paper.objects.exists()
    assert ImportRun.objects.get().status == "failed"


@pytest.mark.django_db
def test_deep_markup_is_a_clear_error_too(import_file):
    props = '<div data-props="' + "[" * DEEP + "]" * DEEP + '"></div>'
    with pytest.raises(CommandError, match="no papers found"):
        import_file("deep.html", f"<html><body>{props}{'<div>' * 5000}</body></html>")
    with pytest.raises(CommandError, match="malformed XML"):
        import_file("deep.xml", '<rss version="2.0"><channel>' + "<x>" * 5000 + "</x>" * 5000 + "</channel></rss>")
    assert not Paper.objects.exists()


@pytest.mark.django_db
def test_an_atom_or_rss_feed_with_an_inline_doctype_imports(import_file):
    doctype = b'<?xml version="1.0"?>\n<!DOCTYPE feed [\n  <!ENTITY nbsp "&#160;">\n]>\n'
    atom = feeds.atom(feeds.samples(1)).split(b"\n", 1)[1]
    rss = feeds.rss(feeds.samples(2)[1:]).split(b"\n", 1)[1]
    assert importers.detect_format(doctype + atom) == "atom"
    assert import_file("feed.atom", doctype + atom) == "created 1, updated 0, unchanged 0"
    assert import_file("feed.rss", doctype.replace(b"feed", b"rss") + rss) == "created 1, updated 0, unchanged 0"


@pytest.mark.django_db
def test_fetch_sources_isolates_every_failure(feed_server, settings, monkeypatch, caplog):
    def crash(data, *, url=None, charset=None):
        raise RuntimeError("a bug in one parser")

    monkeypatch.setitem(importers.FORMATS, "atom", crash)
    settings.PAPER_SOURCES = [
        feed_server.add("/deep.json", deep_json()),
        "atom:" + feed_server.add("/query", feeds.atom(feeds.samples(1))),
        feed_server.add("/good.json", feeds.daily_json(feeds.samples(2))),
        feed_server.add("/down", b"", status=503),
        "rss:" + feed_server.add("/cs.CL", feeds.arxiv_rss(feeds.samples(3)[2:])),
    ]
    with caplog.at_level(logging.ERROR, logger="papers.services"):
        report = services.fetch_sources()
    assert list(report.results) == [settings.PAPER_SOURCES[2], settings.PAPER_SOURCES[4]]
    assert Paper.objects.count() == 3
    runs = {run.source: run for run in ImportRun.objects.all()}
    deep, crashed = runs[settings.PAPER_SOURCES[0]], runs[settings.PAPER_SOURCES[1][len("atom:") :]]
    assert (deep.status, crashed.status) == ("failed", "failed")
    assert "nested too deeply" in deep.error
    assert "a bug in one parser" in crashed.error and "a bug in one parser" in report.failed[settings.PAPER_SOURCES[1]]
    assert report.unreachable == [settings.PAPER_SOURCES[3]]
    assert any(record.exc_info for record in caplog.records)  # the unexpected one is logged with its traceback


# --- property: records or BadInput, whatever the bytes ----------------------------------

VALID = [
    feeds.daily_json(feeds.samples(2)),
    feeds.html_with_props(feeds.samples(2)),
    feeds.html_with_cards(feeds.samples(2)),
    feeds.atom(feeds.samples(2)),
    feeds.rss(feeds.samples(2)),
    feeds.rss_rdf(feeds.samples(2)),
    feeds.arxiv_rss(feeds.samples(2), announce=["new", "replace"]),
    feeds.biorxiv_details([{"doi": "10.1101/1", "title": "T"}, {"doi": "10.1101/2", "title": "U", "version": 2}]),
    feeds.text_page(feeds.samples(2)).encode(),
]
NASTY = [
    b"<!DOCTYPE x [<!ENTITY a '&a;'>]>",
    b"<!DOCTYPE rss [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>",
    b"&e;",
    b"&eacute;",
    b"&#0;",
    b"&#xD800;",
    b"&",
    b"<![CDATA[",
    b"]]>",
    b"<!--",
    b"\x00",
    b"\xff\xfe",
    b"\xef\xbb\xbf",
    b"<\x00?\x00",
    b'<title type="html" mode="base64">@@@</title>',
    b'<link href="javascript:alert(1)"/>',
    b'xml:base="::::"',
    b"[" * 40,
    b'{"collection": [1]}',
    b'"upvotes": 1e400, "publishedAt": "9999-12-31T23:59:59-12:00"',
    b"<script>",
    b"</item>",
    b"<entry>",
    b"\r\n\r\n",
    b"Mar 13\n\n",
    "\x85\u2028\U0001f600".encode(),
]

mutation = st.one_of(
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.sampled_from(NASTY)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.binary(max_size=16)),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 64)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6), st.just(0)),
    st.tuples(st.just("repeat"), st.integers(0, 10**6), st.integers(1, 200)),
)


def mutate(data: bytes, steps) -> bytes:
    for kind, position, value in steps:
        at = position % (len(data) + 1)
        if kind == "insert":
            data = data[:at] + value + data[at:]
        elif kind == "delete":
            data = data[:at] + data[at + value :]
        elif kind == "truncate":
            data = data[:at]
        else:
            data = data[:at] + data[at : at + value] * 3 + data[at + value :]
    return data


def records_or_bad_input(data: bytes, fmt: str) -> None:
    """The property: detection and parsing give records that can be stored, or BadInput."""
    try:
        chosen = importers.detect_format(data) if fmt == "auto" else fmt
        records = importers.parse(data, chosen, url="https://feeds.example.org/x")
    except BadInput as exc:
        assert str(exc) and "\n" not in str(exc).strip()
        return
    assert records, "a parser returned no records instead of raising BadInput"
    for record in records:
        clean = normalise_record(record, base_url="https://feeds.example.org/x")
        assert clean.title
        for text in (clean.title, clean.abstract):
            assert not has_markup(text), text


FORMATS = ["auto", *importers.FORMATS]
PROPERTY = settings(max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(data=st.binary(max_size=2048), fmt=st.sampled_from(FORMATS))
def test_arbitrary_bytes(data, fmt):
    records_or_bad_input(data, fmt)


@PROPERTY
@given(
    valid=st.sampled_from(VALID),
    steps=st.lists(mutation, min_size=1, max_size=4),
    fmt=st.sampled_from(FORMATS),
)
def test_mutated_valid_feeds(valid, steps, fmt):
    records_or_bad_input(mutate(valid, steps), fmt)


@pytest.mark.django_db
@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid=st.sampled_from(VALID), steps=st.lists(mutation, min_size=1, max_size=3))
def test_mutated_feeds_import_whole_or_not_at_all(valid, steps):
    """Through the service: a result, or ImportFailed with nothing written."""
    Paper.objects.all().delete()
    try:
        services.import_bytes(mutate(valid, steps), source_name="upload")
    except services.ImportFailed as exc:
        assert str(exc).startswith("upload: ")
        assert not Paper.objects.exists()
