"""LaTeX in titles and abstracts as Unicode, for places no script renders it (mail).

arXiv titles and abstracts carry maths (``$O(n^2)$``, ``\\( A \\)``) and escapes
(``91\\%``). Only the maths goes through pylatexenc: run on a whole abstract, it would
take a ``%`` for a comment and drop the rest of the line. Outside the maths only the
escapes and the few text commands abstracts use are replaced.
"""

from __future__ import annotations

import re
from functools import lru_cache

_MATH = re.compile(r"\$\$(.+?)\$\$|(?<!\\)\$(.+?)(?<!\\)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.DOTALL)
_ESCAPES = {r"\%": "%", r"\&": "&", r"\_": "_", r"\#": "#", r"\$": "$", r"\{": "{", r"\}": "}"}
_ESCAPE = re.compile(r"\\[%&_#${}]")
_TEXT_COMMAND = re.compile(r"\\(?:emph|textit|textbf|texttt|textrm|textsc|mathrm|text)\{([^{}]*)\}")
_QUOTES = (("``", "“"), ("''", "”"), ("---", "—"), (" -- ", " – "))
_SUPERSCRIPT = str.maketrans("0123456789+-=()ni", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿⁱ")
_SUBSCRIPT = str.maketrans("0123456789+-=()aeioxjklmnpst", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑᵢₒₓⱼₖₗₘₙₚₛₜ")
_SCRIPT = re.compile(r"([\^_])(?:\{([^{}]*)\}|([A-Za-z0-9]))")


def _scripts(latex: str) -> str:
    """``n^2`` -> ``n²``, ``x_{i}`` -> ``xᵢ`` where Unicode has every character; else
    the source stays (``2^{\\alpha}`` is still readable)."""

    def replace(match):
        body = match.group(2) if match.group(2) is not None else match.group(3)
        table = _SUPERSCRIPT if match.group(1) == "^" else _SUBSCRIPT
        converted = body.translate(table)
        if body and all(a != b or a.isspace() for a, b in zip(body, converted, strict=True)):
            return converted.replace(" ", "")
        return match.group(0)

    return _SCRIPT.sub(replace, latex)


@lru_cache(maxsize=8192)
def _math(latex: str) -> str:
    from pylatexenc.latex2text import LatexNodes2Text

    try:
        text = LatexNodes2Text(math_mode="text").latex_to_text(_scripts(latex.strip()))
    except Exception:  # pylatexenc refuses some input: show the source rather than nothing
        return latex.strip()
    return " ".join(text.split())


@lru_cache(maxsize=16384)
def to_unicode(text: str) -> str:
    """``text`` with its LaTeX as Unicode: ``$\\alpha \\geq 0.5$`` -> ``α≥0.5``,
    ``91\\%`` -> ``91%``, ``$O(n^2)$`` -> ``O(n²)``. Text without LaTeX is returned as is."""
    if not text or ("\\" not in text and "$" not in text and "``" not in text and "--" not in text):
        return text
    text = _MATH.sub(lambda m: _math(next(g for g in m.groups() if g is not None)), text)
    text = _TEXT_COMMAND.sub(r"\1", text)
    text = _ESCAPE.sub(lambda m: _ESCAPES[m.group(0)], text)
    for source, shown in _QUOTES:
        text = text.replace(source, shown)
    return text
