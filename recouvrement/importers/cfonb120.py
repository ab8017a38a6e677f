"""Read CFONB 120 bank statements (relevé de compte 120 caractères): each credit movement becomes a payment.

A file is a run of 120-character records: 01 old balance, 04 movement, 05 complement of the
movement before it, 07 new balance; several accounts and days may follow one another.
Positions below (0-based slices) follow the CFONB "Relevé de compte sur support informatique"
(July 2004) and its August 2007 update for SEPA transfers, as read by two public parsers we
checked them against: pennylane-hq/cfonb (lib/cfonb/line_parser/base.rb, operation.rb,
operation_details.rb; qualifiers table in its README) and OCA l10n-france
account_statement_import_fr_cfonb (amount overpunch, blank decimals meaning 2, files with
no line breaks, LCL files in Latin-1).

05 qualifiers used: NPY name of the payer (debtor), NPO ultimate debtor; LIB free label,
LCC/LC2 unstructured label lines, LCS structured label, RCN client reference + purpose,
REF bank operation reference, blank qualifier (older banks' free text) all go to `reference`.
Other qualifiers (NBE, NBU, IPY, IBE, MMO, FEE, ...) are kept only in the payment id's hash.

Decisions where the format leaves a choice:
  - payer_name: the NPY complement, else the name in the label ("VIR SEPA DUPONT JEAN",
    "VIR DE M DUPONT", "/DE DUPONT JEAN /MOTIF ..."), else the NPO complement.
  - source_line: the physical line of the 04 record; in a file with no line break at all it
    is the record's position (what the line number would be had the bank broken the lines).
  - Text is UTF-8 when it decodes as such, else Windows-1252 (some banks put accents in labels).
  - rows_read counts credit movements (payments + rejects) and refused records, not debits.
  - A movement is its 04 record and the 05 complements that follow it. A refused 04 takes its
    05 lines with it (they are dropped, never added to the movement before). A refused line
    that may be one of a credit's complements (a broken 05, or a line whose code is unknown)
    refuses that credit too, with its own line: stored without it, the credit would get
    another identity than the corrected file gives it, and be stored twice.
  - A payment's id is a hash of the movement's own content (account, booking date, amount,
    label, complements) and of its rank among identical movements of the file, never of its
    line number or of its neighbours: re-importing a corrected file stores nothing twice.
  - Amounts above 10 000 000,00 € are refused (a 6-digit DDMMYY date is always within 1900-2100).
"""

from __future__ import annotations

KIND = "payments"

import codecs
import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

from recouvrement.errors import RecouvrementError
from recouvrement.importers.base import AMOUNT_TOO_LARGE, PAYMENT_COLUMNS, Parsed, Reject, empty_payments
from recouvrement.importers.insurers import Insurers, load_insurers
from recouvrement.money import MAX_LINE_CENTS

WIDTH = 120
_BANK, _BRANCH, _ACCOUNT = slice(2, 7), slice(11, 16), slice(21, 32)
_CURRENCY, _DECIMALS = slice(16, 19), 19
_DATE, _LABEL, _AMOUNT, _REFERENCE = slice(34, 40), slice(48, 79), slice(90, 104), slice(104, 120)
_QUALIFIER, _COMPLEMENT = slice(45, 48), slice(48, 118)

# Last character of an amount: sign and last digit (EBCDIC overpunch).
_OVERPUNCH = {c: (1, d) for d, c in enumerate("{ABCDEFGHI")} | {c: (-1, d) for d, c in enumerate("}JKLMNOPQR")}
_REFERENCE_QUALIFIERS = {"", "LIB", "LCC", "LC2", "LCS", "RCN", "REF"}
_RECORD_START = re.compile(r"^0[1457]\d{5}")
_BREAKS = re.compile(r"\r\n|\n|\r")
_TRANSFER = re.compile(r"^VIR(?:EMENT)?(?:\s+SEPA)?(?:\s+INST(?:ANTANE)?)?(?:\s+RECU)?(?:\s+(?:DE|DU|PAR))?"
                       r"(?:\s+/DE)?\s+(?P<rest>.+)$")
_SLASH_NAME = re.compile(r"/DE\s+(?P<name>[^/]+?)\s*(?:/|$)")


def sniff(head: bytes, name: str) -> bool:
    """True when the first record looks like a CFONB 120 record, whatever the file is called."""
    text = _decode(head).lstrip("\ufeff\r\n")
    first = _BREAKS.split(text, maxsplit=1)[0][:WIDTH]
    return bool(_RECORD_START.match(first)) and first[_DATE].isdigit() and \
        (first[_CURRENCY].isalpha() or not first[_CURRENCY].strip())


def read(path: Path, insurers: Insurers | None = None) -> Parsed:
    """Payments (credit movements) and rejects of one CFONB 120 file; RecouvrementError if not one."""
    path = Path(path)
    insurers = insurers if insurers is not None else load_insurers()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RecouvrementError(f"lecture impossible : {exc.strerror}", file=path.name) from None
    reader = _Reader(path.name)
    for line, record in _records(_decode(data).removeprefix("\ufeff"), path.name):
        reader.add(line, record)
    reader.flush()
    frame = _frame(reader.rows, insurers) if reader.rows else empty_payments()
    return Parsed(kind="payments", frame=frame, rejects=sorted(reader.rejects),
                  warnings=reader.summary(), rows_read=len(reader.rows) + len(reader.rejects))


def _decode(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


# --- splitting the file into records --------------------------------------------------------

def _records(text: str, file: str) -> list[tuple[int, str]]:
    """(line, record) pairs; records shorter than 120 (trailing spaces stripped) are padded."""
    lines = _BREAKS.split(text.rstrip("\x1a"))  # \x1a: DOS end-of-file mark some banks still add
    if len([ln for ln in lines if ln.strip()]) == 1 and len(lines[0].rstrip()) > WIDTH:
        single = lines[0].rstrip()
        records = [(n, single[i:i + WIDTH]) for n, i in enumerate(range(0, len(single), WIDTH), start=1)]
    else:
        records = [(n, piece) for n, line in enumerate(lines, start=1) if line.strip()
                   for piece in _pieces(line)]
    if not records:
        raise RecouvrementError("le fichier est vide", file=file)
    first_line, first = records[0]
    if not _RECORD_START.match(first):
        raise RecouvrementError(f"pas un relevé CFONB 120 : le premier enregistrement commence par {first[:7]!r}",
                                file=file, line=first_line)
    return [(n, piece.ljust(WIDTH)) for n, piece in records]


def _pieces(line: str) -> list[str]:
    """One record per line, or several glued records when the line is an exact multiple of 120."""
    if len(line.rstrip()) <= WIDTH:
        return [line.rstrip()]
    if len(line) % WIDTH == 0:
        return [line[i:i + WIDTH] for i in range(0, len(line), WIDTH)]
    return [line]  # refused later for its length


# --- records → movements --------------------------------------------------------------------

@dataclass
class _Movement:
    line: int
    account: str
    date: str
    cents: int
    label: str
    reference: str
    complements: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _Reader:
    file: str
    rows: list[dict] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    ignored: Counter = field(default_factory=Counter)
    current: _Movement | None = None
    state: str = "none"   # none | credit | skipped | refused: what a following 05 complements

    def add(self, line: int, record: str) -> None:
        code = record[:2]
        if len(record) != WIDTH:
            self._refuse_record(line, code, "record",
                                f"la ligne fait {len(record)} caractères : un enregistrement CFONB 120 en a 120")
        elif code in ("01", "07"):
            self.flush()
        elif code == "04":
            self.flush()
            self._movement(line, record)
        elif code == "05":
            self._complement(line, record)
        else:
            self._refuse_record(line, code, "record code",
                                f"code d'enregistrement {code!r} inconnu (attendu 01, 04, 05 ou 07)")

    def _reject(self, line: int, field_name: str, reason: str) -> None:
        self.rejects.append(Reject(self.file, line, field_name, reason))

    def _refuse_record(self, line: int, code: str, field_name: str, reason: str) -> None:
        """A line that cannot be read: its movement, and the 05 lines after it, go with it."""
        if code in ("01", "04", "07"):
            self.flush()              # what came before is whole: this line starts something new
        elif self.state == "credit" and self.current is not None:
            self._reject(self.current.line, "record",
                         f"mouvement refusé : la ligne {line} qui le suit est illisible (peut-être un de ses "
                         "compléments 05)")
            self.current = None
        self._reject(line, field_name, reason)
        self.state = "none" if code in ("01", "07") else "refused"

    def _movement(self, line: int, record: str) -> None:
        self.state = "refused"        # until the record is read whole: a refused 04 takes its 05 lines
        decimals = record[_DECIMALS]
        if not (decimals == " " or decimals in "0123"):
            return self._reject(line, "decimals", f"nombre de décimales {decimals!r} hors de 0 à 3")
        cents = _amount_cents(record[_AMOUNT], 2 if decimals == " " else int(decimals))
        if cents is None:
            return self._reject(line, "amount", f"pas un montant CFONB en centimes : {record[_AMOUNT].strip()!r}")
        if cents <= 0:
            self.state = "skipped"
            self.ignored["mouvement(s) de débit" if cents else "mouvement(s) de montant nul"] += 1
            return None
        if cents > MAX_LINE_CENTS:
            return self._reject(line, "amount", AMOUNT_TOO_LARGE)
        currency = record[_CURRENCY].strip() or "EUR"
        if currency != "EUR":
            return self._reject(line, "currency", f"devise {currency} refusée : les montants sont en euros")
        booked = _date(record[_DATE])
        if booked is None:
            return self._reject(line, "date", f"pas une date JJMMAA : {record[_DATE]!r}")
        account = "-".join((record[_BANK], record[_BRANCH], record[_ACCOUNT].strip()))
        self.current = _Movement(line, account, booked, cents, " ".join(record[_LABEL].split()),
                                 " ".join(record[_REFERENCE].split()))
        self.state = "credit"

    def _complement(self, line: int, record: str) -> None:
        if self.state == "none":
            return self._reject(line, "record code", "complément (05) sans mouvement (04) avant lui")
        if self.state == "credit" and self.current is not None:
            text = " ".join(record[_COMPLEMENT].split())
            if text:
                self.current.complements.append((record[_QUALIFIER].strip(), text))
        return None

    def flush(self) -> None:
        if self.current is not None:
            self.rows.append(_row(self.current))
        self.current, self.state = None, "none"

    def summary(self) -> list[str]:
        return [f"{self.file}: {n} {what} ignoré(s) (seuls les crédits sont des paiements)"
                for what, n in sorted(self.ignored.items())]


def _amount_cents(text: str, decimals: int) -> int | None:
    digits, last = text[:-1].lstrip(), text[-1:]
    if last not in _OVERPUNCH or not (digits.isascii() and digits.isdigit()):
        return None
    sign, unit = _OVERPUNCH[last]
    value = int(digits) * 10 + unit
    if decimals <= 2:
        return sign * value * 10 ** (2 - decimals)
    factor = 10 ** (decimals - 2)
    return sign * (value // factor) if value % factor == 0 else None


def _date(text: str) -> str | None:
    try:
        return datetime.strptime(text, "%d%m%y").date().isoformat()
    except ValueError:
        return None


def _row(movement: _Movement) -> dict:
    by_qualifier: dict[str, list[str]] = {}
    for qualifier, text in movement.complements:
        by_qualifier.setdefault(qualifier, []).append(text)
    free_texts = [t for q, t in movement.complements if q in _REFERENCE_QUALIFIERS]
    label_name, label_rest = _split_label(movement.label, free_texts)
    payer = " ".join(by_qualifier.get("NPY", [])) or label_name or " ".join(by_qualifier.get("NPO", []))
    reference = " ".join(t for t in [label_rest, *free_texts, movement.reference] if t)
    return {
        # The movement's own content (the reference zone only when filled, so ids given before it counted
        # stay the same); the rank among identical movements is added in _frame.
        "_key": (movement.account, movement.date, str(movement.cents), movement.label,
                 *(f"{q}:{t}" for q, t in movement.complements),
                 *([f"zone-reference={movement.reference}"] if movement.reference else [])),
        "payment_date": movement.date,
        "payer_name": payer,
        "_ultimate": " ".join(by_qualifier.get("NPO", [])),
        "amount_cents": movement.cents,
        "reference": reference,
        "source_line": movement.line,
    }


def _split_label(label: str, free_texts: list[str]) -> tuple[str, str]:
    """(payer name, what is left of the label for the reference).

    A transfer label is "VIR <name>": the whole label is then the name, and nothing of it is
    left for the reference. A "/DE name /" segment names the payer more fully; the free texts
    come first because the label (31 characters) often cuts the name short.
    """
    transfer = _TRANSFER.match(label)
    slashed = _SLASH_NAME.search(" ".join(free_texts)) or _SLASH_NAME.search(label)
    if slashed:
        return slashed.group("name"), "" if transfer else label
    return (transfer.group("rest"), "") if transfer else ("", label)


def _frame(rows: list[dict], insurers: Insurers) -> pd.DataFrame:
    seen: Counter = Counter()
    for row in rows:
        seen[row["_key"]] += 1
        digest = hashlib.sha256("|".join([*row["_key"], str(seen[row["_key"]])]).encode("utf-8"))
        row["payment_id"] = "cfonb-" + digest.hexdigest()[:16]
    raw = pd.DataFrame(rows)
    by_payer = insurers.payer_types(raw["payer_name"])
    raw["payer_type"] = by_payer.where(by_payer != "patient", insurers.payer_types(raw["_ultimate"]))
    raw["invoice_number"] = pd.Series([pd.NA] * len(raw), dtype="object")
    raw["status"] = "paid"
    raw["reject_reason"] = pd.Series([pd.NA] * len(raw), dtype="object")
    return raw[PAYMENT_COLUMNS].astype({"amount_cents": "int64", "source_line": "int64"})
