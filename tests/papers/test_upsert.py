"""One row per paper, whatever the sources: arXiv id, else DOI, else normalised title."""

import pytest

from papers import services
from papers.importers.base import PaperRecord
from papers.models import Paper
from papers.upsert import ImportResult
from tests.papers import feeds

pytestmark = pytest.mark.django_db

PAPERS = feeds.samples(3)


def test_a_page_without_ids_after_the_daily_json_adds_no_paper(import_file):
    import_file("day.json", feeds.daily_json(PAPERS))
    announced = dict(Paper.objects.values_list("key", "announced_on"))
    page = feeds.text_page(PAPERS, header="Mar 13\n\n").replace(PAPERS[1].title, PAPERS[1].title.upper())
    assert import_file("page.txt", page) == "created 0, updated 1, unchanged 2"  # one title now in capitals
    assert Paper.objects.count() == 3
    assert dict(Paper.objects.values_list("key", "upvotes")) == {p.arxiv_id: p.upvotes for p in PAPERS}
    assert dict(Paper.objects.values_list("key", "announced_on")) == announced  # the first date stays


def test_the_daily_json_after_a_page_without_ids_takes_over_its_rows(import_file):
    import_file("page.txt", feeds.text_page(PAPERS))
    pks = set(Paper.objects.values_list("pk", flat=True))
    assert import_file("day.json", feeds.daily_json(PAPERS)) == "created 0, updated 3, unchanged 0"
    assert set(Paper.objects.values_list("pk", flat=True)) == pks
    paper = Paper.objects.get(key="2611.10001")  # the stronger key replaced the title key
    assert (paper.arxiv_id, paper.upvotes, paper.authors) == ("2611.10001", 11, ["Ada Example", "Bo Sample"])
    assert paper.page_url == "https://huggingface.co/papers/2611.10001"
    assert paper.source == "text"  # where it was first seen


def test_a_doi_joins_a_preprint_and_its_arxiv_entry(import_file):
    import_file("details.json", feeds.biorxiv_details([{"doi": "10.1101/2026.03.01.1", "title": "Shared preprint"}]))
    sample = feeds.Sample("2603.00001", "Shared preprint", "We post everywhere at once. " * 8)
    atom = feeds.atom([sample]).replace(
        b"<arxiv:comment>", b"<arxiv:doi>10.1101/2026.03.01.1</arxiv:doi><arxiv:comment>"
    )
    assert import_file("query.xml", atom) == "created 0, updated 1, unchanged 0"
    paper = Paper.objects.get()
    assert (paper.key, paper.doi, paper.arxiv_id) == ("2603.00001", "10.1101/2026.03.01.1", "2603.00001")


def test_an_arxiv_doi_is_the_arxiv_id():
    services.upsert_papers(
        [PaperRecord(title="Via DataCite", doi="https://doi.org/10.48550/arXiv.2401.12345")], source="t"
    )
    services.upsert_papers([PaperRecord(title="Via DataCite", arxiv_id="2401.12345v3", upvotes=5)], source="t")
    paper = Paper.objects.get()
    assert (paper.key, paper.upvotes) == ("2401.12345", 5)


def test_same_title_different_ids_are_different_papers():
    records = [
        PaperRecord(title="Attention Is All You Need", arxiv_id="1706.03762"),
        PaperRecord(title="Attention is all you need!", arxiv_id="2501.00001"),
        PaperRecord(title="A survey", doi="10.1000/a"),
        PaperRecord(title="A Survey", doi="10.1000/b"),
    ]
    assert services.upsert_papers(records, source="t") == ImportResult(created=4)
    # Without an id, the title alone matches the first of them, never a third row.
    assert services.upsert_papers([PaperRecord(title="attention is all you need", upvotes=9)], source="t").updated == 1
    assert Paper.objects.count() == 4


def test_one_batch_with_the_paper_with_and_without_its_id():
    records = [
        PaperRecord(title="Merged in one batch", upvotes=3, announced_on="2026-03-13"),
        PaperRecord(title="Merged in One Batch.", arxiv_id="2603.00002v2", abstract="Now with an abstract."),
    ]
    assert services.upsert_papers(records, source="t") == ImportResult(created=1)
    paper = Paper.objects.get()
    assert (paper.key, paper.upvotes, paper.abstract) == ("2603.00002", 3, "Now with an abstract.")
    assert str(paper.announced_on) == "2026-03-13"


def test_replacements_of_unknown_papers_are_skipped_not_created():
    result = services.upsert_papers(
        [PaperRecord(title="Replaced", arxiv_id="2603.00003", update_only=True)], source="t"
    )
    assert result == ImportResult(skipped=1)
    assert not Paper.objects.exists()


def test_papers_made_outside_the_importers_are_found_by_title():
    Paper.objects.create(key="2603.00004", arxiv_id="2603.00004", title="Made in the admin")
    assert services.upsert_papers([PaperRecord(title="made in the ADMIN", upvotes=2)], source="t").updated == 1
    assert Paper.objects.get().upvotes == 2
