"""bioRxiv and medRxiv's details JSON: preprints known by their DOI."""

import pytest
from django.core.management import CommandError

from papers import importers
from papers.models import Paper
from tests.papers import feeds

pytestmark = pytest.mark.django_db

PREPRINT = {"doi": "10.1101/2026.03.01.123456", "title": "Many neurons at once"}


def test_details_json_is_detected_and_imported(import_file):
    data = feeds.biorxiv_details([PREPRINT, {"doi": "10.1101/2026.03.02.654321", "title": "Second preprint"}])
    assert importers.detect_format(data) == "biorxiv-json"
    assert import_file("details.json", data) == "created 2, updated 0, unchanged 0"
    paper = Paper.objects.get(doi="10.1101/2026.03.01.123456")
    assert paper.key == "doi:10.1101/2026.03.01.123456"
    assert paper.authors == ["M. Okonkwo", "T. A. Lindqvist"]
    assert paper.categories == ["neuroscience"]
    assert str(paper.announced_on) == "2026-03-02"
    assert paper.page_url == "https://www.biorxiv.org/content/10.1101/2026.03.01.123456"
    assert paper.pdf_url == "https://www.biorxiv.org/content/10.1101/2026.03.01.123456.full.pdf"
    assert paper.source == "biorxiv-json"


def test_versions_of_one_preprint_are_one_paper_dated_by_the_first(import_file):
    versions = [
        {**PREPRINT, "version": 2, "date": "2026-03-09", "title": "Many neurons at once, revised"},
        {**PREPRINT, "version": 1, "date": "2026-03-02"},
    ]
    assert import_file("details.json", feeds.biorxiv_details(versions, server="medrxiv")).startswith("created 1,")
    paper = Paper.objects.get()
    assert paper.title == "Many neurons at once, revised"
    assert str(paper.announced_on) == "2026-03-02"
    assert paper.page_url.startswith("https://www.medrxiv.org/content/")
    again = feeds.biorxiv_details(versions[:1], server="medrxiv")
    assert import_file("again.json", again) == "created 0, updated 0, unchanged 1"


def test_an_empty_interval_says_what_the_api_answered(import_file):
    empty = b'{"messages": [{"status": "no posts found"}], "collection": []}'
    with pytest.raises(CommandError, match="no papers found: the API answered 'no posts found'"):
        import_file("details.json", empty)
