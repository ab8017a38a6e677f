"""Invoices CSV from practice software: one row per invoice with its three shares (AMO, AMC, patient).

The NIR is checked with stdnum.fr.nir and leaves this module only as a keyed hash; care
descriptions and act codes leave it only when the installation asked to keep them. A patient id
that is a valid NIR (whatever its spaces, dashes or dots) is refused: the id is stored and printed
in clear, a NIR never is.
"""

from __future__ import annotations

import hashlib
import hmac
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recouvrement.core.contact import EMAIL_PATTERN, MAX_LENGTH, MAX_LOCAL_LENGTH, e164_many
from recouvrement.importers.base import AMOUNT_TOO_LARGE, DATE_OUT_OF_RANGE, Parsed
from recouvrement.importers.tabular import (RejectCollector, dates_out_of_range, parse_dates, read_table,
                                            repeated_cells)
from recouvrement.money import MAX_LINE_CENTS, format_plain, parse_amounts

KIND = "invoices"
REQUIRED = ["invoice_number", "issue_date", "patient_id", "last_name", "first_name", "address",
            "postal_code", "city", "total_amount", "amo_amount"]
GUARANTOR = ["guarantor_last_name", "guarantor_first_name", "guarantor_address", "guarantor_postal_code",
             "guarantor_city", "guarantor_email"]
OPTIONAL = ["due_date", "email", "phone", "nir", "amc_amount", "patient_amount", "amc_payer", "coverage",
            "care_description", "act_codes", "birth_date", "sms_consent", "email_consent", *GUARANTOR]
COVERAGES = ("none", "css", "ame", "at_mp")
DEFAULT_TERM_DAYS = 30
NIR_AS_PATIENT_ID = "un NIR n'est pas accepté comme identifiant patient"   # the value is never echoed
TOLERANCE_CENTS = 1
# Consent cells (case and accents aside); an empty cell, or no such column, leaves the stored consent as it is
# (a new patient without one has none).
CONSENT_WORDS = {"oui": True, "o": True, "1": True, "true": True, "vrai": True, "yes": True, "y": True,
                 "non": False, "n": False, "0": False, "false": False, "faux": False, "no": False}
CONSENT_REFUSED = ("doit valoir oui ou non (ou 1/0, true/false, vrai/faux) ; une cellule vide laisse le consentement "
                   "inchangé")
PHONE_REFUSED = "pas un numéro de téléphone valide (dix chiffres, ou + et l'indicatif du pays)"   # never echoed

PATIENT_COLUMNS = ["patient_id", "last_name", "first_name", "birth_date", "address", "postal_code", "city",
                   "email", "phone", "sms_consent", "email_consent", "coverage", "nir_hash", *GUARANTOR]
INVOICE_COLUMNS = ["invoice_number", "compact_number", "patient_id", "issue_date", "due_date", "total_cents",
                   "amo_cents", "amc_cents", "patient_cents", "amc_payer", "source_line"]
CARE_COLUMNS = ["invoice_number", "care_description", "act_codes"]


def sniff(head: bytes, name: str) -> bool:
    first = head.decode("utf-8", errors="replace").lstrip("\ufeff").splitlines()[:1]
    return bool(first) and "invoice_number" in first[0].lower() and "patient_id" in first[0].lower()


def nir_hash(compact_nir: str, key: bytes) -> str:
    """Keyed hash of a NIR in its compact form (as stdnum.fr.nir.compact gives it)."""
    return hmac.digest(key, compact_nir.encode(), "sha256").hex()     # one call into OpenSSL


def nir_hash_many(compact_nirs: list[str], key: bytes) -> list[str]:
    """nir_hash of each, HMAC-SHA256 worked out with hashlib's own objects (RFC 2104: the key padded to the block,
    the inner hash of (key ^ ipad, NIR), the outer of (key ^ opad, inner)): both pads' hashes are made once and
    copied, and every call is one into OpenSSL, where hmac's copy() and hexdigest() run Python code around theirs
    (410,000 NIRs at 1M invoices: 0.8-1.0 -> 0.5 s CPU)."""
    block = hashlib.sha256().block_size
    padded = (hashlib.sha256(key).digest() if len(key) > block else key).ljust(block, b"\0")
    inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in padded))
    outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in padded))
    hashes = []
    for value in compact_nirs:
        one = inner.copy()
        one.update(value.encode())
        out = outer.copy()
        out.update(one.digest())
        hashes.append(out.hexdigest())
    return hashes


def compact_nirs(nirs: pd.Series) -> pd.Series:
    """Vectorised stdnum.fr.nir.compact: spaces and dots out, upper case."""
    return nirs.astype("string[pyarrow]").str.replace(" ", "", regex=False).str.replace(".", "", regex=False).str.upper()


def compact_invoice_numbers(numbers: pd.Series) -> pd.Series:
    """Vectorised core.references.compact_invoice_number. When every number is ASCII letters and digits once its
    dashes are taken out (a practice software's "F2024-000001"), taking them out is what the pattern does, in a
    fraction of its time (1M numbers: 0.26 -> 0.06 s CPU)."""
    text = numbers.astype("string[pyarrow]")
    undashed = pc.replace_substring(text.array.__arrow_array__(), "-", "")
    if pc.all(pc.or_(pc.ascii_is_alnum(undashed), pc.equal(pc.binary_length(undashed), 0))).as_py() is not False:
        return pd.Series(pc.ascii_upper(undashed), index=numbers.index, name=numbers.name, dtype="string[pyarrow]")
    return text.str.replace(r"[^0-9A-Za-z]+", "", regex=True).str.upper()


# The patients' columns of many distinct cells (a million invoices: some 410,000 phones and NIRs, 54,000 e-mails),
# encoded (Distinct) and checked (_patient_check) in a second thread while the invoices' own columns are checked:
# Arrow hashes and matches them without the GIL (phone 0.7, NIR 1.0, e-mail 0.1 s at 1M, beside the numbers'
# duplicates and compaction, the dates, the amounts and the other patients' columns: 1.5-2 s). Their refusals are
# added in the reading thread, in the same order as when checked there (a row's first reason is kept).
ENCODED_BESIDE = ("phone", "email", "nir")


def read(path: Path, nir_key: bytes = b"", keep_care: bool = False) -> Parsed:
    raw, warnings = read_table(path, REQUIRED, OPTIONAL, unread=frozenset() if keep_care else frozenset(CARE_COLUMNS[1:]))
    with ThreadPoolExecutor(max_workers=1) as beside:
        checked = {column: beside.submit(_patient_check, column, raw[column], nir_key) for column in ENCODED_BESIDE}
        return _checked(path, raw, warnings, checked, nir_key, keep_care)


def _checked(path: Path, raw: pd.DataFrame, warnings: list[str], checked: dict[str, Future],
             nir_key: bytes, keep_care: bool) -> Parsed:
    rejects = RejectCollector(path.name, raw["source_line"])
    out = pd.DataFrame({"invoice_number": raw["invoice_number"], "patient_id": raw["patient_id"],
                        "source_line": raw["source_line"]})
    for column in ("invoice_number", "patient_id", "last_name"):
        rejects.add(raw[column] == "", column, "vide")
    rejects.add(_holds_a_nir(raw["patient_id"]), "patient_id", NIR_AS_PATIENT_ID)
    repeated = repeated_cells(raw["invoice_number"])
    rejects.add(repeated, "invoice_number", "figure deux fois dans ce fichier : " + raw["invoice_number"][repeated])
    out["compact_number"] = compact_invoice_numbers(raw["invoice_number"])
    rejects.add((out["compact_number"] == "") | (out["compact_number"].str.len() > 21), "invoice_number",
                "doit compter de 1 à 21 lettres ou chiffres")
    _dates(raw, out, rejects)
    _amounts(raw, out, rejects)
    patients = _patients(raw, rejects, nir_key, checked)
    keep = ~rejects.bad
    care = raw.loc[keep, CARE_COLUMNS] if keep_care else raw.iloc[0:0][CARE_COLUMNS]
    frame = out.loc[keep, INVOICE_COLUMNS].reset_index(drop=True)
    parsed = Parsed(KIND, frame, sorted(rejects.rejects), warnings, rows_read=len(raw))
    parsed.patients = patients.loc[keep].reset_index(drop=True)   # type: ignore[attr-defined]
    parsed.care = care.reset_index(drop=True)                     # type: ignore[attr-defined]
    return parsed


def _dates(raw: pd.DataFrame, out: pd.DataFrame, rejects: RejectCollector) -> None:
    """Issue and due dates, each distinct cell read once (a million invoices carry a few thousand dates)."""
    issue = Distinct(raw["issue_date"])
    dates, bad = parse_dates(issue.values)
    default = (pd.to_datetime(dates, errors="coerce") + pd.Timedelta(days=DEFAULT_TERM_DAYS)).dt.strftime("%Y-%m-%d")
    out["issue_date"] = issue.spread(dates)
    refused = issue.spread(bad)
    rejects.add(refused, "issue_date", "pas une date (attendu jj/mm/aaaa ou aaaa-mm-jj) : " + raw["issue_date"][refused])
    rejects.add(issue.spread(dates_out_of_range(dates)), "issue_date", DATE_OUT_OF_RANGE)
    due_cells = Distinct(raw["due_date"])
    due_dates, bad_due = parse_dates(due_cells.values)
    due = due_cells.spread(due_dates)
    refused = due_cells.spread(bad_due & (due_cells.values != ""))
    rejects.add(refused, "due_date", "pas une date : " + raw["due_date"][refused])
    rejects.add(due_cells.spread(dates_out_of_range(due_dates)), "due_date", DATE_OUT_OF_RANGE)
    out["due_date"] = due.fillna(issue.spread(default))
    rejects.add(out["due_date"] < out["issue_date"], "due_date", "antérieure à la date d'émission (issue_date)")


def _amounts(raw: pd.DataFrame, out: pd.DataFrame, rejects: RejectCollector) -> None:
    """The four amounts, each distinct cell read once (a million invoices carry some tens of thousands)."""
    for column, target in (("total_amount", "total_cents"), ("amo_amount", "amo_cents"),
                           ("amc_amount", "amc_cents"), ("patient_amount", "patient_cents")):
        cells = Distinct(raw[column])
        values = cells.values
        if column in ("amc_amount", "patient_amount"):
            values = values.mask(values == "", "0")
        read_cents, read_bad = parse_amounts(values)
        cents, bad = cells.spread(read_cents), cells.spread(read_bad)
        rejects.add(bad, column, "pas un montant en euros : " + raw[column][bad].str.slice(0, 40))
        rejects.add(cents < 0, column, "montant négatif")
        rejects.add(cents > MAX_LINE_CENTS, column, AMOUNT_TOO_LARGE)
        out[target] = cents.fillna(0).astype("int64")
    difference = out["total_cents"] - out["amo_cents"] - out["amc_cents"] - out["patient_cents"]
    off = difference.abs() > TOLERANCE_CENTS
    rejects.add(off, "total_amount", "le total diffère de la somme des parts AMO + AMC + patient de "
                + difference[off.fillna(False)].map(_euros).astype("string"))
    # A one-cent rounding gap in the export goes to the patient share, so shares always sum to the total.
    out["patient_cents"] += difference.where(difference.abs() <= TOLERANCE_CENTS, 0)
    out["amc_payer"] = missing_when_empty(raw["amc_payer"])
    rejects.add((out["amc_cents"] > 0) & out["amc_payer"].isna(), "amc_payer",
                "une part AMC demande le nom de la mutuelle (amc_payer)")


def _euros(cents) -> str:
    return format_plain(cents) + " €" if pd.notna(cents) else "?"


def _patients(raw: pd.DataFrame, rejects: RejectCollector, nir_key: bytes,
              checked: dict[str, Future]) -> pd.DataFrame:
    """The patient's columns of each row, checked. A patient's details repeat on each of their invoices (a million
    invoices name some 400,000 patients): each check runs once per distinct cell and is spread back to the rows.
    `checked`: the _patient_check of some columns (ENCODED_BESIDE), under way; the others' are made here."""
    patients = raw[["patient_id", "last_name", "first_name", "address", "postal_code", "city", *GUARANTOR]].copy()
    patients["email"] = missing_when_empty(raw["email"])

    def found(column: str):
        return checked[column].result() if column in checked else _patient_check(column, raw[column], nir_key)

    patients["phone"], refused = found("phone")
    rejects.add(refused, "phone", PHONE_REFUSED)
    for column in ("sms_consent", "email_consent"):
        patients[column] = _consents(Distinct(raw[column]), column, rejects)
    for column in ("email", "guarantor_email"):   # letters are sent there: core.contact's rule, value never echoed
        rejects.add(found(column), column,
                    "pas une adresse e-mail valide (une seule adresse, sans nom, sans liste, sans commentaire)")
    coverages = Distinct(raw["coverage"])
    coverage = coverages.spread(coverages.values.str.lower().str.replace("-", "_").replace({"": "none", "atmp": "at_mp"}))
    unknown = ~coverage.isin(COVERAGES)
    rejects.add(unknown, "coverage", "doit valoir none, css, ame ou at_mp : " + raw["coverage"][unknown])
    patients["coverage"] = coverage
    births = Distinct(raw["birth_date"])
    parsed = parse_dates(births.values)
    birth, bad_birth = births.spread(parsed[0]), births.spread(parsed[1])
    refused = bad_birth & (raw["birth_date"] != "")
    rejects.add(refused, "birth_date", "pas une date : " + raw["birth_date"][refused])
    rejects.add(births.spread(dates_out_of_range(parsed[0])), "birth_date", DATE_OUT_OF_RANGE)
    patients["birth_date"] = birth
    patients["nir_hash"], refused = found("nir")
    rejects.add(refused, "nir", "pas un NIR valide (format ou clé de contrôle)")   # the value is never echoed
    for column in GUARANTOR:
        patients[column] = missing_when_empty(patients[column])
    return patients[PATIENT_COLUMNS]


def _patient_check(column: str, cells: pd.Series, nir_key: bytes):
    """What the check of a patient's phones, e-mails or NIRs gives for each row, its distinct cells checked once:
    (E.164 phones, refused) for phones (_phones), (hashes, refused) for NIRs (_nir_hashes), the refused rows for
    e-mails. Runs in read's second thread (ENCODED_BESIDE): it adds no refusal itself."""
    distinct = Distinct(cells)
    if column == "phone":
        return _phones(distinct)
    if column == "nir":
        return _nir_hashes(distinct, nir_key)
    return distinct.spread(~valid_emails(distinct.values))


def missing_when_empty(cells: pd.Series) -> pd.Series:
    """cells.where(cells != "", None) for Arrow text as read_table gives it (one chunk, nothing missing): the same
    cells, each empty one missing, the text's buffers kept as they are and only a validity bitmap made, where
    where() copied every cell (the 1M invoices file's e-mails, AMC payers and guarantors: 0.3 s). Any other
    column goes through where()."""
    chunks = cells.array.__arrow_array__().chunks if cells.dtype == "string[pyarrow]" else []
    if len(chunks) != 1 or chunks[0].type != pa.large_string() or chunks[0].null_count or chunks[0].offset:
        return cells.where(cells != "", None)
    _, offsets, data = chunks[0].buffers()
    bounds = np.frombuffer(offsets, dtype=np.int64, count=len(cells) + 1)
    filled = bounds[1:] > bounds[:-1]
    missing = len(filled) - int(np.count_nonzero(filled))
    validity = pa.py_buffer(np.packbits(filled, bitorder="little")) if missing else None
    made = pa.LargeStringArray.from_buffers(len(cells), offsets, data, validity, missing)
    return pd.Series(made, index=cells.index, name=cells.name, dtype=cells.dtype)


class Distinct:
    """A column's distinct cells (`values`, a Series of text) and, for each row, the position of its cell among
    them: a check or a conversion done on the distinct cells is `spread` back to the rows, equal to the same
    done row by row (one pass of Arrow's hashing; the rows' text is never copied)."""

    def __init__(self, cells: pd.Series) -> None:
        text = pa.chunked_array(cells.astype("string[pyarrow]").array.__arrow_array__()).combine_chunks()
        encoded = pc.dictionary_encode(text)
        self.index = cells.index
        self.codes = encoded.indices.to_numpy(zero_copy_only=False)
        self.values = pd.Series(encoded.dictionary, dtype="string[pyarrow]")

    def spread(self, found: pd.Series) -> pd.Series:
        """`found` (a Series aligned on `values`: what a check or a conversion gave for each distinct cell) for
        each row."""
        return pd.Series(found.array.take(self.codes), index=self.index, dtype=found.dtype)


def _phones(cells: Distinct) -> tuple[pd.Series, pd.Series]:
    """(Each phone in E.164 (core.contact.e164: French unless it starts with +), missing when empty; the rows whose
    number is not valid, to refuse, their value never echoed). All at once (core.contact.e164_many). Arrow's text
    (as _nir_hashes gives), not Python objects: spread to a million rows, each row's object was touched again by
    every pass over the column (its missing cells, the newest per patient: db.loads.newest_details)."""
    given = cells.values != ""
    present = cells.spread(given)
    phones = cells.spread(e164_many(cells.values.where(given)).astype("string[pyarrow]"))
    return phones, present & phones.isna()


def _consents(cells: Distinct, column: str, rejects: RejectCollector) -> pd.Series:
    """True / False / None (empty: unchanged) from oui/non, 1/0, true/false …; anything else refuses the row."""
    words = cells.values.astype(str).str.strip().str.lower()
    found = words.map(CONSENT_WORDS)
    rejects.add(cells.spread((words != "") & found.isna()), column, CONSENT_REFUSED)
    return cells.spread(found.astype(object).where(found.notna(), None))


def valid_emails(cells: pd.Series) -> pd.Series:
    """Vectorised core.contact.is_valid_email, an empty cell counting as valid (no address)."""
    text = cells.astype("string[pyarrow]").fillna("")
    ok = (text.str.fullmatch(EMAIL_PATTERN).fillna(False).astype(bool) & (text.str.len() <= MAX_LENGTH)
          & (text.str.find("@") <= MAX_LOCAL_LENGTH))
    return ok | (text == "")


def nir_valid(nirs: pd.Series) -> pd.Series:
    """Vectorised stdnum.fr.nir.is_valid: format (Corsica 2A/2B included) and check key.

    A test holds it equal to stdnum's own check on random and real-shaped numbers.
    """
    compact = compact_nirs(nirs)
    shaped = compact.str.match(r"^\d{5}(?:\d{2}|2A|2B)\d{8}$").fillna(False).astype(bool)
    body = compact.str.slice(0, 13).str.replace("2A", "19", regex=False).str.replace("2B", "18", regex=False)
    numbers = _integers(body.where(shaped, "0"))
    keys = _integers(compact.str.slice(13, 15).where(shaped, "-1"))
    return shaped & (97 - numbers % 97 == keys)


def _holds_a_nir(ids: pd.Series) -> pd.Series:
    """Mask of the ids that are a valid NIR once spaces, dashes, dots or any other punctuation are removed.

    Only ids of 15 characters or more can be one: the check runs on those alone (real ids are shorter).
    """
    long = ids.str.len() >= 15
    found = pd.Series(False, index=ids.index)
    if long.any():
        found[long] = nir_valid(ids[long].str.replace(r"[^0-9A-Za-z]+", "", regex=True)).to_numpy(dtype=bool)
    return found


def _integers(digits: pd.Series) -> pd.Series:
    """Strings of digits (sign allowed) as int64, by Arrow's cast: pd.to_numeric goes value by value."""
    array = pc.cast(pa.array(digits.astype("string[pyarrow]").array), pa.int64())
    return pd.Series(array.to_numpy(), index=digits.index)


def _nir_hashes(nirs: Distinct, nir_key: bytes) -> tuple[pd.Series, pd.Series]:
    """(Each row's NIR's keyed hash, missing when there is none or it is not valid; the rows whose NIR is not
    valid, to refuse)."""
    cells = nirs.values
    present = cells != ""
    valid = nir_valid(cells)
    # Each distinct cell is hashed once (a patient has many invoices); no valid NIR, no hash (missing). Spread as
    # Arrow's text, not as objects (see _phones): the 1M file's newest_details 1.37 -> 0.92 s CPU with both.
    hashes = np.full(len(cells), None, dtype=object)
    hashed = (present & valid).to_numpy(dtype=bool)
    hashes[hashed] = nir_hash_many(compact_nirs(cells[hashed]).tolist(), nir_key)
    return nirs.spread(pd.Series(hashes, dtype="string[pyarrow]")), nirs.spread(present & ~valid)
