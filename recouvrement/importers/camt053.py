"""Read ISO 20022 camt.053 bank statements (any version): each booked credit becomes a payment.

Versions 001.02 to 001.08 and later all occur in France; they differ in ways this reader
absorbs by reading tags without namespaces and trying each known place of a value:
  - status: `Ntry/Sts` holds "BOOK" up to 001.07, `Ntry/Sts/Cd` from 001.08;
  - party names: `RltdPties/Dbtr/Nm` up to 001.07, `RltdPties/Dbtr/Pty/Nm` from 001.08;
  - transaction amount: `TxDtls/Amt` (001.03+) or `TxDtls/AmtDtls/TxAmt/Amt` (all versions).
We relied on the ISO 20022 message definitions (BankToCustomerStatementV02..V08) and on how
public parsers read them: OCA bank-statement-import camt (account_statement_import_camt,
which also reads names at both Nm and Pty/Nm and amounts at Amt then AmtDtls/TxAmt/Amt).

Decisions where the standard leaves a choice:
  - payer_name is the debtor (`Dbtr`), the account holder who sent the money; the ultimate
    debtor (`UltmtDbtr`) is used only when the debtor name is empty. payer_type looks at the
    debtor first, then the ultimate debtor (a tiers payant operator paying for a mutuelle
    is amc either way).
  - The hash fallback id counts identical transactions (same account, date, amount, payer,
    reference) instead of using the absolute position, so the same credit read from two
    overlapping statements gets the same id, while two identical transfers stay two.
  - A credit that reverses a debit (`RvslInd` true) is a returned payment of ours, not a
    payment from a payer: ignored with a warning, like debits and pending entries.
  - Amounts may carry trailing zeros beyond cents ("12.500"); a non-zero third decimal is refused.
  - rows_read counts the booked credit transactions (payments + rejects), not ignored entries.
  - source_line is the XML line where the `<Ntry>` element starts (all 1 in a single-line file).
  - An entry without a status (some banks omit `Sts` in their end-of-day statements, where
    everything is booked) is read as booked, with a warning; any other status than BOOK is ignored.
  - A transaction's own amount in another currency (`TxDtls/Amt` holding the instructed amount
    of a foreign transfer) is read in euros from the transaction's `AmtDtls` (`TxAmt`, then the
    countervalue `CntrValAmt`) or, when it is the entry's only transaction, from the entry's
    euro amount, which is what the account was credited with; otherwise it is refused.

Limits (a statement is data from outside: an XML bomb must fail fast, in little memory):
  - a file larger than MAX_FILE_BYTES (100 Mo), or nesting deeper than MAX_DEPTH (40 levels;
    real statements use about 15), or an entry of more than MAX_ENTRY_ELEMENTS (500 000)
    elements, or one tag or text of more than MAX_RUN_BYTES (1 Mo: a tag with millions of
    attributes), is refused whole with a clear message;
  - a DOCTYPE is refused: no DTD, hence no entity expansion (billion laughs), no external
    entity (XXE) and no external DTD is ever read.
"""

from __future__ import annotations

KIND = "payments"

import codecs
import hashlib
import os
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from xml.parsers import expat

import pandas as pd

from recouvrement.errors import RecouvrementError
from recouvrement.importers.base import (AMOUNT_TOO_LARGE, DATE_OUT_OF_RANGE, PAYMENT_COLUMNS, OutgoingTransfer,
                                         Parsed, Reject, date_in_range, empty_payments)
from recouvrement.importers.insurers import Insurers, load_insurers
from recouvrement.money import MAX_LINE_CENTS

MAX_FILE_BYTES = 100 * 1024 * 1024
MAX_DEPTH = 40
MAX_ENTRY_ELEMENTS = 500_000
MAX_RUN_BYTES = 1024 * 1024          # longest tag or text between two ">" (about, give or take one read)
_CHUNK = 1 << 16
_AMOUNT = re.compile(r"^\s*(\d{1,15})(?:\.(\d{1,2})0*)?\s*$")


def sniff(head: bytes, name: str) -> bool:
    """True when the first bytes are an XML camt.053 statement, whatever its version or file name."""
    text = _decode_head(head).lstrip("\ufeff \t\r\n")
    return text.startswith("<") and ("camt.053" in text or "BkToCstmrStmt" in text)


def read(path: Path, insurers: Insurers | None = None) -> Parsed:
    """Payments (booked credits) and rejects of one camt.053 file; RecouvrementError if not one."""
    path = Path(path)
    insurers = insurers if insurers is not None else load_insurers()
    collected = _Collected(path.name)
    for entry in _entries(path):
        collected.add_entry(entry)
    frame = _frame(collected.rows, insurers) if collected.rows else empty_payments()
    return Parsed(kind="payments", frame=frame, rejects=sorted(collected.rejects),
                  warnings=collected.summary(), rows_read=len(collected.rows) + len(collected.rejects),
                  outgoing=collected.outgoing)


def _decode_head(head: bytes) -> str:
    for bom, encoding in ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if head.startswith(bom):
            return head[len(bom):].decode(encoding, errors="ignore")
    return head.decode("utf-8", errors="ignore")


# --- streaming: expat gives line numbers, which xml.etree's iterparse does not -------------

@dataclass
class _Entry:
    element: ET.Element      # the <Ntry> subtree, tags without namespace
    line: int                # XML line of <Ntry>
    account: str             # IBAN (or other id) of the statement's account


def _local(name: str) -> str:
    return name.rpartition(":")[2]


class _Scanner:
    """Builds one small tree per <Ntry> (and per statement <Acct>) and drops it once read."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.parser = expat.ParserCreate()
        self.parser.buffer_text = True
        self.parser.StartElementHandler = self._start
        self.parser.EndElementHandler = self._end
        self.parser.CharacterDataHandler = self._data
        self.parser.StartDoctypeDeclHandler = self._doctype
        self.path: list[str] = []
        self.builder: ET.TreeBuilder | None = None
        self.builder_depth = 0
        self.builder_elements = 0
        self.entry_line = 0
        self.account = ""
        self.is_statement = False
        self.ready: list[_Entry] = []

    def _doctype(self, *args: object) -> None:
        # Bank statements never carry a DTD; refusing it shuts out entity-expansion tricks.
        raise RecouvrementError("un DOCTYPE n'est pas admis dans un fichier camt.053", file=self.file,
                                line=self.parser.CurrentLineNumber)

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        tag = _local(name)
        self.path.append(tag)
        if len(self.path) > MAX_DEPTH:
            raise RecouvrementError(f"éléments XML imbriqués sur plus de {MAX_DEPTH} niveaux : ce n'est pas un "
                                    "relevé camt.053 (refusé pour protéger la mémoire)", file=self.file,
                                    line=self.parser.CurrentLineNumber)
        if self.builder is not None:
            self.builder_elements += 1
            if self.builder_elements > MAX_ENTRY_ELEMENTS:
                raise RecouvrementError(f"une écriture (Ntry) de plus de {MAX_ENTRY_ELEMENTS} éléments XML : ce "
                                        "n'est pas un relevé camt.053 (refusé pour protéger la mémoire)",
                                        file=self.file, line=self.entry_line)
            self.builder.start(tag, {_local(k): v for k, v in attrs.items() if not k.startswith("xmlns")})
            return
        if tag == "BkToCstmrStmt":
            self.is_statement = True
        elif tag == "Stmt":
            self.account = ""
        elif tag == "Ntry" or (tag == "Acct" and self.path[-2:-1] == ["Stmt"]):
            if tag == "Ntry" and not self.is_statement:
                raise RecouvrementError("pas un relevé camt.053 (aucun BkToCstmrStmt avant les écritures)",
                                        file=self.file, line=self.parser.CurrentLineNumber)
            self.builder, self.builder_depth, self.builder_elements = ET.TreeBuilder(), len(self.path), 1
            self.entry_line = self.parser.CurrentLineNumber
            self.builder.start(tag, {})

    def _end(self, name: str) -> None:
        if self.builder is not None:
            self.builder.end(_local(name))
            if len(self.path) == self.builder_depth:
                self._close(self.builder.close())
        self.path.pop()

    def _close(self, element: ET.Element) -> None:
        self.builder = None
        if element.tag == "Acct":
            self.account = _text(element, "Id/IBAN") or _text(element, "Id/Othr/Id")
        else:
            self.ready.append(_Entry(element, self.entry_line, self.account))

    def _data(self, text: str) -> None:
        if self.builder is not None:
            self.builder.data(text)

    def feed(self, chunk: bytes, final: bool = False) -> list[_Entry]:
        try:
            self.parser.Parse(chunk, final)
        except expat.ExpatError as exc:
            raise RecouvrementError(f"fichier XML mal formé : {expat.ErrorString(exc.code)}",
                                    file=self.file, line=exc.lineno) from None
        ready, self.ready = self.ready, []
        return ready


def _entries(path: Path) -> Iterator[_Entry]:
    scanner = _Scanner(path.name)
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise RecouvrementError(f"lecture impossible : {exc.strerror}", file=path.name) from None
    with handle:
        size = os.fstat(handle.fileno()).st_size
        if size > MAX_FILE_BYTES:
            raise RecouvrementError(f"fichier trop volumineux pour un relevé camt.053 ({size / 2**20:.0f} Mo ; "
                                    f"maximum {MAX_FILE_BYTES // 2**20} Mo) : demandez à la banque des relevés "
                                    "quotidiens", file=path.name)
        without_markup = 0                 # bytes read since the last ">": one tag's or one text's length
        while chunk := handle.read(_CHUNK):
            without_markup = without_markup + len(chunk) if b">" not in chunk else len(chunk) - chunk.rfind(b">")
            if without_markup > MAX_RUN_BYTES:
                raise RecouvrementError(f"une balise ou un texte XML de plus de {MAX_RUN_BYTES // 2**20} Mo : ce "
                                        "n'est pas un relevé camt.053 (refusé pour protéger la mémoire)",
                                        file=path.name, line=scanner.parser.CurrentLineNumber)
            yield from scanner.feed(chunk)
    yield from scanner.feed(b"", final=True)
    if not scanner.is_statement:
        raise RecouvrementError("pas un relevé camt.053 (aucun élément BkToCstmrStmt)", file=path.name)


# --- one entry → payments, rejects, or nothing ---------------------------------------------

def _text(element: ET.Element | None, path: str) -> str:
    found = element.find(path) if element is not None else None
    return " ".join((found.text or "").split()) if found is not None else ""


def _first(element: ET.Element | None, *paths: str) -> str:
    return next((value for p in paths if (value := _text(element, p))), "")


def _all_texts(element: ET.Element, path: str) -> str:
    return " ".join(t for t in (" ".join((e.text or "").split()) for e in element.findall(path)) if t)


def _cents(text: str | None) -> int | None:
    match = _AMOUNT.match(text or "")
    if not match:
        return None
    cents = int(match.group(1)) * 100 + int((match.group(2) or "0").ljust(2, "0"))
    return cents or None


def _booking_date(entry: ET.Element) -> str | None:
    for path in ("BookgDt/Dt", "BookgDt/DtTm", "ValDt/Dt", "ValDt/DtTm"):
        value = _text(entry, path)[:10]
        if value:
            try:
                return date.fromisoformat(value).isoformat()
            except ValueError:
                return None
    return None


@dataclass
class _Collected:
    file: str
    rows: list[dict] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    ignored: Counter = field(default_factory=Counter)
    without_status: int = 0
    outgoing: list[OutgoingTransfer] = field(default_factory=list)

    def add_entry(self, entry: _Entry) -> None:
        element = entry.element
        status = _text(element, "Sts/Cd") or _text(element, "Sts")
        if status not in ("BOOK", ""):
            self.ignored[f"écriture(s) au statut {status}"] += 1
        elif _text(element, "CdtDbtInd") != "CRDT":
            self.ignored["écriture(s) de débit"] += 1
            if _text(element, "RvslInd").lower() not in ("true", "1"):
                self._add_outgoing(entry)
        elif _text(element, "RvslInd").lower() in ("true", "1"):
            self.ignored["écriture(s) d'annulation (RvslInd)"] += 1
        else:
            self.without_status += not status
            transactions: list[ET.Element | None] = [*element.findall("NtryDtls/TxDtls")] or [None]
            for position, tx in enumerate(transactions, start=1):
                self._add_transaction(entry, tx, position, len(transactions))

    def _add_outgoing(self, entry: _Entry) -> None:
        """A booked debit's transfers that carry an end-to-end id: a refund we sent may be among them."""
        element = entry.element
        booked = _booking_date(element)
        transactions: list[ET.Element | None] = [*element.findall("NtryDtls/TxDtls")] or [None]
        for tx in transactions:
            end_to_end = _text(tx, "Refs/EndToEndId")
            amount = _amount_element(element, tx, len(transactions))
            cents = _cents(amount.text) if amount is not None and amount.get("Ccy") == "EUR" else None
            if not end_to_end or end_to_end.upper() == "NOTPROVIDED" or cents is None or booked is None:
                continue
            reference = _text(tx, "Refs/AcctSvcrRef") or _text(element, "AcctSvcrRef") or _text(element, "NtryRef")
            self.outgoing.append(OutgoingTransfer(end_to_end, booked, cents, reference))

    def _reject(self, entry: _Entry, field_name: str, reason: str) -> None:
        self.rejects.append(Reject(self.file, entry.line, field_name, reason))

    def _add_transaction(self, entry: _Entry, tx: ET.Element | None, position: int, count: int) -> None:
        element = entry.element
        if tx is not None and _text(tx, "CdtDbtInd") == "DBIT":
            self.ignored["transaction(s) de débit"] += 1
            return
        amount = _amount_element(element, tx, count)
        if amount is None:
            return self._reject(entry, "Amt", "aucun montant pour cette transaction")
        currency = amount.get("Ccy", "")
        if currency != "EUR":
            return self._reject(entry, "Amt@Ccy", f"devise {currency or 'absente'} refusée : les montants sont en euros")
        cents = _cents(amount.text)
        if cents is None:
            return self._reject(entry, "Amt", f"pas un montant positif d'au plus 2 décimales : {amount.text!r}")
        if cents > MAX_LINE_CENTS:
            return self._reject(entry, "Amt", AMOUNT_TOO_LARGE)
        booked = _booking_date(element)
        if booked is None:
            return self._reject(entry, "BookgDt", "aucune date de comptabilisation ou de valeur valide")
        if not date_in_range(booked):
            return self._reject(entry, "BookgDt", DATE_OUT_OF_RANGE)
        self.rows.append(_row(entry, tx, position, count, cents, booked))

    def summary(self) -> list[str]:
        unsure = [f"{self.file}: {self.without_status} écriture(s) sans statut (Sts) lue(s) comme "
                  "comptabilisée(s) (BOOK) : vérifiez le relevé si la banque en envoie aussi en attente"
                  ] if self.without_status else []
        return unsure + [f"{self.file}: {n} {what} ignorée(s) (seuls les crédits comptabilisés sont des paiements)"
                         for what, n in sorted(self.ignored.items())]


def _amount_element(entry: ET.Element, tx: ET.Element | None, count: int) -> ET.Element | None:
    """The amount the account was credited with for this transaction, in euros when the bank says it.

    The transaction's own amount may be the instructed one, in the payer's currency; its euro value is
    then in its AmtDtls or, for an entry's only transaction, the entry amount itself.
    """
    own = None
    if tx is not None:
        own = next((found for path in ("Amt", "AmtDtls/TxAmt/Amt") if (found := tx.find(path)) is not None), None)
        if own is not None and own.get("Ccy") == "EUR":
            return own
        for path in ("AmtDtls/TxAmt/Amt", "AmtDtls/CntrValAmt/Amt"):
            if (found := tx.find(path)) is not None and found.get("Ccy") == "EUR":
                return found
    booked = entry.find("Amt")
    if count <= 1 and booked is not None and (own is None or booked.get("Ccy") == "EUR"):
        return booked
    return own


def _row(entry: _Entry, tx: ET.Element | None, position: int, count: int, cents: int, booked: str) -> dict:
    element = entry.element
    debtor = _first(tx, "RltdPties/Dbtr/Nm", "RltdPties/Dbtr/Pty/Nm")
    ultimate = _first(tx, "RltdPties/UltmtDbtr/Nm", "RltdPties/UltmtDbtr/Pty/Nm")
    return {
        "payment_id": _given_id(element, tx, position, count),
        "payment_date": booked,
        "payer_name": debtor or ultimate,
        "_ultimate": ultimate,
        "amount_cents": cents,
        "reference": _reference(element, tx),
        "source_line": entry.line,
        "_account": entry.account,
    }


def _reference(entry: ET.Element, tx: ET.Element | None) -> str:
    """Structured creditor reference (RF...), else the free-text remittance lines, else free info."""
    if tx is not None:
        for path in ("RmtInf/Strd/CdtrRefInf/Ref", "RmtInf/Ustrd", "AddtlTxInf"):
            if text := _all_texts(tx, path):
                return text
    return _text(entry, "AddtlNtryInf")


def _given_id(entry: ET.Element, tx: ET.Element | None, position: int, count: int) -> str:
    """The bank's reference for the transaction; "" when the bank gave none (hashed later)."""
    entry_ref = _text(entry, "AcctSvcrRef") or _text(entry, "NtryRef")
    own = _text(tx, "Refs/AcctSvcrRef")
    if own and not (count > 1 and own == entry_ref):
        return own
    if entry_ref and count > 1:
        return f"{entry_ref}-{position}"
    return entry_ref


def _hash_id(row: dict, occurrence: int) -> str:
    parts = [row["_account"], row["payment_date"], str(row["amount_cents"]), row["payer_name"],
             row["reference"], str(occurrence)]
    return "camt-" + hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()[:16]


def _assign_ids(rows: list[dict]) -> None:
    seen: Counter = Counter()
    for row in rows:
        if not row["payment_id"]:
            key = (row["_account"], row["payment_date"], row["amount_cents"], row["payer_name"], row["reference"])
            seen[key] += 1
            row["payment_id"] = _hash_id(row, seen[key])
    # A bank reusing a reference across entries must not merge two payments into one id.
    used: Counter = Counter()
    for row in rows:
        used[row["payment_id"]] += 1
        if used[row["payment_id"]] > 1:
            row["payment_id"] = f"{row['payment_id']}-{used[row['payment_id']]}"


def _frame(rows: list[dict], insurers: Insurers) -> pd.DataFrame:
    _assign_ids(rows)
    raw = pd.DataFrame(rows)
    by_debtor = insurers.payer_types(raw["payer_name"])
    by_ultimate = insurers.payer_types(raw["_ultimate"])
    raw["payer_type"] = by_debtor.where(by_debtor != "patient", by_ultimate)
    raw["invoice_number"] = pd.Series([pd.NA] * len(raw), dtype="object")
    raw["status"] = "paid"
    raw["reject_reason"] = pd.Series([pd.NA] * len(raw), dtype="object")
    frame = raw[PAYMENT_COLUMNS].copy()
    return frame.astype({"amount_cents": "int64", "source_line": "int64"})
