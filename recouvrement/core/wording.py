"""Words a letter may print that come from outside: an insurer's rejection reason, an address's last line.

>>> reasons = (("droits non ouverts", "vos droits n'étaient pas ouverts à cette date auprès de votre caisse"),)
>>> neutral_reason("DROITS NON-OUVERTS.", reasons)
"vos droits n'étaient pas ouverts à cette date auprès de votre caisse"
>>> neutral_reason("Acte non remboursable", reasons) is None
True
>>> postal_line("93260", "Les Lilas"), postal_line("97400", "Saint-Denis (La Réunion)")
('93260 LES LILAS', '97400 SAINT DENIS LA REUNION')
"""

from __future__ import annotations

import re
import unicodedata

_NOT_WORD = re.compile(r"[^0-9a-z]+")


def _plain(text: str) -> str:
    """Lower case, no accent, words separated by one space."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _NOT_WORD.sub(" ", ascii_text.lower()).strip()


def neutral_reason(reason: str | None, reasons: tuple[tuple[str, str], ...]) -> str | None:
    """The neutral words for an insurer's reason when the rules list it (an administrative reason); None for
    any other: a reason that is not listed is never copied, it could reveal care."""
    if not reason:
        return None
    wanted = _plain(reason)
    return next((words for key, words in reasons if _plain(key) == wanted), None)


def postal_line(postal_code: str, city: str) -> str:
    """The last line of a French address (NF Z10-011): postal code and city in capitals, without accents
    or punctuation."""
    return " ".join(f"{postal_code} {_plain(city)}".upper().split())
