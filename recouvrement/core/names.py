"""Names as banks print them: accents, order, titles and initials folded into comparable keys.

>>> normalise_name("Mme Éloïse LEFÈVRE-d'Arc")
'MME ELOISE LEFEVRE D ARC'
>>> sorted(name_keys("M. DUPONT J"))
[('DUPONT', 'J')]
>>> ("DELAFONTAINE", "JEANFRANCOIS") in name_keys("Jean-François De La Fontaine")
True
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Container

TITLES = {"M", "MR", "MME", "MLLE", "MRS", "MS", "MONSIEUR", "MADAME", "MADEMOISELLE", "DR", "ET", "OU",
          "VIR", "VIREMENT", "SEPA", "RECU", "INST", "FAVEUR", "PAR"}
_NOT_LETTER = re.compile(r"[^A-Z]+")


def normalise_name(text: str) -> str:
    """Upper case, accents removed, anything but letters turned into single spaces."""
    folded = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode().upper()
    return _NOT_LETTER.sub(" ", folded).strip()


def compact_name(text: str) -> str:
    """Letters only: 'De La Fontaine' and 'DELAFONTAINE' compare equal."""
    return normalise_name(text).replace(" ", "")


def name_keys(payer_name: str, max_tokens: int = 6) -> set[tuple[str, str]]:
    """(last, first) pairs a payer name could mean: any run of words as the last name, any other run as
    the first name or its initial. Titles and banking words are dropped first."""
    runs, others = _runs(payer_name, max_tokens)
    return {(last, runs[b]) for last, beside in zip(runs, others) if len(last) >= 2 for b in beside}


def name_keys_among(payer_name: str, lasts: Container[str], max_tokens: int = 6) -> set[tuple[str, str]]:
    """name_keys(payer_name) whose last name is one of `lasts` (the same pairs as filtering them after): a payer
    name's runs of words are few, the pairs of them many, and most of them name nobody's last name."""
    runs, others = _runs(payer_name, max_tokens)
    return {(last, runs[b]) for last, beside in zip(runs, others) if len(last) >= 2 and last in lasts for b in beside}


def _runs(payer_name: str, max_tokens: int) -> tuple[list[str], tuple[tuple[int, ...], ...]]:
    """The payer name's runs of words (titles and banking words dropped), each joined, and for each run the places
    of the runs that do not overlap it."""
    tokens = [t for t in normalise_name(payer_name).split() if t not in TITLES][:max_tokens]
    spans, others = _SPAN_PAIRS[len(tokens)] if len(tokens) in _SPAN_PAIRS else _span_pairs(len(tokens))
    return ["".join(tokens[i:j]) for i, j in spans], others


def _span_pairs(count: int) -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, ...], ...]]:
    """The runs of `count` words (i, j: words i to j - 1), and for each the places among them of the runs that do
    not overlap it: worked out once per number of words, where name_keys found them again for each name."""
    spans = tuple((i, j) for i in range(count) for j in range(i + 1, count + 1))
    return spans, tuple(tuple(b for b, (k, m) in enumerate(spans) if m <= i or k >= j) for i, j in spans)


_SPAN_PAIRS = {count: _span_pairs(count) for count in range(7)}
