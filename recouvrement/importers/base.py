"""The shared shape of every importer: sniff(head, name) -> bool, read(path) -> Parsed.

An importer turns one file into a frame of normalised rows plus the rows it refused, each
refusal with its line number, field and reason. Importers never touch the database: the
application layer stores what they return, in one transaction per file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from recouvrement.core.books import OutgoingTransfer  # noqa: F401  (what bank statements also carry)

# Columns of a normalised payment frame, whatever the source format.
#   payment_id     str   unique id of the payment (given, bank reference, or a stable hash)
#   payment_date   str   ISO date YYYY-MM-DD
#   payer_type     str   amo | amc | patient | agency
#   payer_name     str
#   amount_cents   int64 exact amount in euro cents: positive (paid), 0 (a rejection), negative (a clawback)
#   reference      str   free text ("" when none)
#   invoice_number str | <NA>  explicit invoice number when the source has one
#   status         str   paid | rejected | clawback (an insurer taking back what it paid on the share)
#   reject_reason  str | <NA>
#   source_line    int64 line (CSV, CFONB) or 1-based entry position (camt.053) in the file
PAYMENT_COLUMNS = [
    "payment_id", "payment_date", "payer_type", "payer_name", "amount_cents", "reference",
    "invoice_number", "status", "reject_reason", "source_line",
]
PAYER_TYPES = ("amo", "amc", "patient", "agency")

# Bounds of a sane input line, whatever the format: beyond them a cell is a typo or an attack, never a
# clinic's money or date, and the line is refused with one of these reasons (in French: users read them).
FIRST_DATE, LAST_DATE = "1900-01-01", "2100-12-31"
AMOUNT_TOO_LARGE = "montant supérieur au maximum admis (10 000 000,00 € par ligne)"
DATE_OUT_OF_RANGE = "date hors de la période admise (1900 à 2100)"


def date_in_range(iso: str) -> bool:
    """True for an ISO date (YYYY-MM-DD) from 1900 to 2100 included."""
    return FIRST_DATE <= iso <= LAST_DATE


@dataclass(frozen=True, order=True)
class Reject:
    """One refused input row: where it is and why it was refused."""

    file: str
    line: int
    field: str
    reason: str

    def __post_init__(self) -> None:
        # A reason may quote the refused cell: where the privacy scanner flags it (a NIR in the wrong
        # column, a care word in a name), it is described instead, here for every importer at once.
        from recouvrement.core.privacy import redact, safe_file_name
        object.__setattr__(self, "file", safe_file_name(self.file))
        object.__setattr__(self, "reason", redact(self.reason))

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.reason}"


@dataclass
class Parsed:
    """What an importer read from one file."""

    kind: str                      # "invoices" or "payments"
    frame: pd.DataFrame            # normalised rows (PAYMENT_COLUMNS for payments)
    rejects: list[Reject] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rows_read: int = 0             # data rows seen (imported candidates + rejects)
    outgoing: list[OutgoingTransfer] = field(default_factory=list)   # bank statements: our transfers seen


def empty_payments() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="int64" if c in ("amount_cents", "source_line") else "object")
                         for c in PAYMENT_COLUMNS})


def read_head(path: Path, size: int = 4096) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(size)


@dataclass
class ImportReport:
    """What an import read, stored, skipped and refused: one per file (the use cases' shared report type)."""
    file: str
    format: str
    kind: str
    rows_read: int = 0
    imported: int = 0
    duplicates: int = 0
    rejects: list[Reject] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    refunds_done: int = 0          # refunds a bank statement showed paid
