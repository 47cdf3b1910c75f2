"""Atom feeds imported right: core fields in their own namespace, text by its declared
type, base64 and xml:base of Atom 0.3, and the arXiv API's entries."""

import base64

import pytest

from papers.models import Paper
from tests.papers import feeds

pytestmark = pytest.mark.django_db

ABSTRACT = "We study how feeds describe papers, and we keep only what a reader should see. " * 2


def atom(entries: str, *, namespaces: str = "", base: str = "") -> str:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" {namespaces} {base}>'
        f"<title>A journal</title><id>urn:j</id>{entries}</feed>"
    )


def test_extension_elements_never_replace_core_fields(import_file):
    entry = f"""<entry>
      <x:title>Extension title</x:title><title>The real title</title><media:title>Media title</media:title>
      <x:summary>Extension summary</x:summary><summary>{ABSTRACT}</summary>
      <link rel="alternate" href="https://journal.example.org/real"/>
      <x:link href="https://elsewhere.example.org/fake"/>
    </entry>"""
    namespaces = 'xmlns:x="http://example.org/ext" xmlns:media="http://search.yahoo.com/mrss/"'
    import_file("feed.atom", atom(entry, namespaces=namespaces))
    paper = Paper.objects.get()
    assert paper.title == "The real title"
    assert paper.abstract == ABSTRACT.strip()
    assert paper.page_url == "https://journal.example.org/real"


def test_xhtml_content_never_leaks_script_or_style(import_file):
    entry = """<entry>
      <title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">Clean <b>bold</b> title<script>alert('t')</script>
        <style>.x{color:red}</style></div></title>
      <summary type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>First paragraph.</p><p>Second
        paragraph.</p><x:note xmlns:x="http://example.org/ext">Extension note</x:note>
        <script type="text/javascript">document.write('leak')</script><noscript>Enable JS</noscript>
        <style>p { margin: 0 }</style></div></summary>
    </entry>"""
    import_file("feed.atom", atom(entry))
    paper = Paper.objects.get()
    assert paper.title == "Clean bold title"
    assert paper.abstract == "First paragraph. Second paragraph."


def test_html_titles_keep_text_never_markup(import_file):
    entry = f"""<entry>
      <title type="html">&lt;blink&gt;Hot&lt;/blink&gt; results &lt;applet code="x"&gt;on
        &lt;object data="x"&gt;graphs</title>
      <summary type="html">&lt;p&gt;{ABSTRACT}&lt;/p&gt;&lt;marquee&gt;wow&lt;/marquee&gt;</summary>
    </entry>"""
    import_file("feed.atom", atom(entry))
    paper = Paper.objects.get()
    assert paper.title == "Hot results on graphs"
    assert "<" not in paper.abstract and paper.abstract.endswith("wow")


def test_atom_03_base64_and_escaped_fields(import_file):
    title = base64.b64encode("Entropy <em>revisited</em>: a base64 title — ünïcode".encode()).decode()
    entry = f"""<entry>
      <title type="text/html" mode="base64">{title}</title>
      <summary type="text/html" mode="escaped">&lt;p&gt;{ABSTRACT}&lt;/p&gt;</summary>
      <link rel="alternate" type="text/html" href="/posts/entropy"/>
      <issued>2026-03-10T09:00:00Z</issued>
    </entry>"""
    feed = f"""<?xml version="1.0" encoding="utf-8"?>
    <feed version="0.3" xmlns="http://purl.org/atom/ns#" xml:base="https://blog.example.org/">
      <title>An old blog</title>{entry}</feed>"""
    import_file("feed.xml", feed)
    paper = Paper.objects.get()
    assert paper.title == "Entropy revisited: a base64 title — ünïcode"
    assert paper.abstract == ABSTRACT.strip()
    assert paper.page_url == "https://blog.example.org/posts/entropy"
    assert str(paper.announced_on) == "2026-03-10"


def test_xhtml_content_that_forgot_its_namespace(import_file):
    entry = f"""<entry><title type="xhtml"><div>Title <i>in</i> Atom's namespace</div></title>
      <content type="xhtml"><div><p>{ABSTRACT}</p></div></content></entry>"""
    import_file("feed.atom", atom(entry))
    paper = Paper.objects.get()
    assert (paper.title, paper.abstract) == ("Title in Atom's namespace", ABSTRACT.strip())


def test_relative_links_resolve_against_xml_base(import_file):
    entries = f"""<entry xml:base="papers/"><title>One</title><summary>{ABSTRACT}</summary>
      <link href="one.html"/></entry>
      <entry><title>Two</title><summary>{ABSTRACT}</summary><link href="/two.html"/></entry>"""
    import_file("feed.atom", atom(entries, base='xml:base="https://journal.example.org/vol/1/"'))
    links = dict(Paper.objects.values_list("title", "page_url"))
    assert links == {
        "One": "https://journal.example.org/vol/1/papers/one.html",
        "Two": "https://journal.example.org/two.html",
    }


def test_the_arxiv_api_atom(import_file):
    papers = feeds.samples(2)
    data = feeds.atom(papers, version="v3").replace(
        b"<arxiv:comment>", b"<arxiv:doi>10.1000/Example.DOI</arxiv:doi><arxiv:comment>", 1
    )
    assert import_file("query.xml", data) == "created 2, updated 0, unchanged 0"
    paper = Paper.objects.get(key="2611.10000")
    assert (paper.arxiv_id, paper.doi) == ("2611.10000", "10.1000/example.doi")
    assert paper.authors == ["Ada Example", "Bo Sample"]
    assert paper.pdf_url == "https://arxiv.org/pdf/2611.10000"
    assert str(paper.announced_on) == "2026-11-20"  # the API gives no announcement: the first version's date
