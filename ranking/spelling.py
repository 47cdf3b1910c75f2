"""British spellings folded into American ones before stemming, so that a topic written
"optimisation of tokenisers" finds papers on "optimization of tokenizers" and the other
way round. The stemmer alone keeps them apart ("optimis" and "optim").

Four patterns cover what papers and readers write:

- ``-ise``, ``-ised``, ``-ising``, ``-iser(s)``, ``-isation(s)`` become ``-iz...``
  (optimise, generalisation, tokeniser, quantised), except after a vowel (noise,
  denoising, raise, cruise), in ``-wise`` words (pairwise, layerwise) and in the words
  that are ``-ise`` in American English too (supervise, precise, exercise, promise...);
- ``-yse`` and its forms become ``-yze`` (analyse, catalysed);
- ``-our`` words that are ``-or`` in American English (behaviour, neighbourhood,
  colours), listed, because most ``-our`` words are not (hour, four, tour, contour);
- single words (centre, fibre, defence, programme, catalogue, artefact...).

Both the papers' text and the topics go through it, so a word it changes by mistake
still matches itself; only its link to related forms could suffer, which is why the
``-ise`` exceptions are listed.
"""

from __future__ import annotations

import re

_ISE = re.compile(r"^([a-z]{3,})is(e|es|ed|ing|er|ers|ation|ations)$")
_YSE = re.compile(r"^([a-z]{3,})ys(e|es|ed|ing|er|ers)$")  # analyse, catalysed, paralysing

# Words spelled -ise in American English too, by what comes before "ise" (also at the end
# of a longer word: unsupervised, unpromising).
_ALWAYS_ISE = (
    "adv",
    "advert",
    "appr",
    "chast",
    "circumc",
    "compr",
    "comprom",
    "conc",
    "dem",
    "desp",
    "dev",
    "enterpr",
    "exc",
    "exerc",
    "exorc",
    "expert",
    "franch",
    "improv",
    "inc",
    "merchand",
    "mort",
    "parad",
    "prec",
    "prem",
    "prom",
    "repr",
    "rev",
    "sunr",
    "upr",
    "superv",
    "surm",
    "surpr",
    "telev",
    "treat",
    "val",
    "chem",
    "cer",
)

_OUR = (
    "armour",
    "behaviour",
    "clamour",
    "colour",
    "endeavour",
    "favour",
    "flavour",
    "harbour",
    "honour",
    "humour",
    "labour",
    "neighbour",
    "odour",
    "parlour",
    "rigour",
    "rumour",
    "savour",
    "tumour",
    "valour",
    "vapour",
    "vigour",
)
_OUR_PREFIX = re.compile(rf"^({'|'.join(_OUR)})")

_WORDS = {
    "ageing": "aging",
    "analogue": "analog",
    "analogues": "analogs",
    "artefact": "artifact",
    "artefacts": "artifacts",
    "catalogue": "catalog",
    "catalogues": "catalogs",
    "centre": "center",
    "centred": "centered",
    "centres": "centers",
    "centring": "centering",
    "defence": "defense",
    "defences": "defenses",
    "fibre": "fiber",
    "fibres": "fibers",
    "grey": "gray",
    "judgement": "judgment",
    "judgements": "judgments",
    "licence": "license",
    "litre": "liter",
    "litres": "liters",
    "metre": "meter",
    "metres": "meters",
    "offence": "offense",
    "programme": "program",
    "programmes": "programs",
    "sceptic": "skeptic",
    "sceptical": "skeptical",
    "sceptics": "skeptics",
    "theatre": "theater",
}


def american(word: str) -> str:
    """The American spelling of a lower-case word (the word itself when it has none)."""
    if word in _WORDS:
        return _WORDS[word]
    if "is" in word:
        match = _ISE.match(word)
        if match:
            base = match.group(1)
            if base[-1] not in "aeiouyw" and not base.endswith(_ALWAYS_ISE):
                return f"{base}iz{match.group(2)}"
    if "ys" in word:
        match = _YSE.match(word)
        if match:
            return f"{match.group(1)}yz{match.group(2)}"
    if "our" in word:
        return _OUR_PREFIX.sub(lambda m: m.group(1)[:-2] + "r", word)
    return word
