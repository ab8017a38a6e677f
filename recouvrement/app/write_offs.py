"""Writing off a debt (admission en non-valeur): the accountant's decision that a patient's share will not be
collected — time-barred, the debtor deceased, returned uncollectable by the agency, or under the cost of
collecting it.

The write-off is a fact of the ledger: `core.ledger.outstanding` subtracts it (the one place that says what
is still owed), so the share leaves the ladder, the plans, the agency file and the balance; it stays in the
audit trail and is booked in the FEC (loss account debited, the customer account credited).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Engine

from recouvrement.audit import append_event, os_actor
from recouvrement.core.books import WRITE_OFF_REASONS
from recouvrement.core.ledger import outstanding
from recouvrement.db import books as store
from recouvrement.db.ledger import load_snapshot
from recouvrement.db.session import writing
from recouvrement.errors import RecouvrementError
from recouvrement.money import format_eur

REASONS = tuple(WRITE_OFF_REASONS)


@dataclass(frozen=True)
class WriteOffDone:
    write_off_id: int
    invoice_number: str
    patient_id: str
    amount_cents: int
    reason: str


def write_off(engine: Engine, invoice_number: str, *, reason: str, today: date, note: str | None = None,
              actor: str | None = None) -> WriteOffDone:
    """Write off what the patient still owes on one invoice (audited); RecouvrementError when nothing is owed."""
    if reason not in WRITE_OFF_REASONS:
        raise RecouvrementError(f"motif inconnu {reason!r} : {', '.join(REASONS)}", field="reason")
    with writing(engine) as conn:
        shares = outstanding(load_snapshot(conn, None, invoice_numbers=[invoice_number]))
        patient = shares[(shares["invoice_number"] == invoice_number) & (shares["payer_type"] == "patient")]
        if patient.empty:
            raise RecouvrementError(f"facture inconnue {invoice_number!r}", field="INVOICE_NUMBER")
        due, patient_id = int(patient["due_cents"].iloc[0]), str(patient["patient_id"].iloc[0])
        if due <= 0:
            raise RecouvrementError(f"le patient ne doit plus rien sur la facture {invoice_number} "
                                    f"({format_eur(max(due, 0))}) : rien à passer en non-valeur", field="INVOICE_NUMBER")
        write_off_id = store.insert_write_off(conn, invoice_number=invoice_number, patient_id=patient_id,
                                              payer_type="patient", amount_cents=due, reason=reason, note=note,
                                              written_off_on=today, written_off_by=actor or os_actor())
        append_event(conn, "write_off", {"write_off_id": write_off_id, "amount_cents": due, "reason": reason,
                                         "written_off_on": today}, patient_id=patient_id,
                     invoice_number=invoice_number, actor=actor)
    return WriteOffDone(write_off_id, invoice_number, patient_id, due, reason)
