"""Refunds of credits: the list of credits to refund, the accountant's approval, the SEPA transfer file.

A credit (a patient paid more than was due, a share paid twice by the patient and the insurer) is listed
for refund; the accountant approves it with the account to pay (audited); `write_transfer_file` puts the
approved refunds in a pain.001.001.09 file for the bank; the refund is done, and its credit closed, when a
camt.053 statement shows the transfer (the statement's import closes it with `db.refunds.close_refunds` and
audits it, in the statement's transaction: app.imports). Nothing is paid twice: the file
is stored with its refunds marked sent, in one transaction, before it is written; a run killed in between
leaves the next run to write the same file again, never a second order for the same refunds.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

from sqlalchemy import Engine
from stdnum import bic as stdnum_bic
from stdnum import iban as stdnum_iban

from recouvrement.render.files import write_atomically
from recouvrement.audit import append_event, os_actor, record_files
from recouvrement.config import Settings
from recouvrement.core.privacy import scan_text
from recouvrement.db import refunds as store
from recouvrement.db.refunds import Refundable, RefundRow
from recouvrement.db.session import writing
from recouvrement.errors import RecouvrementError
from recouvrement.render.sepa import Debtor, Transfer, pain001_document, sepa_text
from recouvrement.scanner import ensure_clean, known_texts

__all__ = ["Refundable", "RefundRow", "approve_refund", "cancel_refund", "refund_queue", "write_transfer_file"]


def refund_queue(engine: Engine) -> tuple[list[Refundable], list[RefundRow]]:
    """The credits waiting for a refund, and the refunds under way (approved, sent)."""
    with engine.connect() as conn:
        return store.refundable_credits(conn), store.refunds(conn, store.ACTIVE)


def credit_kind(credit: Refundable) -> str:
    """What the credit is, in the accountant's words."""
    if "after all" in credit.reason:
        return "part payée deux fois (patient et organisme)"
    if "nothing left to pay" in credit.reason:
        return "facture déjà réglée : payée deux fois"
    return "trop-perçu"


def _checked_account(iban: str, bic: str | None) -> tuple[str, str | None]:
    compact = stdnum_iban.compact(iban or "")
    if not stdnum_iban.is_valid(compact):
        raise RecouvrementError("IBAN invalide", field="iban")
    if bic:
        bic = stdnum_bic.compact(bic)
        if not stdnum_bic.is_valid(bic):
            raise RecouvrementError("BIC invalide", field="bic")
    return compact, bic or None


def approve_refund(engine: Engine, payment_id: str, *, beneficiary: str, iban: str, bic: str | None, today: date,
                   actor: str | None = None) -> RefundRow:
    """Approve the refund of what is left of a payment's credit to this account (audited)."""
    iban, bic = _checked_account(iban, bic)
    name = sepa_text(beneficiary, 70)
    if not name:
        raise RecouvrementError("le nom du titulaire du compte est vide", field="account_holder")
    if scan_text(beneficiary):
        raise RecouvrementError("le nom du titulaire ressemble à une donnée médicale : corrigez-le", field="account_holder")
    with writing(engine) as conn:
        credit = store.refundable_credit(conn, payment_id)
        if credit is None or credit.available_cents <= 0:
            raise RecouvrementError(f"aucun trop-perçu à rembourser sur le paiement {payment_id}", field="PAYMENT_ID")
        refund_id = store.insert_refund(
            conn, payment_id=payment_id, patient_id=credit.patient_id, amount_cents=credit.available_cents,
            beneficiary=name, iban=iban, bic=bic, end_to_end_id=f"RMB{secrets.token_hex(8).upper()}",
            approved_on=today, approved_by=actor or os_actor())
        append_event(conn, "refund_approved", {"refund_id": refund_id, "payment_id": payment_id,
                                               "amount_cents": credit.available_cents, "iban_end": iban[-4:]},
                     patient_id=credit.patient_id, actor=actor)
        written = store.refund(conn, refund_id)
        assert written is not None, "the refund was just written"
        return written


def cancel_refund(engine: Engine, refund_id: int, *, reason: str, actor: str | None = None) -> RefundRow:
    """Cancel a refund not yet seen paid (the bank refused the transfer, a wrong account): its credit is
    listed for refund again (audited)."""
    with writing(engine) as conn:
        found = store.refund(conn, refund_id)
        if found is None:
            raise RecouvrementError(f"remboursement inconnu {refund_id}", field="REFUND_ID")
        if found.status not in store.ACTIVE:
            state = {"done": "déjà versé", "cancelled": "déjà annulé"}[found.status]
            raise RecouvrementError(f"le remboursement {refund_id} est {state}", field="REFUND_ID")
        store.cancel_refund(conn, refund_id)
        append_event(conn, "refund_cancelled", {"refund_id": refund_id, "payment_id": found.payment_id,
                                                "amount_cents": found.amount_cents, "was": found.status,
                                                "reason": reason}, patient_id=found.patient_id, actor=actor)
        written = store.refund(conn, refund_id)
        assert written is not None, "the refund was just written"
        return written


@dataclass(frozen=True)
class TransferFileReport:
    path: Path | None              # the new file, if any refund was approved
    refunds: int
    total_cents: int
    rewritten: list[Path]          # files a killed run had stored but not written, written now


def _debtor(settings: Settings) -> Debtor:
    creditor = settings.creditor
    for field_name in ("name", "iban", "bic"):
        if not getattr(creditor, field_name):
            raise RecouvrementError(f"réglage creditor.{field_name} manquant : le compte qui paie les remboursements",
                                    file=str(settings.source or "recouvrement.toml"), field=f"creditor.{field_name}")
    return Debtor(creditor.name, stdnum_iban.compact(creditor.iban), stdnum_bic.compact(creditor.bic))


def transfer_file_id(now: datetime) -> str:
    """The transfer file's message id: its time and a random part, cut by letters so that it never
    holds 15 digits in a row (the privacy scan, run on the file, would take them for a NIR)."""
    return f"RCV{now:%Y%m%d}T{now:%H%M%S}R{secrets.token_hex(4).upper()}"


def write_transfer_file(engine: Engine, settings: Settings, out: Path, *, execution_date: date,
                        now: datetime | None = None, actor: str | None = None) -> TransferFileReport:
    """The approved refunds as one pain.001.001.09 file in `out`, each refund marked sent (audited)."""
    now = now or datetime.now(timezone.utc)
    debtor = _debtor(settings)
    rewritten = _write_stored_files(engine)
    out = out.resolve()
    with writing(engine) as conn:
        approved = store.refunds(conn, ("approved",))
        if not approved:
            if rewritten:
                return TransferFileReport(None, 0, 0, rewritten)
            raise RecouvrementError("aucun remboursement approuvé à virer (recouvrement refund approve)")
        message_id = transfer_file_id(now)
        transfers = [Transfer(r.end_to_end_id, r.amount_cents, r.beneficiary, r.iban, r.bic,
                              f"Remboursement trop-percu {r.end_to_end_id}") for r in approved]
        document = pain001_document(message_id, now, debtor, execution_date, transfers)
        ensure_clean(document.decode("utf-8"), out.name, known=known_texts(settings))
        store.store_transfer_file(conn, message_id, str(out), document, now)
        store.mark_sent(conn, [r.id for r in approved], message_id, now.date())
        total = sum(r.amount_cents for r in approved)
        append_event(conn, "refund_file", {"message_id": message_id, "refunds": [r.id for r in approved],
                                           "total_cents": total, "execution_date": execution_date}, actor=actor, at=now)
    _write_stored_files(engine)
    return TransferFileReport(out, len(approved), total, rewritten)


def _write_stored_files(engine: Engine) -> list[Path]:
    """Write the transfer files stored and not yet written (as stored: same bytes, same message id)."""
    with engine.connect() as conn:
        pending = store.unwritten_transfer_files(conn)
    written = []
    for found in pending:
        path = Path(found.path)
        write_atomically(path, found.document)
        with writing(engine) as conn:
            store.mark_transfer_file_written(conn, found.message_id, datetime.now(timezone.utc))
        record_files(engine, "export", [path], export="refunds", message_id=found.message_id)
        written.append(path)
    return written

