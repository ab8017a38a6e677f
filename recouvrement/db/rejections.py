"""The store's side of insurers' rejections as letters need them: the reason each insurer gave."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, bindparam, text


def rejection_reasons(conn: Connection, invoice_numbers: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """invoice number -> the reasons (as the remittance wrote them) of its shares moved to the patient and not
    taken back, in the order they were moved; invoices without one are left out."""
    numbers = sorted(set(invoice_numbers))
    if not numbers:
        return {}
    rows = conn.execute(text("SELECT invoice_number, reason FROM share_transfer WHERE reversed_on IS NULL "
                             "AND reason IS NOT NULL AND invoice_number IN :numbers ORDER BY transfer_date, id")
                        .bindparams(bindparam("numbers", expanding=True)), {"numbers": numbers}).all()
    found: dict[str, tuple[str, ...]] = {}
    for number, reason in rows:
        found[number] = (*found.get(number, ()), reason)
    return found
