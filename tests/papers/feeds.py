"""Feeds the tests write themselves, in each format the importers read (a fresh clone
has no ../shared data)."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field


@dataclass
class Sample:
    arxiv_id: str
    title: str
    abstract: str
    authors: list[str] = field(default_factory=lambda: ["Ada Example", "Bo Sample"])
    upvotes: int = 10
    comments: int = 2
    categories: list[str] = field(default_factory=lambda: ["cs.CL"])
    published: str = "2026-11-20T10:00:00Z"


def samples(count: int = 3, *, upvotes: int = 10) -> list[Sample]:
    return [
        Sample(
            arxiv_id=f"2611.{10000 + n:05d}",
            title=f"Test paper number {n}: learning to import feeds",
            abstract=f"We study importer number {n}. It reads feeds and stores papers once. " * 3,
            upvotes=upvotes + n,
            comments=n,
        )
        for n in range(count)
    ]


def daily_json(papers: list[Sample], *, version: str = "") -> bytes:
    items = [
        {
            "paper": {
                "id": p.arxiv_id + version,
                "title": p.title,
                "summary": p.abstract,
                "authors": [{"name": a, "hidden": False} for a in p.authors],
                "publishedAt": p.published,
                "upvotes": p.upvotes,
            },
            "numComments": p.comments,
            "thumbnail": f"https://cdn.example.org/thumbs/{p.arxiv_id}.png",
            "submittedBy": {"name": "someone"},
            "title": p.title,
        }
        for p in papers
    ]
    return json.dumps(items, ensure_ascii=False).encode("utf-8")


def html_with_props(papers: list[Sample]) -> bytes:
    props = json.loads(daily_json(papers))
    attribute = html.escape(json.dumps({"dailyPapers": props, "date": "2026-11-20"}, ensure_ascii=False), quote=True)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Daily Papers</title></head><body>"
        f'<div class="SVELTE_HYDRATER contents" data-target="DailyPapers" data-props="{attribute}"></div>'
        "</body></html>"
    ).encode()


def html_with_cards(papers: list[Sample]) -> bytes:
    cards = "".join(
        f"""<article class="paper-card">
              <img src="/thumbs/{p.arxiv_id}.png" alt="">
              <div class="upvotes"><span>{p.upvotes}</span></div>
              <h3><a href="/papers/{p.arxiv_id}">{html.escape(p.title)}</a></h3>
              <ul class="authors">{"".join(f'<li class="author">{html.escape(a)}</li>' for a in p.authors)}</ul>
              <p class="abstract">{html.escape(p.abstract)}</p>
              <a class="comments" href="/papers/{p.arxiv_id}#community">{p.comments} comments</a>
            </article>"""
        for p in papers
    )
    return f"<!DOCTYPE html><html><head><title>Papers</title></head><body><main>{cards}</main></body></html>".encode()


def atom(papers: list[Sample], *, version: str = "v2") -> bytes:
    entries = "".join(
        f"""<entry>
    <id>http://arxiv.org/abs/{p.arxiv_id}{version}</id>
    <updated>2026-11-21T10:00:00Z</updated>
    <published>{p.published}</published>
    <title>{html.escape(p.title)}</title>
    <summary>  {html.escape(p.abstract)}
    </summary>
    {"".join(f"<author><name>{html.escape(a)}</name></author>" for a in p.authors)}
    <arxiv:comment>12 pages</arxiv:comment>
    <link href="http://arxiv.org/abs/{p.arxiv_id}{version}" rel="alternate" type="text/html"/>
    <link title="pdf" href="http://arxiv.org/pdf/{p.arxiv_id}{version}" rel="related" type="application/pdf"/>
    <arxiv:primary_category term="{p.categories[0]}" scheme="http://arxiv.org/schemas/atom"/>
    {"".join(f'<category term="{c}" scheme="http://arxiv.org/schemas/atom"/>' for c in p.categories)}
  </entry>"""
        for p in papers
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:arxiv="http://arxiv.org/schemas/atom"
      xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">
  <title>arXiv Query: search_query=cat:cs.CL</title>
  <id>http://arxiv.org/api/test</id>
  <opensearch:totalResults>{len(papers)}</opensearch:totalResults>
  {entries}
</feed>""".encode()


def rss(papers: list[Sample], *, encoding: str = "UTF-8") -> bytes:
    items = "".join(
        f"""<item>
      <title>{html.escape(p.title)}</title>
      <link>https://arxiv.org/abs/{p.arxiv_id}</link>
      <description>arXiv:{p.arxiv_id}v1 Announce Type: new
Abstract: {html.escape(p.abstract)}</description>
      <guid isPermaLink="false">oai:arXiv.org:{p.arxiv_id}v1</guid>
      {"".join(f"<category>{c}</category>" for c in p.categories)}
      <pubDate>Fri, 20 Nov 2026 00:00:00 -0500</pubDate>
      <arxiv:announce_type>new</arxiv:announce_type>
      <dc:rights>http://creativecommons.org/licenses/by/4.0/</dc:rights>
      <dc:creator>{html.escape(", ".join(p.authors))}</dc:creator>
    </item>"""
        for p in papers
    )
    return f"""<?xml version="1.0" encoding="{encoding}"?>
<rss xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns:dc="http://purl.org/dc/elements/1.1/"
     xmlns:atom="http://www.w3.org/2005/Atom" version="2.0">
  <channel>
    <title>cs.CL updates on arXiv.org</title>
    <link>http://rss.arxiv.org/rss/cs.CL</link>
    <description>cs.CL updates</description>
    {items}
  </channel>
</rss>""".encode(encoding)


def rss_rdf(papers: list[Sample]) -> bytes:
    items = "".join(
        f"""<item rdf:about="http://arxiv.org/abs/{p.arxiv_id}">
  <title>{html.escape(p.title)}. (arXiv:{p.arxiv_id}v1 [{p.categories[0]}])</title>
  <link>http://arxiv.org/abs/{p.arxiv_id}</link>
  <description rdf:parseType="Literal">{html.escape("<p>" + html.escape(p.abstract) + "</p>")}</description>
  <dc:creator>{
            html.escape(
                ", ".join(f'<a href="http://arxiv.org/find/cs/1/au:+x/0/1/0/all/0/1">{a}</a>' for a in p.authors)
            )
        }</dc:creator>
</item>"""
        for p in papers
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
         xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel rdf:about="http://arxiv.org/"><title>cs.CL updates on arXiv.org</title></channel>
{items}
</rdf:RDF>""".encode()


def text_page(papers: list[Sample], *, header: str | None = None) -> str:
    header = (
        header
        if header is not None
        else (
            "new\n\nGet trending papers in your email inbox!\n\nSubscribe\n\n"
            "byAK and the research community\n\nNov 20\n\n"
        )
    )
    return header + "\n\n".join(f"{p.title}\n\n{p.abstract.strip()}" for p in papers) + "\n"


def arxiv_rss(papers: list[Sample], *, announce: list[str] | None = None, day: str = "Mon, 16 Mar 2026") -> bytes:
    """arXiv's category RSS in its current shape (rss.arxiv.org/rss/cs.CL): one item per
    announcement, ``arxiv:announce_type`` new, cross, replace or replace-cross."""
    kinds = announce or ["new"] * len(papers)
    items = "".join(
        f"""<item>
      <title>{html.escape(p.title)}</title>
      <link>https://arxiv.org/abs/{p.arxiv_id}</link>
      <description>arXiv:{p.arxiv_id}v{2 if kind.startswith("replace") else 1} Announce Type: {kind}
Abstract: {html.escape(p.abstract)}</description>
      <guid isPermaLink="false">oai:arXiv.org:{p.arxiv_id}v{2 if kind.startswith("replace") else 1}</guid>
      {"".join(f"<category>{c}</category>" for c in p.categories)}
      <pubDate>{day} 00:00:00 -0400</pubDate>
      <arxiv:announce_type>{kind}</arxiv:announce_type>
      <dc:rights>http://creativecommons.org/licenses/by/4.0/</dc:rights>
      <dc:creator>{html.escape(", ".join(p.authors))}</dc:creator>
    </item>"""
        for p, kind in zip(papers, kinds, strict=True)
    )
    return f"""<?xml version='1.0' encoding='UTF-8'?>
<rss xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns:dc="http://purl.org/dc/elements/1.1/"
     xmlns:atom="http://www.w3.org/2005/Atom" xmlns:content="http://purl.org/rss/1.0/modules/content/" version="2.0">
  <channel>
    <title>cs.CL updates on arXiv.org</title>
    <link>http://rss.arxiv.org/rss/cs.CL</link>
    <description>cs.CL updates on the arXiv.org e-print archive.</description>
    <atom:link href="http://rss.arxiv.org/rss/cs.CL" rel="self" type="application/rss+xml"/>
    <docs>http://www.rssboard.org/rss-specification</docs>
    <language>en-us</language>
    <lastBuildDate>{day} 00:30:00 -0400</lastBuildDate>
    <managingEditor>rss-help@arxiv.org</managingEditor>
    <pubDate>{day} 00:00:00 -0400</pubDate>
    <skipDays><day>Saturday</day><day>Sunday</day></skipDays>
    {items}
  </channel>
</rss>""".encode()


def biorxiv_details(entries: list[dict], *, server: str = "biorxiv") -> bytes:
    """The details endpoint of the bioRxiv/medRxiv API
    (api.biorxiv.org/details/biorxiv/2026-03-01/2026-03-07/0): ``messages`` and
    ``collection``, one object per preprint version."""
    collection = [
        {
            "doi": entry["doi"],
            "title": entry["title"],
            "authors": entry.get("authors", "Okonkwo, M.; Lindqvist, T. A."),
            "author_corresponding": "Mira Okonkwo",
            "author_corresponding_institution": "Example University",
            "date": entry.get("date", "2026-03-02"),
            "version": str(entry.get("version", 1)),
            "type": "new results",
            "license": "cc_by",
            "category": entry.get("category", "neuroscience"),
            "jatsxml": f"https://www.{server}.org/content/early/2026/03/02/{entry['doi'][8:]}.source.xml",
            "abstract": entry.get("abstract", "We record from many neurons at once. " * 5),
            "published": "NA",
            "server": {"biorxiv": "bioRxiv", "medrxiv": "medRxiv"}[server],
        }
        for entry in entries
    ]
    return json.dumps(
        {
            "messages": [
                {
                    "status": "ok",
                    "interval": "2026-03-01:2026-03-07",
                    "cursor": 0,
                    "count": len(collection),
                    "count_new_papers": str(len(collection)),
                    "total": str(len(collection)),
                }
            ],
            "collection": collection,
        }
    ).encode()
