"""RSS imported right: core fields in RSS's own namespace, and arXiv's current category
feeds, whose replacements update a paper and never create one."""

import pytest

from papers.models import Paper
from tests.papers import feeds

pytestmark = pytest.mark.django_db

ABSTRACT = "We study how feeds describe papers, and we keep only what a reader should see. " * 2


def test_foreign_namespaces_never_replace_core_fields(import_file):
    feed = f"""<?xml version="1.0"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:media="http://search.yahoo.com/mrss/"
     xmlns:atom="http://www.w3.org/2005/Atom" xmlns:x="http://example.org/ext"><channel><title>J</title>
  <item>
    <dc:title>Dublin Core title</dc:title><title>The real title</title><media:title>Media title</media:title>
    <x:description>Extension text</x:description><description>{ABSTRACT}</description>
    <link>https://journal.example.org/real</link><atom:link href="https://journal.example.org/feed" rel="self"/>
    <author>editor@example.org (Mira Okonkwo)</author>
  </item>
  <item><dc:title>Only a Dublin Core title</dc:title><description>{ABSTRACT}</description>
    <link>https://journal.example.org/dc</link></item>
</channel></rss>"""
    assert import_file("feed.rss", feed) == "created 2, updated 0, unchanged 0"
    paper = Paper.objects.get(title="The real title")
    assert paper.abstract == ABSTRACT.strip()
    assert paper.page_url == "https://journal.example.org/real"
    assert paper.authors == ["Mira Okonkwo"]
    assert Paper.objects.filter(title="Only a Dublin Core title").exists()


def test_content_encoded_when_there_is_no_description(import_file):
    feed = f"""<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>
      <item><title>Encoded</title><content:encoded><![CDATA[<p>{ABSTRACT}</p><script>x()</script>]]></content:encoded>
      </item></channel></rss>"""
    import_file("feed.rss", feed)
    assert Paper.objects.get().abstract == ABSTRACT.strip()


def test_arxiv_new_and_cross_listed_papers_are_dated_by_their_announcement(import_file):
    papers = feeds.samples(2)
    data = feeds.arxiv_rss(papers, announce=["new", "cross"], day="Mon, 16 Mar 2026")
    assert import_file("cs.CL.xml", data) == "created 2, updated 0, unchanged 0"
    paper = Paper.objects.get(key="2611.10000")
    assert str(paper.announced_on) == "2026-03-16"
    assert paper.abstract == " ".join(papers[0].abstract.split())  # no "arXiv:... Announce Type:" prefix
    assert paper.authors == ["Ada Example", "Bo Sample"]
    assert paper.source == "rss"


def test_arxiv_replacements_update_and_never_create(import_file):
    papers = feeds.samples(3)
    import_file("monday.xml", feeds.arxiv_rss(papers[:1], day="Mon, 16 Mar 2026"))
    papers[0].title = "Test paper number 0: learning to import feeds (revised)"
    papers[0].authors = ["Ada Example", "Bo Sample", "Cy Third"]
    data = feeds.arxiv_rss(papers, announce=["replace", "replace-cross", "new"], day="Thu, 19 Mar 2026")
    assert import_file("thursday.xml", data) == "created 1, updated 1, unchanged 0, skipped 1"
    assert Paper.objects.count() == 2
    replaced = Paper.objects.get(key="2611.10000")
    assert replaced.title.endswith("(revised)")
    assert replaced.authors == ["Ada Example", "Bo Sample", "Cy Third"]
    assert str(replaced.announced_on) == "2026-03-16"  # a replacement never moves its paper
    assert not Paper.objects.filter(key="2611.10001").exists()  # replaced, but never announced to us
    assert str(Paper.objects.get(key="2611.10002").announced_on) == "2026-03-19"


def test_arxiv_dois_are_kept(import_file):
    data = feeds.arxiv_rss(feeds.samples(1)).replace(
        b"<dc:rights>", b"<arxiv:DOI>10.1103/PhysRevLett.1.1</arxiv:DOI><dc:rights>"
    )
    import_file("cs.CL.xml", data)
    assert Paper.objects.get().doi == "10.1103/physrevlett.1.1"
