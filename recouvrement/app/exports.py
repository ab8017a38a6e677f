"""The payments export (`recouvrement export payments`): every payment as CSV, through the one safe writer.

The file writers themselves live in `render.files`; they are named here too for the use cases that still
import them from this module."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from recouvrement.audit import record_files
from recouvrement.db.payments import payments_for_export
from recouvrement.render.csvfile import MASK, PLAIN, Amount, Dialect
from recouvrement.render.files import rejects_document, write_atomically, write_checked_csv, write_rejects

__all__ = ["MASK", "Amount", "export_payments", "rejects_document", "write_atomically", "write_checked_csv",
           "write_rejects"]

PAYMENT_EXPORT = ["payment_id", "payment_date", "payer_type", "payer_name", "amount", "reference",
                  "invoice_number", "status", "source_file", "source_line"]


def export_payments(engine: Engine, path: Path, dialect: Dialect = PLAIN) -> int:
    with engine.connect() as conn:
        rows = [[pid, str(day), ptype, name, Amount(amount), ref, inv or "", status, src, line]
                for pid, day, ptype, name, amount, ref, inv, status, src, line in payments_for_export(conn)]
    count = write_checked_csv(path, PAYMENT_EXPORT, rows, free_text=("payer_name", "reference"), dialect=dialect)
    record_files(engine, "export", [path], export="payments", rows=count)
    return count
