"""Reading XML feeds the way feed readers do, safely.

Publishers serve feeds that a strict parser refuses for lexical slips only: UTF-16 or
UTF-32 without a byte-order mark, whitespace or a comment before ``<?xml``, HTML named
entities (``&eacute;``), bare ``&`` in URLs, control characters, a DOCTYPE pointing to a
DTD we will never load, a ``dc:`` prefix never declared, an unclosed ``<br>``. Those are
repaired before parsing; structure is not guessed, so a truncated or mis-nested feed is
still refused. Internal entities of a DOCTYPE are expanded (libxml2 caps their
amplification, so a billion-laughs document is refused); external entities are never
resolved: their references are dropped, and no DTD or network resource is ever loaded.
"""

from __future__ import annotations

import base64
import binascii
import html.entities
import re
from urllib.parse import urljoin

from lxml import etree

from papers.importers.base import BadInput, bom_encoding, decode_text
from papers.importers.normalise import BLOCK_ELEMENTS, DROPPED_ELEMENTS, html_to_text

XML_PREDEFINED = {"amp", "lt", "gt", "quot", "apos"}
DROPPED = set(DROPPED_ELEMENTS)
BLOCKS = set(BLOCK_ELEMENTS)

# XML 1.0 Appendix F: the first four bytes of a document without a byte-order mark.
_APPENDIX_F = [
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<\x00?", "utf-16-be"),
    (b"<\x00?\x00", "utf-16-le"),
]
_DECLARED = re.compile(r"""^\s*(?:<!--.*?-->\s*)*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9_\-.:]+)["']""", re.S)
_PROLOG_JUNK = re.compile(r"^(?:\s|\ufeff|<!--.*?-->|<\?xml\b.*?\?>)*", re.S)
_DOCTYPE = re.compile(r"<!DOCTYPE\s+([^\s\[>]+)[^\[>]*(?:\[(.*?)\]\s*)?>", re.S | re.I)
_ENTITY_DECL = re.compile(
    r"""<!ENTITY\s+(%\s+)?([A-Za-z_][\w.\-]*)\s+(?:"([^"]*)"|'([^']*)'|(?:SYSTEM|PUBLIC)\b[^>]*)\s*>""", re.S
)
# What entity repair must leave alone (CDATA, comments, processing instructions), or fix.
_TOKENS = re.compile(
    r"<!\[CDATA\[.*?\]\]>|<!--.*?-->|<\?.*?\?>|&(?:#(\d{1,10})|#[xX]([0-9a-fA-F]{1,8})|([A-Za-z_][\w.\-]{0,63}))?(;?)",
    re.S,
)
# Prefixes feeds use without declaring them; any other undeclared one gets a placeholder.
WELL_KNOWN_PREFIXES = {
    "dc": "http://purl.org/dc/elements/1.1/",
    "dcterms": "http://purl.org/dc/terms/",
    "content": "http://purl.org/rss/1.0/modules/content/",
    "atom": "http://www.w3.org/2005/Atom",
    "media": "http://search.yahoo.com/mrss/",
    "arxiv": "http://arxiv.org/schemas/atom",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "prism": "http://prismstandard.org/namespaces/basic/2.0/",
}
_USED_PREFIX = re.compile(r"<\/?([A-Za-z_][\w.\-]*):[A-Za-z_]|\s([A-Za-z_][\w.\-]*):[A-Za-z_][\w.\-]*\s*=")
_DECLARED_PREFIX = re.compile(r"xmlns:([A-Za-z_][\w.\-]*)\s*=")
_ROOT_TAG = re.compile(r"<(?![!?/])[A-Za-z_][\w.:\-]*")
# HTML's void elements written unclosed inside a feed's fields (<br>, <img src=...>).
_VOID = ("br", "hr", "img", "wbr", "input", "col", "area", "param", "source", "track", "embed")
_NOT_XML_CHAR = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def sniff_encoding(data: bytes) -> str | None:
    """The encoding the bytes themselves show: a BOM, else XML Appendix F, else the
    pattern of zero bytes that UTF-16/32 gives ASCII text (leading whitespace)."""
    encoding = bom_encoding(data)
    if encoding:
        return encoding
    for pattern, name in _APPENDIX_F:
        if data.startswith(pattern):
            return name
    head = data[:64]
    if len(head) >= 8 and b"\x00" in head:
        if all(head[i + 1 : i + 4] == b"\x00\x00\x00" and head[i] for i in range(0, len(head) - 3, 4)):
            return "utf-32-le"
        if all(head[i : i + 3] == b"\x00\x00\x00" and head[i + 3] for i in range(0, len(head) - 3, 4)):
            return "utf-32-be"
        if all(head[i + 1] == 0 and head[i] for i in range(0, len(head) - 1, 2)):
            return "utf-16-le"
        if all(head[i] == 0 and head[i + 1] for i in range(0, len(head) - 1, 2)):
            return "utf-16-be"
    return None


def decode_xml(data: bytes, charset: str | None = None) -> str:
    """The document as text: the bytes' own encoding, else the XML declaration's, else
    the HTTP charset, else UTF-8 (wrong single-byte labels handled as ``decode_text``)."""
    encoding = sniff_encoding(data)
    if encoding:
        return decode_text(data, encoding).lstrip("\ufeff")
    match = _DECLARED.match(data[:1024].decode("ascii", errors="replace"))
    declared = match.group(1) if match else None
    if declared and declared.lower().startswith(("utf-16", "utf-32", "ucs-2", "ucs-4", "utf16", "utf32")):
        declared = None  # the bytes are ASCII-compatible: the label is wrong
    return decode_text(data, declared or charset).lstrip("\ufeff")


def _entity_names(subset: str) -> tuple[dict[str, str], set[str]]:
    internal, external = {}, set()
    for match in _ENTITY_DECL.finditer(subset):
        if match.group(1):  # parameter entities only serve a DTD we never load
            continue
        value = match.group(3) if match.group(3) is not None else match.group(4)
        if value is None:
            external.add(match.group(2))
        else:
            internal.setdefault(match.group(2), value)
    return internal, external


def _is_xml_char(code: int) -> bool:
    return code in (9, 10, 13) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD or 0x10000 <= code <= 0x10FFFF


def _fix_entities(text: str, internal: dict[str, str], external: set[str]) -> str:
    def fix(match: re.Match) -> str:
        token = match.group(0)
        if not token.startswith("&"):
            return token
        decimal, hexadecimal, name, semicolon = match.groups()
        if not semicolon:
            return "&amp;" + token[1:]
        if decimal or hexadecimal:
            code = int(decimal) if decimal else int(hexadecimal, 16)
            return token if _is_xml_char(code) else ""
        if name in XML_PREDEFINED or name in internal:
            return token
        if name in external:
            return ""
        character = html.entities.html5.get(name + ";")
        if character is not None:
            return "".join(f"&#{ord(c)};" for c in character)
        return "&amp;" + token[1:]

    return _TOKENS.sub(fix, text)


def _declare_prefixes(text: str) -> str:
    """Declare, on the root element, the prefixes a feed uses but never declared."""
    used = {name for match in _USED_PREFIX.finditer(text) for name in match.groups() if name}
    missing = sorted(used - set(_DECLARED_PREFIX.findall(text)) - {"xml", "xmlns"})
    root = _ROOT_TAG.search(text)
    if not missing or root is None:
        return text
    declarations = "".join(
        f' xmlns:{prefix}="{WELL_KNOWN_PREFIXES.get(prefix, "urn:undeclared:" + prefix)}"' for prefix in missing
    )
    return text[: root.end()] + declarations + text[root.end() :]


def _close_void_elements(text: str) -> str:
    for name in _VOID:
        if re.search(rf"</{name}\s*>", text, re.I):  # written as XML somewhere: leave them all
            continue
        text = re.sub(rf"<({name})(\s[^<>]*?)?\s*(?<!/)>", r"<\1\2/>", text, flags=re.I)
    return text


def repair(text: str) -> str:
    """Lexical repairs only (see the module's docstring); the structure stays as it is.

    The XML declaration goes (the text is handed on as UTF-8), and a DOCTYPE is rebuilt
    with nothing but its internal general entities."""
    text = _NOT_XML_CHAR.sub("", _PROLOG_JUNK.sub("", text, count=1))
    text = _close_void_elements(_declare_prefixes(text))
    doctype = _DOCTYPE.match(text)
    if not doctype:
        return _fix_entities(text, {}, set())
    internal, external = _entity_names(doctype.group(2) or "")
    declarations = "".join(
        f'<!ENTITY {name} "{_fix_entities(value, internal, external).replace(chr(34), "&#34;")}">'
        for name, value in internal.items()
    )
    head = f"<!DOCTYPE {doctype.group(1)} [{declarations}]>" if declarations else ""
    return head + _fix_entities(text[doctype.end() :], internal, external)


def parse_xml(data: bytes, charset: str | None = None, *, url: str | None = None):
    """The document's root element; BadInput when it is not XML even after repairs."""
    text = repair(decode_xml(data, charset))
    if not text.strip():
        raise BadInput("malformed XML: empty document")
    parser = etree.XMLParser(
        resolve_entities="internal",
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_pis=True,
        remove_comments=True,
        collect_ids=False,
    )
    try:
        root = etree.fromstring(text.encode("utf-8"), parser, base_url=url)
    except etree.XMLSyntaxError as exc:
        message = " ".join((exc.msg or str(exc)).split())[:300]
        lowered = message.lower()
        lines = text.rstrip().split("\n")
        line, column = exc.position if exc.position else (0, 0)
        at_the_end = line >= len(lines) and column >= len(lines[-1].encode("utf-8"))
        if "premature end" in lowered or "not closed" in lowered or "end of data" in lowered or at_the_end:
            raise BadInput(f"XML ends early (truncated?): {message}") from None
        raise BadInput(f"malformed XML: {message}") from None
    if root is None:
        raise BadInput("malformed XML: empty document")
    return root


# --- reading elements -----------------------------------------------------------------


def namespace(element) -> str:
    tag = element.tag
    if not isinstance(tag, str) or not tag.startswith("{"):
        return ""
    return tag[1:].split("}", 1)[0]


def local_name(element) -> str:
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def children(element, name: str, namespaces) -> list:
    """Child elements called ``name`` in one of ``namespaces`` ("" for none)."""
    return [c for c in element if local_name(c) == name and namespace(c) in namespaces]


def first(element, name: str, namespaces):
    found = children(element, name, namespaces)
    return found[0] if found else None


XHTML = "http://www.w3.org/1999/xhtml"
MATHML = "http://www.w3.org/1998/Math/MathML"


def _markup_text(element) -> str:
    """The text of mixed content (XHTML, stray markup): script and style content never,
    nor an extension's elements (another namespace), words of separate blocks kept apart."""
    markup = {"", XHTML, MATHML, namespace(element)}
    parts: list[str] = [element.text or ""]
    stack = [(child, False) for child in reversed(element)]
    while stack:
        node, closing = stack.pop()
        name = local_name(node).lower()
        if closing:
            parts.append(" " if name in BLOCKS else "")
            parts.append(node.tail or "")
            continue
        if not isinstance(node.tag, str) or name in DROPPED or namespace(node) not in markup:
            parts.append(node.tail or "")
            continue
        parts.append(" " if name in BLOCKS else "")
        parts.append(node.text or "")
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(node))
    return "".join(parts)


def field_text(element) -> str:
    """A feed field's text as its ``type`` (Atom) or ``mode`` (Atom 0.3) says: markup of
    ``html`` fields is parsed as HTML (``normalise`` keeps only its text), ``xhtml`` and
    other mixed content is walked, ``base64`` is decoded first."""
    if element is None:
        return ""
    kind = (element.get("type") or "").strip().lower()
    mode = (element.get("mode") or "").strip().lower()
    if mode == "base64" or kind.endswith(";base64"):
        raw = "".join(element.itertext())
        try:
            decoded = base64.b64decode("".join(raw.split()), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return ""
        return html_to_text(decoded) if _is_html(kind) else decoded
    if len(element):
        return _markup_text(element)
    text = element.text or ""
    return html_to_text(text) if _is_html(kind) or mode == "escaped" else text


def _is_html(kind: str) -> bool:
    return kind in ("html", "text/html", "application/xhtml+xml")


def resolve(element, href: str) -> str:
    """``href`` against the element's ``xml:base`` chain (and the document's URL)."""
    href = (href or "").strip()
    if not href:
        return ""
    base = element.base if element is not None else None
    return urljoin(base, href) if base else href
