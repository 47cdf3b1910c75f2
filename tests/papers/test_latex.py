"""LaTeX in titles and abstracts as Unicode for mail (``papers.latex``)."""

import pytest

from papers.latex import to_unicode


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        (r"reaches 91\% accuracy", "reaches 91% accuracy"),
        (r"with \( A \) and \$5", "with A and $5"),
        (r"an $O(n^2)$ method", "an O(n²) method"),
        (r"$\alpha \geq 0.5$ and $10^{-3}$, $x_i$", "α≥0.5 and 10⁻³, xᵢ"),
        (r"$\mathcal{O}(L)$ cost", "𝒪(L) cost"),
        (r"$2^{\alpha}$", "2^α"),  # no superscript alpha in Unicode: the source stays readable
        (r"\emph{strong} results -- and ``quotes''", "strong results – and “quotes”"),
        ("plain text, 100% of it", "plain text, 100% of it"),
        ("MC-NEST -- Enhancing", "MC-NEST – Enhancing"),
    ],
)
def test_latex_becomes_unicode(source, shown):
    assert to_unicode(source) == shown
