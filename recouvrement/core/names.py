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
    tokens = [t for t in normalise_name(payer_name).split() if t not in TITLES][:max_tokens]
    spans = [(i, j) for i in range(len(tokens)) for j in range(i + 1, len(tokens) + 1)]
    keys = set()
    for i, j in spans:
        last = "".join(tokens[i:j])
        if len(last) < 2:
            continue
        for k, m in spans:
            if m <= i or k >= j:
                keys.add((last, "".join(tokens[k:m])))
    return keys
