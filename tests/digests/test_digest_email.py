"""The digest email itself: templates, headers, size, text part, escaping, DKIM."""

import email
import email.header
import re
import subprocess
from email import policy

import dkim
import pytest
from bs4 import BeautifulSoup
from django.core import mail

import emails
from digests import content, delivery
from digests.content import DigestItem
from emails import messages, rendering
from papers.models import Paper
from tests.digests.helpers import make_subscriber

pytestmark = pytest.mark.django_db

HOSTILE = '<script>alert("x")</script> & <img src=x onerror=alert(1)> "quoted"'


def paper(n: int, **fields):
    values = {
        "id": n,
        "title": f"A careful study of sparse attention number {n} for long-context language understanding",
        "page_url": f"https://papers.example.org/papers/2611.{n:05d}",
        "authors": [f"Author Number{k} Longname" for k in range(12)],
        "upvotes": 100 + n,
        "abstract": "We study attention. " * 80,
    }
    values.update(fields)
    return Paper(**values)


def context(subscriber, papers, *, topics=("sparse attention", "speech recognition"), web="https://x.test/d/t/"):
    items = []
    for i, p in enumerate(papers):
        topic = topics[i % len(topics)]
        items.append(DigestItem(p, topic, f"{topic}: attention, sparse"))
    return content.digest_context(subscriber=subscriber, frequency="weekly", period="2026-W48", items=items, web=web)


@pytest.fixture
def subscriber():
    return make_subscriber("reader@example.org", topics=["sparse attention", "speech recognition"])


def test_every_part_shows_the_trending_papers_flow(subscriber):
    rendered = emails.render("digest", context(subscriber, [paper(1), paper(2), paper(3, upvotes=0)]))
    soup = BeautifulSoup(rendered.html, "html.parser")
    text = soup.get_text(" ", strip=True)
    assert "Trending papers in your inbox" in text and "3 strong matches this week · week of 23 November 2026" in text
    assert rendered.subject == "3 papers on sparse attention, +1 topic"
    assert [h.get_text() for h in soup.find_all("h2")] == ["sparse attention", "speech recognition"]
    title = soup.find("a", string=re.compile("number 1 for"))
    assert title["href"] == "https://papers.example.org/papers/2611.00001"
    authors = ", ".join(f"Author Number{k} Longname" for k in range(4)) + " et al."
    assert authors in text
    assert "▲ 101 upvotes" in text and "▲ 0" not in text
    assert "Why you see this: sparse attention: attention, sparse" in text
    votes = [a["href"] for a in soup.find_all("a") if "like this" in a.get_text()]
    assert len(votes) == 6 and all("/f/" in v for v in votes)
    links = {a.get_text(strip=True): a["href"] for a in soup.find_all("a")}
    assert links["Manage preferences"].startswith("http://testserver/manage/")
    assert links["Unsubscribe"].startswith("http://testserver/unsubscribe/")
    assert links["View in browser"] == "https://x.test/d/t/"
    assert "because reader@example.org subscribed to papers on sparse attention and speech recognition" in text
    assert "Paper Digest, 1 Example Street, 00000 Example City" in text
    preheader = soup.find("div", style=re.compile("display:none"))
    assert "and 2 more picked for you" in preheader.get_text()
    assert "color" not in preheader["style"]  # hidden, not white on white
    # No open or click tracking: no images at all, and every link goes straight to its target.
    assert soup.find_all("img") == []
    paper_urls = {f"https://papers.example.org/papers/2611.{n:05d}" for n in (1, 2, 3)}
    for a in soup.find_all("a"):
        assert a["href"] in paper_urls or a["href"].startswith(("http://testserver/", "https://x.test/d/")), a["href"]


def test_excerpt_is_two_or_three_lines_cut_at_a_word(subscriber):
    ctx = context(subscriber, [paper(1)])
    excerpt = ctx["topics"][0]["papers"][0].excerpt
    assert 150 < len(excerpt) <= content.EXCERPT_CHARS and excerpt.endswith("attention.")


def test_text_part_is_built_from_the_context_and_reads_in_a_terminal(subscriber):
    topics = ("sparse attention", "speech recognition", "long context language modelling")
    rendered = emails.render("digest", context(subscriber, [paper(n) for n in range(1, 6)], topics=topics))
    assert "<" not in rendered.text and "&amp;" not in rendered.text
    for line in rendered.text.splitlines():
        assert len(line) <= 78 or "http" in line, line
    assert "== sparse attention ==" in rendered.text
    assert "Read: https://papers.example.org/papers/2611.00001" in rendered.text
    assert "More like this: http://testserver/f/" in rendered.text
    assert "Unsubscribe: http://testserver/unsubscribe/" in rendered.text
    assert "View in browser: https://x.test/d/t/" in rendered.text


def test_twenty_paper_digest_stays_under_gmail_clipping(subscriber):
    rendered = emails.render("digest", context(subscriber, [paper(n) for n in range(1, 21)]))
    size = len(rendered.html.encode("utf-8"))
    print(f"20-paper digest HTML: {size / 1024:.1f} KB")
    assert size < 100 * 1024


def test_hostile_titles_are_escaped_in_html_and_harmless_elsewhere(subscriber):
    evil = paper(
        1, title=HOSTILE + "\nBcc: victim@example.org", page_url="javascript:alert(1)", authors=["<b>Mallory</b>"]
    )
    ctx = context(subscriber, [evil], topics=("<i>topic</i>\r\nX-Injected: 1",))
    rendered = emails.render("digest", ctx)
    assert "<script>" not in rendered.html and "<img src=x" not in rendered.html and "<b>Mallory" not in rendered.html
    assert "&lt;script&gt;" in rendered.html and "&lt;b&gt;Mallory&lt;/b&gt;" in rendered.html
    assert "javascript:" not in rendered.html
    assert HOSTILE in " ".join(rendered.text.split())  # plain text shows the title as it is
    raw = emails.build_message(rendered, to="reader@example.org").message().as_bytes()
    message = email.message_from_bytes(raw, policy=policy.default)
    assert "\n" not in message["Subject"] and "\r" not in message["Subject"]
    assert message["X-Injected"] is None and message["Bcc"] is None


def test_dark_mode_phone_and_images(subscriber):
    html = emails.render("digest", context(subscriber, [paper(1)])).html
    soup = BeautifulSoup(html, "html.parser")
    assert soup.find("meta", attrs={"name": "color-scheme", "content": "light dark"})
    assert "@media (prefers-color-scheme: dark)" in html
    assert soup.find("meta", attrs={"name": "viewport"})
    assert "max-width:640px" in html.replace(" ", "")
    assert all(img.get("alt") is not None for img in soup.find_all("img"))


def test_mjml_is_compiled_once_per_process(subscriber, monkeypatch):
    calls = []
    real = rendering.mjml2html
    monkeypatch.setattr(rendering, "mjml2html", lambda source, **options: calls.append(1) or real(source, **options))
    rendering.compiled_html.cache_clear()
    try:
        for n in range(3):
            emails.render("digest", context(subscriber, [paper(n + 1)]))
    finally:
        rendering.compiled_html.cache_clear()
    assert calls == [1]


def test_sent_message_headers(subscriber, settings):
    from digests.models import Delivery, Issue
    from tests.digests.helpers import make_papers

    make_papers()
    settings.UNSUBSCRIBE_MAILTO = "unsubscribe@testserver"
    issue = Issue.objects.create(frequency="weekly", period="2026-W48")
    row = Delivery.objects.create(issue=issue, subscriber=make_subscriber("h@example.org", topics=["protein folding"]))
    delivery.deliver_batch([row.id])
    message = email.message_from_bytes(mail.outbox[0].message().as_bytes(), policy=policy.default)
    unsubscribe = message["List-Unsubscribe"].strip()
    expected = r"<http://testserver/unsubscribe/[^>]+/>, <mailto:unsubscribe@testserver\?subject=unsubscribe>"
    assert re.fullmatch(expected, unsubscribe)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["List-Id"] == "Paper Digest weekly digest <weekly.digest.testserver>"
    assert re.fullmatch(r"<[^@]+@testserver>", message["Message-ID"])
    assert message["Date"] and message["From"] == "Paper Digest <digest@testserver>"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    assert "DKIM-Signature" not in message  # not configured


@pytest.fixture
def dns(settings, tmp_path):
    """A fresh DKIM key in the settings; returns a DNS lookup that answers its public record."""
    import base64

    key = tmp_path / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"], check=True, capture_output=True
    ).stdout
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    settings.DKIM_SELECTOR, settings.DKIM_DOMAIN, settings.DKIM_PRIVATE_KEY_FILE = "digest", "testserver", str(key)

    def lookup(name, timeout=5):
        assert name == b"digest._domainkey.testserver."
        return record

    return lookup


def test_dkim_signature_covers_the_unsubscribe_headers_and_verifies(subscriber, dns):
    rendered = emails.render("digest", context(subscriber, [paper(1)]))
    unsubscribe = "http://testserver/unsubscribe/t/"
    message = emails.build_message(rendered, to="r@example.org", unsubscribe_url=unsubscribe, list_id="L <l.test>")
    raw = message.message().as_bytes(linesep="\r\n")
    parsed = email.message_from_bytes(raw, policy=policy.default)
    signed = dict(tag.strip().split("=", 1) for tag in parsed["DKIM-Signature"].split(";"))
    covered = signed["h"].replace(" ", "").split(":")
    assert {"from", "subject", "list-unsubscribe", "list-unsubscribe-post", "list-id", "message-id"} <= set(covered)
    assert signed["d"] == "testserver" and signed["s"] == "digest"
    assert dkim.verify(raw, dnsfunc=dns)
    tampered = raw.replace(b"http://testserver/unsubscribe/t/", b"http://evil.test/unsubscribe/t/")
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_a_twenty_paper_digest_goes_out_in_8bit_with_short_lines(subscriber):
    # MJML writes lines of several KB; over 998 characters the email package would
    # quoted-printable-encode the whole HTML part (slower, a third bigger).
    papers = [paper(n, title=f"Schrödinger bridges, number {n} — a study") for n in range(1, 21)]
    rendered = emails.render("digest", context(subscriber, papers))
    raw = emails.build_message(rendered, to="reader@example.org").message().as_bytes(linesep="\r\n")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    message = email.message_from_bytes(raw, policy=policy.default)
    html_part = message.get_body(preferencelist=("html",))
    assert html_part["Content-Transfer-Encoding"] == "8bit"
    assert html_part.get_content().replace("\r\n", "\n").strip() == rendered.html.strip()
    shown = BeautifulSoup(html_part.get_content(), "html.parser").get_text()
    assert "Schrödinger bridges, number 20 — a study" in shown


@pytest.mark.parametrize(
    "subject",
    [
        "3 new papers on sparse attention · week of 23 November 2026",
        "plain ASCII subject",
        " ".join(["Schrödinger 😀 =?utf-8?q?not_a_word?= _under_score"] * 4),
    ],
)
def test_subjects_are_encoded_in_words_any_reader_decodes(subject):
    encoded = messages.encoded_words(subject)
    assert encoded.isascii() and all(len(word) <= 69 for word in encoded.split())
    assert str(email.header.make_header(email.header.decode_header(encoded))) == subject
    message = emails.build_message(
        emails.RenderedEmail(subject=subject, text="hi\n", html="<p>hi</p>"), to="reader@example.org"
    )
    assert message.subject == subject  # the attribute stays readable (API backends use it)
    parsed = email.message_from_bytes(message.message().as_bytes(), policy=policy.default)
    assert parsed["Subject"] == subject


def _wire_and_mime(message):
    """The same message through ``wire_bytes`` and through the email package, parsed."""
    wire = message.wire_bytes()
    mime = message.message().as_bytes(linesep="\r\n")
    return (
        wire,
        email.message_from_bytes(wire, policy=policy.default),
        email.message_from_bytes(mime, policy=policy.default),
    )


def test_wire_bytes_say_what_the_email_package_says(subscriber, settings):
    settings.UNSUBSCRIBE_MAILTO = "unsubscribe@testserver"
    papers = [paper(n, title=f"Schrödinger bridges, number {n} — a study") for n in range(1, 21)]
    rendered = emails.render("digest", context(subscriber, papers))
    unsubscribe = "http://testserver/unsubscribe/" + "t0k3n" * 40 + "/"
    message = emails.build_message(
        rendered, to="reader@example.org", unsubscribe_url=unsubscribe, list_id="Paper Digest weekly digest <w.test>"
    )
    wire, fast, slow = _wire_and_mime(message)
    assert not fast.defects and not any(part.defects for part in fast.walk())
    names = [name.lower() for name in fast]
    assert sorted(names) == sorted(name.lower() for name in slow)
    for name in set(names) - {"content-type", "date"}:
        assert " ".join(str(fast[name]).split()) == " ".join(str(slow[name]).split()), name
    assert fast["Subject"] == rendered.subject
    assert fast.get_content_type() == "multipart/alternative"
    assert [(p.get_content_type(), p["Content-Transfer-Encoding"]) for p in fast.iter_parts()] == [
        ("text/plain", "8bit"),
        ("text/html", "8bit"),
    ]
    assert [p.get_content() for p in fast.iter_parts()] == [p.get_content() for p in slow.iter_parts()]
    head, _, body = wire.partition(b"\r\n\r\n")
    assert b"\n" not in wire.replace(b"\r\n", b"")  # CRLF everywhere, no bare line ends
    long_lines = [line for line in head.split(b"\r\n") if len(line) > 78]
    # Folded everywhere but inside the long URL, and never before a header's first word.
    assert long_lines == [b"List-Unsubscribe: <" + unsubscribe.encode() + b">,"]
    assert max(len(line) for line in wire.split(b"\r\n")) <= 998
    assert fast["List-Unsubscribe"].startswith(f"<{unsubscribe}>")


def test_messages_of_another_shape_go_through_the_email_package():
    plain = emails.RenderedEmail(subject="Hello", text="hi\n", html="<p>hi</p>")
    for message, check in [
        # A non-ASCII display name must be RFC 2047-encoded: the email package does it.
        (
            emails.build_message(plain, to="Zoë Reader <zoe@example.org>"),
            lambda m: m["To"] == "Zoë Reader <zoe@example.org>",
        ),
        # A line too long for 8bit makes the part quoted-printable.
        (
            emails.build_message(
                emails.RenderedEmail(subject="Hi", text="x" * 1200 + "\n", html="<p>hi</p>"), to="r@x.org"
            ),
            lambda m: next(m.iter_parts())["Content-Transfer-Encoding"] == "quoted-printable",
        ),
    ]:
        wire, fast, slow = _wire_and_mime(message)
        assert check(fast) and check(slow)
        assert [p.get_content() for p in fast.iter_parts()] == [p.get_content() for p in slow.iter_parts()]
    injected = emails.build_message(plain, to="r@example.org")
    injected.extra_headers["List-Id"] = "L <l.test>\r\nBcc: victim@example.org"
    with pytest.raises(mail.BadHeaderError):
        injected.wire_bytes()


def test_wire_bytes_carry_a_dkim_signature_that_verifies(subscriber, dns):
    rendered = emails.render("digest", context(subscriber, [paper(1), paper(2)]))
    unsubscribe = "http://testserver/unsubscribe/t/"
    raw = emails.build_message(
        rendered, to="r@example.org", unsubscribe_url=unsubscribe, list_id="L <l.test>"
    ).wire_bytes()
    assert raw.startswith(b"DKIM-Signature: ")
    assert dkim.verify(raw, dnsfunc=dns)
    assert not dkim.verify(
        raw.replace(b"http://testserver/unsubscribe/t/", b"http://evil.test/unsubscribe/t/"), dnsfunc=dns
    )


@pytest.mark.parametrize("name", ["digest", "confirm", "manage"])
def test_emails_load_nothing_from_other_sites_when_opened(name):
    html = rendering.mjml_to_html((rendering.TEMPLATE_DIR / f"{name}.mjml").read_text(encoding="utf-8"))
    soup = BeautifulSoup(html, "html.parser")
    assert "Roboto" in html  # the font stack is still there, for readers who have it
    assert not soup.find_all("link") and "@import" not in html and "googleapis" not in html
