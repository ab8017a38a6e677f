"""Tell an insurer's payment from a patient's by the payer name, using rules/insurers.toml.

>>> insurers = Insurers(amo=("CPAM",), amc=("HARMONIE MUTUELLE", "MSA"))
>>> insurers.payer_type("C.P.A.M. de l'Hérault")
'amo'
>>> insurers.payer_type("Harmonie Mutuelle")
'amc'
>>> insurers.payer_type("M MSABIR")
'patient'
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from recouvrement.errors import RecouvrementError

RULES_DIR = Path(__file__).resolve().parents[1] / "rules"
DEFAULT_PATH = RULES_DIR / "insurers.toml"
# Initials written with dots or spaces ("C.P.A.M.", "M S A") are glued back into one word.
_INITIALS = re.compile(r"(?<=\b[A-Z]) (?=[A-Z]\b)")


def normalise_name(name: str) -> str:
    """Upper case ASCII words separated by single spaces, letters split from digits."""
    text = unicodedata.normalize("NFKD", name)
    text = "".join(c for c in text if not unicodedata.combining(c)).upper()
    text = re.sub(r"(?<=[A-Z])(?=\d)|(?<=\d)(?=[A-Z])", " ", text)
    text = " ".join(re.sub(r"[^A-Z0-9]+", " ", text).split())
    return _INITIALS.sub("", text)


def _normalise_series(names: pd.Series) -> pd.Series:
    """Vectorised normalise_name, padded with spaces so keys can match as whole words."""
    text = names.astype("string").fillna("").str.normalize("NFKD")
    text = text.str.replace(r"[\u0300-\u036f]", "", regex=True).str.upper()
    text = text.str.replace(r"(?<=[A-Z])(?=\d)|(?<=\d)(?=[A-Z])", " ", regex=True)
    text = text.str.replace(r"[^A-Z0-9]+", " ", regex=True).str.strip()
    text = text.str.replace(_INITIALS.pattern, "", regex=True)
    return " " + text + " "


def _pattern(keys: tuple[str, ...]) -> re.Pattern[str] | None:
    words = sorted({normalise_name(k) for k in keys if normalise_name(k)}, key=len, reverse=True)
    if not words:
        return None
    return re.compile(" (?:" + "|".join(re.escape(w) for w in words) + ") ")


@dataclass(frozen=True)
class Insurers:
    """The names of the compulsory (amo) and complementary (amc) insurers."""

    amo: tuple[str, ...] = ()
    amc: tuple[str, ...] = ()
    _amo_re: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    _amc_re: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_amo_re", _pattern(self.amo))
        object.__setattr__(self, "_amc_re", _pattern(self.amc))

    def payer_type(self, name: str | None) -> str:
        """'amo', 'amc' or 'patient' for one payer name (amo keys win over amc keys)."""
        padded = f" {normalise_name(name if isinstance(name, str) else '')} "
        if self._amo_re is not None and self._amo_re.search(padded):
            return "amo"
        if self._amc_re is not None and self._amc_re.search(padded):
            return "amc"
        return "patient"

    def payer_types(self, names: pd.Series) -> pd.Series:
        """Vectorised payer_type, aligned on the index of names; missing names are patients."""
        padded = _normalise_series(names)
        is_amo = self._matches(padded, self._amo_re)
        is_amc = self._matches(padded, self._amc_re)
        kinds = np.select([is_amo, is_amc], ["amo", "amc"], default="patient")
        return pd.Series(kinds, index=names.index, dtype="str")

    @staticmethod
    def _matches(padded: pd.Series, pattern: re.Pattern[str] | None) -> np.ndarray:
        if pattern is None:
            return np.zeros(len(padded), dtype=bool)
        return padded.str.contains(pattern.pattern, regex=True).to_numpy(dtype=bool)


def load_insurers(path: Path | None = None) -> Insurers:
    """Insurers from a TOML file with [amo] names = [...] and [amc] names = [...]."""
    path = Path(path) if path is not None else DEFAULT_PATH
    data = _read_toml(path)
    return Insurers(amo=_names(data, "amo", path), amc=_names(data, "amc", path))


def _read_toml(path: Path) -> dict:
    """The insurers file's tables; one clear line naming the file if it cannot be read or parsed."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RecouvrementError(f"lecture impossible du fichier des assureurs : {exc.strerror}", file=str(path)) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RecouvrementError(f"fichier TOML invalide : {exc}", file=str(path)) from exc


def _names(data: dict, section: str, path: Path) -> tuple[str, ...]:
    names = data.get(section, {}).get("names") if isinstance(data.get(section), dict) else None
    if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
        raise RecouvrementError("une liste de noms non vides est attendue", file=str(path),
                                field=f"{section}.names")
    return tuple(names)


@dataclass(frozen=True)
class NoemieNumbers:
    """How a NOEMIE invoice number (9 characters) maps to the practice software's invoice number.

    >>> NoemieNumbers(prefix="F2").invoice_number("024000001")
    'F2024000001'
    >>> NoemieNumbers().invoice_number("000123456")
    '000123456'
    """

    prefix: str = ""
    suffix: str = ""

    def invoice_number(self, noemie_number: str) -> str:
        return f"{self.prefix}{noemie_number}{self.suffix}"


_NOEMIE_KEYS = {"invoice_prefix", "invoice_suffix"}


def load_noemie_numbers(path: Path | None = None) -> NoemieNumbers:
    """The [noemie] section of rules/insurers.toml (absent: numbers are taken as they are)."""
    path = Path(path) if path is not None else DEFAULT_PATH
    data = _read_toml(path)
    section = data.get("noemie", {})
    if not isinstance(section, dict):
        raise RecouvrementError("une table est attendue", file=str(path), field="noemie")
    for key in sorted(set(section) - _NOEMIE_KEYS):
        raise RecouvrementError("clé inconnue", file=str(path), field=f"noemie.{key}")
    values = {}
    for key in sorted(_NOEMIE_KEYS & set(section)):
        value = section[key]
        if not isinstance(value, str) or not re.fullmatch(r"[0-9A-Za-z]*", value):
            raise RecouvrementError("seulement des lettres et des chiffres (la forme compacte du numéro de facture)",
                                    file=str(path), field=f"noemie.{key}")
        values[key.removeprefix("invoice_")] = value
    return NoemieNumbers(**values)
