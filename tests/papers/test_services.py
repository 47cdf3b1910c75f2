"""Upserting and importing: idempotence, one transaction, and every kind of bad input."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from papers import services
from papers.importers.base import PaperRecord
from papers.models import ImportRun, Paper
from papers.services import ImportFailed, ImportResult
from papers.signals import papers_stored
from tests.papers import feeds

pytestmark = pytest.mark.django_db

PAPERS = feeds.samples(3)


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return str(path)


def test_reimport_creates_nothing_and_follows_upvotes(tmp_path):
    first = services.import_source(write(tmp_path, "day.json", feeds.daily_json(PAPERS)))
    assert first == ImportResult(created=3, updated=0, unchanged=0)
    seen = dict(Paper.objects.values_list("key", "first_seen_at"))

    assert services.import_source(write(tmp_path, "day.json", feeds.daily_json(PAPERS))) == ImportResult(0, 0, 3)

    more = feeds.samples(3, upvotes=50)
    assert services.import_source(write(tmp_path, "later.json", feeds.daily_json(more))) == ImportResult(0, 3, 0)
    assert dict(Paper.objects.values_list("key", "upvotes")) == {p.arxiv_id: p.upvotes for p in more}
    assert dict(Paper.objects.values_list("key", "first_seen_at")) == seen
    assert Paper.objects.count() == 3


def test_one_paper_across_formats_and_versions(tmp_path):
    services.import_source(write(tmp_path, "day.json", feeds.daily_json(PAPERS, version="v3")))
    result = services.import_source(write(tmp_path, "query.atom", feeds.atom(PAPERS, version="v1")))
    assert result.created == 0
    assert Paper.objects.count() == 3
    paper = Paper.objects.get(key="2611.10000")
    assert paper.arxiv_id == "2611.10000"
    assert paper.upvotes == 10  # the Atom feed has no upvotes and did not reset them
    assert paper.source == "daily-json"  # the source that brought it first
    assert paper.categories == ["cs.CL"]  # what the Atom feed added
    assert paper.authors == ["Ada Example", "Bo Sample"]
    assert paper.page_url == "https://huggingface.co/papers/2611.10000v3"


def test_text_page_papers_are_keyed_by_title(tmp_path):
    services.import_source(write(tmp_path, "page.txt", feeds.text_page(PAPERS)))
    keys = list(Paper.objects.values_list("key", flat=True))
    assert len(keys) == 3 and all(key.startswith("title:") for key in keys)
    assert Paper.objects.filter(source="text").exclude(abstract="").count() == 3


def test_duplicates_in_one_batch_are_one_paper():
    records = [
        PaperRecord(title="Same Paper", arxiv_id="2611.00001v1", upvotes=3),
        PaperRecord(title="Same paper", arxiv_id="2611.00001v2", abstract="Now with an abstract.", upvotes=7),
    ]
    assert services.upsert_papers(records, source="test") == ImportResult(1, 0, 0)
    paper = Paper.objects.get()
    assert (paper.title, paper.abstract, paper.upvotes) == ("Same paper", "Now with an abstract.", 7)


@pytest.fixture
def on_papers_stored():
    """Connect a receiver to ``papers_stored`` for one test, in place of the ranking's
    (papers are what is tested here, not their embeddings)."""
    from ranking.receivers import embed_stored_papers

    papers_stored.disconnect(dispatch_uid="ranking.embed_stored_papers")
    connected = []

    def connect(receiver):
        connected.append(f"test-{len(connected)}")
        papers_stored.connect(receiver, dispatch_uid=connected[-1])

    yield connect
    for uid in connected:
        papers_stored.disconnect(dispatch_uid=uid)
    papers_stored.connect(embed_stored_papers, dispatch_uid="ranking.embed_stored_papers")


def test_new_and_changed_papers_are_announced_inside_the_transaction(on_papers_stored):
    calls = []

    def embed(sender, papers, **kwargs):
        calls.append((sorted(p.key for p in papers), connection.in_atomic_block, all(p.pk for p in papers)))

    on_papers_stored(embed)
    services.upsert_papers([PaperRecord(title="A", arxiv_id="2611.00001"), PaperRecord(title="B")], source="t")
    services.upsert_papers(
        [PaperRecord(title="A", arxiv_id="2611.00001", upvotes=4), PaperRecord(title="B")], source="t"
    )
    services.upsert_papers([PaperRecord(title="B")], source="t")
    assert calls == [
        (sorted(["2611.00001", services.normalise_record(PaperRecord(title="B")).key]), True, True),
        (["2611.00001"], True, True),
    ]


def test_a_failure_while_writing_leaves_nothing_behind(on_papers_stored, tmp_path):
    def broken(sender, papers, **kwargs):
        raise RuntimeError("embedding store is down")

    on_papers_stored(broken)
    with pytest.raises(RuntimeError):
        services.import_source(write(tmp_path, "day.json", feeds.daily_json(feeds.samples(1200))))
    assert Paper.objects.count() == 0
    run = ImportRun.objects.get()
    assert run.status == ImportRun.Status.FAILED and "embedding store is down" in run.error


def test_upsert_query_count_does_not_grow_with_the_batch():
    def queries(count, upvotes):
        records = [PaperRecord(title=f"Paper {n}", arxiv_id=f"2611.{n:05d}", upvotes=upvotes) for n in range(count)]
        with CaptureQueriesContext(connection) as captured:
            services.upsert_papers(records, source="t")
        return len(captured)

    # A few queries per chunk of 500 papers, never one per paper (SQLite splits bulk
    # statements into more batches than PostgreSQL does).
    new_small, new_large = queries(3, 1), queries(300, 1)
    changed_small, changed_large = queries(3, 2), queries(300, 2)
    # New papers: their embeddings are stored too (the ranking's receiver of
    # papers_stored: a look at what is stored, one INSERT); changed papers whose text is
    # unchanged are not embedded again (the look only).
    assert new_small <= 6 and changed_small <= 5
    assert new_large <= 12 and changed_large <= 12


def test_import_runs_record_results_and_errors(tmp_path):
    good = write(tmp_path, "day.json", feeds.daily_json(PAPERS))
    services.import_source(good)
    with pytest.raises(ImportFailed):
        services.import_source(write(tmp_path, "bad.json", b"[{"))
    ok, failed = ImportRun.objects.order_by("started_at", "id")
    assert (ok.source, ok.format, ok.status, ok.created, ok.finished_at is not None) == (
        good,
        "daily-json",
        "ok",
        3,
        True,
    )
    assert failed.status == "failed" and "JSON ends early" in failed.error


def test_import_bytes_for_uploads():
    result = services.import_bytes(feeds.rss(PAPERS), fmt="auto", source_name="upload: cs.CL.xml")
    assert result.created == 3
    assert ImportRun.objects.get().source == "upload: cs.CL.xml"
    assert Paper.objects.filter(source="rss").count() == 3


def test_markup_and_script_in_titles_and_abstracts_are_stored_as_text(tmp_path):
    papers = feeds.samples(1)
    papers[0].title = "<b>Bold</b> results <script>alert('title')</script>for x &lt; y"
    papers[0].abstract = "<p>We show <i>things</i>.</p><script>document.cookie</script><img src=x onerror=alert(1)>"
    services.import_source(write(tmp_path, "day.json", feeds.daily_json(papers)))
    paper = Paper.objects.get()
    assert paper.title == "Bold results for x < y"
    assert paper.abstract == "We show things."


def bad(tmp_path, name, data, fmt="auto"):
    source = write(tmp_path, name, data)
    with pytest.raises(ImportFailed) as caught:
        services.import_source(source, fmt=fmt)
    message = str(caught.value)
    assert message.startswith(f"{source}: ") and "\n" not in message
    assert Paper.objects.count() == 0
    assert ImportRun.objects.filter(source=source, status="failed").count() == 1
    return message


def test_malformed_json(tmp_path):
    assert "malformed JSON: Expecting ',' delimiter (line 1, column 22)" in bad(
        tmp_path, "x.json", b'[{"paper": {"id": 1} "x"}]'
    )


def test_json_that_is_not_a_list_of_papers(tmp_path):
    assert "item 2 is a JSON str, not an object" in bad(tmp_path, "x.json", b'[{"paper": {"title": "T"}}, "oops"]')
    assert "no papers found: none of the items has a title (1 skipped)" in bad(
        tmp_path, "y.json", b'[{"paper": {"id": "2611.00001"}}]'
    )


def test_one_bad_item_writes_none_of_the_good_ones(tmp_path):
    items = feeds.daily_json(PAPERS)[:-1] + b', ["2611.09999", "not an object"]]'
    assert "item 4 is a JSON list, not an object" in bad(tmp_path, "x.json", items)


def test_an_item_without_a_title_is_skipped_and_counted(tmp_path):
    items = feeds.daily_json(PAPERS)[:-1] + b', {"paper": {"id": "2611.09999", "summary": "only a summary"}}]'
    result = services.import_source(write(tmp_path, "x.json", items))
    assert result == ImportResult(created=3, skipped=1)
    assert str(result) == "created 3, updated 0, unchanged 0, skipped 1"
    assert ImportRun.objects.get().skipped == 1


def test_malformed_xml(tmp_path):
    assert "malformed XML" in bad(tmp_path, "x.atom", feeds.atom(PAPERS).replace(b"</title>", b"</titl>", 1))


def test_truncated_files(tmp_path):
    json_data, xml_data = feeds.daily_json(PAPERS), feeds.atom(PAPERS)
    assert "JSON ends early (truncated?)" in bad(tmp_path, "t.json", json_data[: len(json_data) // 2])
    assert "XML ends early (truncated?)" in bad(tmp_path, "t.atom", xml_data[: len(xml_data) // 2])


@pytest.mark.parametrize(
    "name, data, fmt, expected",
    [
        ("empty.txt", b"  \n", "auto", "the body is empty: no papers found"),
        ("page.html", b"<html><body><p>Nothing today</p></body></html>", "auto", "no papers found"),
        ("none.json", b"[]", "auto", "no papers found"),
        ("feed.atom", feeds.atom([]), "auto", "no papers found: the feed has no entries"),
        ("feed.rss", feeds.rss([]), "auto", "no papers found: the feed has no items"),
        ("page.txt", b"new\n\nSubscribe\n\nNov 20\n", "text", "no papers found"),
        ("wrong.xml", feeds.rss(PAPERS), "atom", "not an Atom feed"),
    ],
)
def test_pages_with_no_papers(tmp_path, name, data, fmt, expected):
    assert expected in bad(tmp_path, name, data, fmt)


def test_latin1_bytes_without_a_declaration(tmp_path):
    page = feeds.text_page(PAPERS).replace("Test paper number 1", "Tést paper number 1").encode("latin-1")
    offset = page.index(b"\xe9")
    message = bad(tmp_path, "page.txt", page)
    assert f"is not valid utf-8 (no charset declared, so): byte 0xe9 at offset {offset}" in message


def test_xml_declaring_utf8_over_latin1_bytes(tmp_path):
    papers = feeds.samples(1)
    papers[0].title = "Café paper"
    data = feeds.rss(papers, encoding="ISO-8859-1").replace(b'encoding="ISO-8859-1"', b'encoding="UTF-8"')
    message = bad(tmp_path, "feed.rss", data)
    assert "is not valid utf-8" in message and "byte 0xe9" in message


def test_byte_order_marks_are_honoured(tmp_path):
    services.import_source(write(tmp_path, "a.json", b"\xef\xbb\xbf" + feeds.daily_json(PAPERS[:1])))
    papers = feeds.samples(2)
    papers[1].title = "Über-Paper: naïve café"
    services.import_source(write(tmp_path, "b.txt", feeds.text_page(papers[1:]).encode("utf-16")))
    assert set(Paper.objects.values_list("title", flat=True)) == {PAPERS[0].title, "Über-Paper: naïve café"}


def test_declared_charsets_are_used_and_wrong_declarations_survived(tmp_path):
    papers = feeds.samples(2)
    papers[0].title = "Résumé of latin-1 feeds"
    papers[1].title = "Naïve UTF-8 under a latin-1 label"
    latin1 = feeds.rss(papers[:1], encoding="ISO-8859-1")
    assert b"R\xe9sum\xe9" in latin1
    mislabelled = feeds.rss(papers[1:]).replace(b'encoding="UTF-8"', b'encoding="ISO-8859-1"')
    html_page = feeds.html_with_cards(papers[1:]).replace(b"<head>", b'<head><meta charset="iso-8859-1">')
    services.import_source(write(tmp_path, "latin1.rss", latin1))
    services.import_source(write(tmp_path, "mislabelled.rss", mislabelled))
    Paper.objects.filter(title=papers[1].title).delete()
    services.import_source(write(tmp_path, "mislabelled.html", html_page))
    assert set(Paper.objects.values_list("title", flat=True)) == {papers[0].title, papers[1].title}


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path, settings):
    path = tmp_path / "huge.json"
    with path.open("wb") as handle:
        handle.truncate(settings.PAPER_MAX_BYTES + 1)
    with pytest.raises(ImportFailed, match=r"is larger than the 20971520-byte limit \(PAPER_MAX_BYTES\): 20971521"):
        services.import_source(str(path))
    assert Paper.objects.count() == 0


def test_uploaded_bytes_over_the_size_limit_are_refused(settings):
    settings.PAPER_MAX_BYTES = 2048
    with pytest.raises(ImportFailed, match="upload.json: is larger than the 2048-byte limit"):
        services.import_bytes(b"[" + b" " * 3000 + b"]", fmt="daily-json", source_name="upload.json")


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(ImportFailed, match="nope.json: no such file"):
        services.import_source(str(tmp_path / "nope.json"))
    with pytest.raises(ImportFailed, match="unknown format 'csv'"):
        services.import_source(str(tmp_path / "nope.json"), fmt="csv")


def test_import_inside_an_outer_transaction_rolls_back_with_it(tmp_path):
    with pytest.raises(RuntimeError), transaction.atomic():
        services.import_source(write(tmp_path, "day.json", feeds.daily_json(PAPERS)))
        raise RuntimeError("caller failed")
    assert Paper.objects.count() == 0
