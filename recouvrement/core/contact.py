"""Contact details we send to: one plain e-mail address, checked the same way at import and before sending,
a phone number (French by default) in its E.164 form, and names that hold on one line (no CR/LF to inject a
header).

A phone number is read by Google's libphonenumber rules (the `phonenumbers` package), French (metropolitan or
overseas) when it has no ``+`` prefix: ``06 12 34 56 78``, ``+33 6 12 34 56 78`` and ``0033612345678`` are all ``+33612345678``. An SMS
goes only to a number those rules call a mobile.

>>> e164("06 12 34 56 78"), e164("+33 (0)6.12.34.56.78"), e164("01 42 00 00 00"), e164("06 12")
('+33612345678', '+33612345678', '+33142000000', None)
>>> is_mobile("+33612345678"), is_mobile("+33142000000"), is_mobile("")
(True, False, False)
>>> e164("06 92 12 34 56"), is_mobile("06 92 12 34 56")
('+262692123456', True)

An address is accepted only as a bare ``local@domain``: ASCII, the local part a dot-atom (RFC 5322
letters, digits and ``!#$%&'*+/=?^_`{|}~-``, dots between), the domain at least two labels of letters,
digits and inner hyphens with an alphabetic (or ``xn--``) top-level label, 254 characters at most, 64
before the ``@``. Refused: a list (``a@x.fr, b@y.fr``), a display name (``Marc <a@x.fr>``), a comment,
quotes, spaces, CR/LF, an IP-literal domain, an internationalised address (write the domain as
``xn--…``). Stricter than RFC 5321 on purpose: a letter goes to exactly the one person it names.

>>> is_valid_email("marc.durand+factures@ok.example")
True
>>> is_valid_email("marc@ok.example, evil@attacker.example"), is_valid_email("Marc <marc@ok.example>")
(False, False)
>>> one_line("Marc\\r\\nBcc: evil@attacker.example")
'Marc Bcc: evil@attacker.example'
>>> one_line("Dur\\u202eand\\u200b")
'Durand'
>>> display_name('Claire "Martin" Bcc: evil@attacker.example')
'Claire Martin Bcc evil attacker example'
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import phonenumbers

if TYPE_CHECKING:   # imported where used: a letter's composing worker checks addresses without them (issue #16)
    import pandas as pd

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# No look-around and no \Z: the same pattern runs in Arrow's RE2 (vectorised import) and in Python.
EMAIL_PATTERN = rf"{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+(?:[A-Za-z]{{2,63}}|xn--[A-Za-z0-9-]{{1,59}})"
MAX_LENGTH = 254
MAX_LOCAL_LENGTH = 64
_EMAIL = re.compile(EMAIL_PATTERN)
# Every line break a mail header or a printed line could take (CR, LF, VT, FF, NEL, U+2028/9), the
# other control characters, and runs of whitespace: one space each.
_BREAKS = re.compile(r"[\s\x00-\x1f\x7f-\x9f\u2028\u2029]+")
# Characters a reader cannot see that change what is seen: bidirectional embeddings, overrides, isolates
# and marks (a right-to-left override prints "Durand" backwards, or an amount beside it), and zero-width
# spaces and joiners (two names that look alike but differ). A French name or address needs none of them.
_INVISIBLE = re.compile("[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def is_valid_email(text: str | None) -> bool:
    """True for exactly one bare, syntactically valid address (see the module's rule)."""
    if not isinstance(text, str) or len(text) > MAX_LENGTH or _EMAIL.fullmatch(text) is None:
        return False
    return len(text.partition("@")[0]) <= MAX_LOCAL_LENGTH


# RFC 5322 specials and the double quote. A display name holding none of them is a plain phrase that
# never needs quoting; a quoted one is unsafe: Python's header folder drops the quotes of a long quoted
# name, and its '@' and ':' then read as an address and a group (the letter went to an address in the
# patient's name field, tests/app/test_attacks.py).
_SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]')


def display_name(text: str) -> str:
    """A name fit for a mail header: on one line, without RFC 5322 specials (each becomes a space)."""
    return " ".join(_SPECIALS.sub(" ", one_line(text)).split())


def one_line(text: str) -> str:
    """The text on one line: line breaks, control characters and whitespace runs become one space; invisible
    formatting characters (bidirectional controls, zero-width) are dropped."""
    return _BREAKS.sub(" ", _INVISIBLE.sub("", text)).strip()


# A French number written nationally (0…) may be in metropolitan France or overseas (0692 … is La Réunion's
# +262 692 …): each numbering plan is tried in turn.
FRENCH_REGIONS = ("FR", "RE", "GP", "MQ", "GF", "YT", "PM", "BL", "MF", "NC", "PF", "WF")


def e164(text: str | None) -> str | None:
    """The number in E.164 form (``+33612345678``), or None when it is not one valid phone number."""
    if not isinstance(text, str) or not text.strip() or len(text) > 40:
        return None
    for region in FRENCH_REGIONS:
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            return None
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


# A French number written nationally as it usually is (0X XX XX XX XX, with spaces, dots or nothing between the
# pairs): its national significant number is the nine digits after the 0, checked below by libphonenumber's own
# French patterns, all numbers at once.
_NATIONAL_SHAPE = r"0[1-9](?:[ .]?[0-9]{2}){4}"
_NUMBER_TYPES = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan", "voicemail",
                 "fixed_line", "mobile")
# The same, in the order a patient's number is most likely to be of (the order of an "or" is free).
_MOST_USED_FIRST = ("mobile", "fixed_line", "voip", "toll_free", "shared_cost", "premium_rate", "personal_number",
                    "pager", "uan", "voicemail")


def e164_many(cells: pd.Series) -> pd.Series:
    """Vectorised e164, aligned on the index of cells (None where e164 gives None); a test holds the two equal.

    A number in the usual French shape that libphonenumber's French metadata calls valid is ``+33`` and its nine
    digits; any other cell (+ and a country code, 00…, an overseas number, a typo) goes through e164, each
    distinct value once. A million invoices carry some 400,000 distinct numbers: parsing each one in Python
    cost more than the rest of the file's checks together."""
    import numpy as np
    import pandas as pd
    text = cells.astype("string[pyarrow]")
    national = text.str.replace(" ", "", regex=False).str.replace(".", "", regex=False).str.slice(1)   # (not [ .]: 4x)
    plain = (text.str.fullmatch(_NATIONAL_SHAPE).fillna(False).astype(bool)
             & _valid_nationally(national, "FR"))
    found = np.full(len(cells), None, dtype=object)
    code = _metadata("FR").country_code
    found[plain.to_numpy()] = (f"+{code}" + national[plain]).to_numpy(dtype=object)
    codes, distinct = pd.factorize(cells.where(~plain & cells.notna()))
    normalised = np.array([e164(value) for value in distinct.tolist()] + [None], dtype=object)
    found[codes >= 0] = normalised[codes[codes >= 0]]
    return pd.Series(found, index=cells.index, dtype=object)


def _metadata(region: str) -> phonenumbers.PhoneMetadata:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None:                     # phonenumbers always ships France's
        raise LookupError(f"no phone metadata for {region}")
    return metadata


def _valid_nationally(national: pd.Series, region: str) -> pd.Series:
    """phonenumbers.is_valid_number for national significant numbers of `region` (digits only): its general
    pattern and one of its number types' (each with its possible lengths), as libphonenumber checks them. Each type
    is tried on the numbers that match the general pattern and no type tried before, mobile and fixed line first (a
    clinic's patients' numbers nearly all are one of them): the other eight types' patterns ran on every number
    (410,000 at 1M invoices: 0.3 s CPU of the import's checks)."""
    import numpy as np
    import pandas as pd
    metadata = _metadata(region)
    valid = _matching(national, metadata.general_desc).to_numpy(dtype=bool)
    typed = np.zeros(len(national), dtype=bool)
    for name in sorted(_NUMBER_TYPES, key=_MOST_USED_FIRST.index):
        left = np.flatnonzero(valid & ~typed)
        if not len(left):
            break
        typed[left[_matching(national.iloc[left], getattr(metadata, name)).to_numpy(dtype=bool)]] = True
    return pd.Series(valid & typed, index=national.index)


def _matching(national: pd.Series, desc) -> pd.Series:
    """Which national numbers a libphonenumber description (pattern and possible lengths) admits."""
    import pandas as pd
    if desc is None or not desc.national_number_pattern:
        return pd.Series(False, index=national.index)
    hit = national.str.fullmatch(desc.national_number_pattern).fillna(False).astype(bool)
    if desc.possible_length:
        hit &= national.str.len().isin(desc.possible_length).fillna(False).astype(bool)
    return hit


def is_mobile_many(cells: pd.Series) -> pd.Series:
    """Vectorised is_mobile, aligned on the index of cells (False where is_mobile is False); a test holds the two
    equal. A number already written ``+33`` and nine digits (as the importers store them), or whose E.164 form
    (e164_many) is, is checked and typed as libphonenumber does (is_valid_number, then number_type: its general
    pattern, none of the types tried before fixed line and mobile, then the mobile's pattern), all at once; any
    other distinct value goes through is_mobile."""
    import numpy as np
    import pandas as pd
    code = f"+{_metadata('FR').country_code}"
    text = cells.astype("string[pyarrow]")
    stored = text.str.fullmatch(rf"\{code}[1-9][0-9]{{8}}").fillna(False).astype(bool).to_numpy()
    found = np.zeros(len(cells), dtype=bool)
    national = text[stored].str.slice(len(code))
    found[stored] = (_valid_nationally(national, "FR") & _mobile_nationally(national, "FR")).to_numpy()
    rest = np.flatnonzero(~stored)
    numbers = e164_many(text[~stored]).astype("string[pyarrow]")
    french = (numbers.str.startswith(code).fillna(False).astype(bool)
              & (numbers.str.len() == len(code) + 9).fillna(False).astype(bool)).to_numpy()
    found[rest[french]] = _mobile_nationally(numbers[french].str.slice(len(code)), "FR").to_numpy()
    others = numbers.notna().to_numpy() & ~french
    if others.any():
        codes, distinct = pd.factorize(numbers[others])
        found[rest[others]] = np.array([is_mobile(value) for value in distinct.tolist()], dtype=bool)[codes]
    return pd.Series(found, index=cells.index)


def _mobile_nationally(national: pd.Series, region: str) -> pd.Series:
    """number_type(…) in (MOBILE, FIXED_LINE_OR_MOBILE) for valid national significant numbers of `region`."""
    import pandas as pd
    metadata = _metadata(region)
    earlier = pd.Series(False, index=national.index)
    for name in _NUMBER_TYPES[:-2]:             # premium rate … voicemail: tried before fixed line and mobile
        earlier |= _matching(national, getattr(metadata, name))
    either = _matching(national, metadata.fixed_line if metadata.same_mobile_and_fixed_line_pattern
                       else metadata.mobile)
    return _matching(national, metadata.general_desc) & ~earlier & either


def is_mobile(text: str | None) -> bool:
    """True for a valid number that is a mobile's (an SMS can reach it)."""
    normalised = e164(text)
    if normalised is None:
        return False
    kind = phonenumbers.number_type(phonenumbers.parse(normalised))
    return kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
