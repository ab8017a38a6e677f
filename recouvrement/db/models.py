"""The schema: SQLModel tables. Amounts are integer cents (BIGINT), never floats.

Medical fields (care descriptions, act codes) live only in `invoice_care`, which no output code
reads; the NIR is never stored, only a keyed hash of it.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def cents(nullable: bool = False, default: int | None = 0):
    return Field(default=default, sa_column=Column(BigInteger, nullable=nullable, default=default))


class ImportBatch(SQLModel, table=True):
    __tablename__ = "import_batch"
    id: int | None = Field(default=None, primary_key=True)
    kind: str                                  # invoices | payments | agency_returns
    format: str                                # csv | camt053 | cfonb120 | ...
    source_file: str
    sha256: str = Field(index=True)
    imported_at: datetime
    rows_read: int = 0
    rows_imported: int = 0
    rows_duplicate: int = 0
    rows_rejected: int = 0


class Patient(SQLModel, table=True):
    __tablename__ = "patient"
    patient_id: str = Field(primary_key=True)
    last_name: str
    first_name: str
    birth_date: date | None = None
    address: str = ""
    postal_code: str = ""
    city: str = ""
    email: str | None = None
    phone: str | None = None                   # E.164 (+33612345678), checked at import
    # Consent of whoever receives the letters to be reached by SMS / e-mail (invoices CSV); NULL: never stated,
    # which is no consent (the letter goes by post).
    sms_consent: bool | None = None
    email_consent: bool | None = None
    coverage: str = "none"                     # none | css | ame | at_mp
    nir_hash: str | None = None                # HMAC-SHA256 of the NIR with the installation's key
    guarantor_last_name: str | None = None
    guarantor_first_name: str | None = None
    guarantor_address: str | None = None
    guarantor_postal_code: str | None = None
    guarantor_city: str | None = None
    guarantor_email: str | None = None
    identity_date: date | None = None          # issue date of the invoice these details came from


class PatientNameKey(SQLModel, table=True):
    """The name index the name + amount rule reads: each (last, first) and (last, first initial) key of a
    patient and of their guarantor (core.reconcile.patient_name_keys), kept by the patient writes (db.loads),
    so that the reconcile reads the patients a payer's name could be, never every patient."""
    __tablename__ = "patient_name_key"
    last_key: str = Field(primary_key=True)
    first_key: str = Field(primary_key=True)
    patient_id: str = Field(primary_key=True, index=True)


class QueueReach(SQLModel, table=True):
    """What a waiting queue entry's outcome depends on (db.retries): a night retries the entries whose keys meet
    what changed, not the whole queue."""
    __tablename__ = "queue_reach"
    key: str = Field(primary_key=True)
    payment_id: str = Field(primary_key=True, index=True)


class QueueChange(SQLModel, table=True):
    """What changed since the last reconcile, in queue_reach's keys (db.changes), kept by the writes."""
    __tablename__ = "queue_change"
    key: str = Field(primary_key=True)


class Invoice(SQLModel, table=True):
    __tablename__ = "invoice"
    # PostgreSQL: half of each page left free, where a settled invoice's new version goes (migration invoice_room)
    __table_args__ = {"postgresql_with": {"fillfactor": 50}}
    invoice_number: str = Field(primary_key=True)
    compact_number: str = Field(index=True)    # letters and digits, upper case: what matching compares
    patient_id: str = Field(index=True)
    issue_date: date
    due_date: date
    total_cents: int = cents()
    amo_cents: int = cents()
    amc_cents: int = cents()
    patient_cents: int = cents()
    amc_payer: str | None = None
    batch_id: int | None = None
    source_line: int | None = None
    # From this day on the invoice owes nothing (db.open_items); NULL: open, or not known settled.
    settled_on: date | None = Field(default=None, index=True)


class InvoiceCare(SQLModel, table=True):
    """Medical content kept only when the installation asks for it; no output code reads it."""
    __tablename__ = "invoice_care"
    invoice_number: str = Field(primary_key=True)
    care_description: str | None = Field(default=None, sa_column=Column(Text))
    act_codes: str | None = None


class Payment(SQLModel, table=True):
    __tablename__ = "payment"
    id: int | None = Field(default=None, primary_key=True)
    payment_id: str = Field(sa_column_kwargs={"unique": True})
    payment_date: date = Field(index=True)
    payer_type: str                            # amo | amc | patient | agency
    payer_name: str = ""
    amount_cents: int = cents()
    reference: str = ""
    invoice_number: str | None = Field(default=None, index=True)
    status: str = "paid"                       # paid | rejected | clawback (negative amount)
    reject_reason: str | None = None
    source_file: str = ""
    source_line: int | None = None
    batch_id: int | None = None
    reconciled: bool = False                   # by hand, or stored so; a run's: see db.reconcile


class Allocation(SQLModel, table=True):
    __tablename__ = "allocation"
    id: int | None = Field(default=None, primary_key=True)
    payment_id: str = Field(index=True)
    invoice_number: str                        # indexed with the share, amount and payment (below)
    payer_type: str                            # the share settled: amo | amc | patient
    amount_cents: int = cents()
    rule: str                                  # explicit | rf | text | name_amount | manual | agency | shift_back
                                               # | clawback (negative: an insurer took back what it paid)
    created_at: datetime
    payment_date: date | None = None           # its payment's, filled by every write: settle's last day paid


class ShareTransfer(SQLModel, table=True):
    """An insurer's share moved to the patient after a rejection; reversed if the insurer pays after all."""
    __tablename__ = "share_transfer"
    id: int | None = Field(default=None, primary_key=True)
    invoice_number: str = Field(index=True)
    from_payer: str                            # amo | amc
    amount_cents: int = cents()
    transfer_date: date
    payment_id: str                            # the rejection line
    reason: str | None = None
    notified: bool = False                     # the patient got the neutral rejection notice
    reversed_on: date | None = None
    reversed_by: str | None = None


class PaymentException(SQLModel, table=True):
    """What is left of a payment after reconciliation: unmatched, ambiguous or a credit."""
    __tablename__ = "payment_exception"
    payment_id: str = Field(primary_key=True)
    kind: str                                  # unmatched | ambiguous | credit | clawback (not reversible)
    remaining_cents: int = cents()
    reason: str
    patient_id: str | None = Field(default=None, index=True)


class Dispute(SQLModel, table=True):
    __tablename__ = "dispute"
    id: int | None = Field(default=None, primary_key=True)
    invoice_number: str = Field(index=True)
    received_on: date
    channel: str = "desk"                      # phone | email | letter | desk
    category: str = "other"                    # amount | billing-error | insurer | service | other
    status: str = "open"                       # open | forwarded | answered | closed
    reason: str = Field(sa_column=Column(Text, nullable=False))
    answer_due: date
    closed_on: date | None = None


class DisputeNote(SQLModel, table=True):
    __tablename__ = "dispute_note"
    id: int | None = Field(default=None, primary_key=True)
    dispute_id: int = Field(index=True)
    at: datetime
    action: str                                # open | note | forward | answer | close
    text: str = Field(sa_column=Column(Text, nullable=False))


class Hold(SQLModel, table=True):
    __tablename__ = "hold"
    id: int | None = Field(default=None, primary_key=True)
    patient_id: str = Field(index=True)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    since: date
    released_on: date | None = None


class Letter(SQLModel, table=True):
    __tablename__ = "letter"
    letter_id: str = Field(primary_key=True)
    patient_id: str = Field(index=True)
    level: int
    kind: str                                  # avis_rejet | relance_1 | relance_2 | mise_en_demeure | proposition_echeancier
    channel: str                               # letter | email | both
    as_of: date = Field(index=True)
    amount_cents: int = cents()
    sha256: str
    file: str
    # The letter's own ISO 11649 RF reference (core.references.letter_reference), for all its invoices;
    # NULL for the letters made before it existed (they printed one reference per invoice).
    rf_reference: str | None = Field(default=None, index=True, unique=True)
    # E-mail outbox: written (nothing to send: post only, or no SMTP settings) | queued | sending | sent |
    # failed (refused by the server `attempts` times). 'sent' only once the SMTP server accepted it.
    status: str = "written"
    folder: str | None = None                  # absolute folder of the letter's files (.html, .eml)
    batch: str | None = None                   # the print batch PDF (in `folder`) a postal letter belongs to
    attempts: int = 0                          # SMTP tries
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    claimed_by: str | None = None              # "host:pid" sending it now (status 'sending')
    claimed_at: datetime | None = None
    sent_at: datetime | None = None
    # The postal tracking number when the letter was also sent by registered post (lettre recommandée avec
    # accusé de réception), as the desk recorded it (`registered-post`); NULL: not recorded.
    registered_tracking: str | None = None


class SmsMessage(SQLModel, table=True):
    """A letter's SMS in the outbox: queued | sending | sent | failed (refused by the provider `attempts`
    times), or written (no [sms] settings: kept, not sent). 'sent' only once the provider accepted it."""
    __tablename__ = "sms_message"
    letter_id: str = Field(primary_key=True)
    patient_id: str = Field(index=True)
    as_of: date
    phone: str                                 # E.164, the patient's mobile when the letter was made
    text: str = Field(sa_column=Column(Text, nullable=False))
    status: str = "queued"
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    sent_at: datetime | None = None
    provider_id: str | None = None             # the provider's id of the accepted message


class PrintBatch(SQLModel, table=True):
    """A day's postal letters in one PDF. Recorded with its letters before the PDF is written, marked
    written after: a run killed in between leaves it to the next run, which never makes it twice."""
    __tablename__ = "print_batch"
    name: str = Field(primary_key=True)        # file name, in `folder`: batch-<date>.pdf, batch-<date>-2.pdf …
    as_of: date = Field(index=True)
    folder: str
    letters: int = 0
    sha256: str | None = None
    written_at: datetime | None = None


class LetterItem(SQLModel, table=True):
    __tablename__ = "letter_item"
    __table_args__ = (UniqueConstraint("letter_id", "invoice_number"),)
    id: int | None = Field(default=None, primary_key=True)
    letter_id: str = Field(index=True)
    invoice_number: str = Field(index=True)
    amount_cents: int = cents()
    level: int                                 # the invoice's own ladder level in this letter (0: notice)


class Plan(SQLModel, table=True):
    __tablename__ = "plan"
    id: int | None = Field(default=None, primary_key=True)
    patient_id: str = Field(index=True)
    status: str = "proposed"                   # proposed | active | broken | completed | cancelled
    proposed_on: date
    accepted_on: date | None = None
    ended_on: date | None = None
    total_cents: int = cents()
    invoice_numbers: str                       # space-separated


class PlanInstalment(SQLModel, table=True):
    __tablename__ = "plan_instalment"
    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(index=True)
    seq: int
    due_date: date
    amount_cents: int = cents()


class AgencyCase(SQLModel, table=True):
    __tablename__ = "agency_case"
    case_id: str = Field(primary_key=True)
    patient_id: str = Field(index=True)
    handed_on: date
    amount_cents: int = cents()
    invoice_numbers: str
    # handed_over | partial | collected | plan_proposed | disputed | uncollectable | closed | returned
    status: str = "handed_over"
    updated_on: date | None = None


class AgencyCommission(SQLModel, table=True):
    """The agency's commission on one collected return line: an expense of the clinic (booked in the FEC against
    the agency's supplier account), never added to what a patient owes."""
    __tablename__ = "agency_commission"
    line_id: str = Field(primary_key=True)     # the return line's id, that of its agency payment
    case_id: str = Field(index=True)
    booked_on: date = Field(index=True)        # the return line's date
    amount_cents: int = cents()
    rate_bp: int | None = None                 # the rules' rate (basis points) it was computed with; NULL: the file's


class AgencyExport(SQLModel, table=True):
    """An agency file, recorded with its cases before it is written and marked written after: a run killed
    in between leaves the next export to write it; its cases are never exported a second time."""
    __tablename__ = "agency_export"
    path: str = Field(primary_key=True)        # absolute path of the CSV; the manifest is <path>.manifest.json
    as_of: date
    sha256: str
    document: bytes = Field(sa_column=Column(LargeBinary, nullable=False))     # the CSV, as written
    manifest: str = Field(sa_column=Column(Text, nullable=False))
    written_at: datetime | None = None


class Refund(SQLModel, table=True):
    """A credit paid back by SEPA credit transfer: approved by the accountant, put in a pain.001 file (sent),
    closed when a bank statement shows the transfer (done); cancelled if the bank refused it."""
    __tablename__ = "refund"
    id: int | None = Field(default=None, primary_key=True)
    payment_id: str = Field(index=True)        # the payment whose credit is refunded
    patient_id: str | None = Field(default=None, index=True)
    amount_cents: int = cents()
    beneficiary: str                           # account holder's name, as on the transfer
    iban: str
    bic: str | None = None
    end_to_end_id: str = Field(sa_column_kwargs={"unique": True})   # what the bank statement echoes
    status: str = "approved"                   # approved | sent | done | cancelled
    approved_on: date
    approved_by: str
    message_id: str | None = None              # the pain.001 file (GrpHdr/MsgId) it was sent in
    sent_on: date | None = None
    done_on: date | None = None                # booking date of the outgoing transfer on the statement
    bank_reference: str | None = None


class RefundFile(SQLModel, table=True):
    """A pain.001 file of refunds, stored with its refunds marked sent before it is written to disk, marked
    written after: a run killed in between leaves the next to write the same bytes, never a second order."""
    __tablename__ = "refund_file"
    message_id: str = Field(primary_key=True)  # GrpHdr/MsgId
    path: str
    document: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: datetime
    written_at: datetime | None = None


class WriteOff(SQLModel, table=True):
    """A debt written off (admission en non-valeur): the share is no longer owed nor chased, though never paid.
    Subtracted from what is owed by core.ledger.outstanding (the one place); booked in the FEC; audited."""
    __tablename__ = "write_off"
    id: int | None = Field(default=None, primary_key=True)
    invoice_number: str = Field(index=True)
    patient_id: str = Field(index=True)
    payer_type: str = "patient"                # the share written off
    amount_cents: int = cents()
    reason: str                                # time_barred | deceased | agency_uncollectable | under_cost
    note: str | None = Field(default=None, sa_column=Column(Text))
    written_off_on: date
    written_off_by: str


class AuditEvent(SQLModel, table=True):
    """Append-only, chained and sealed: hash = HMAC-SHA256(audit key, prev_hash + canonical JSON of the event);
    events written before the key have a plain SHA-256 and no actor (see recouvrement/audit.py)."""
    __tablename__ = "audit_event"
    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    at: str                                    # ISO 8601 UTC, kept as text: it is hashed as written
    kind: str
    patient_id: str | None = Field(default=None, index=True)
    invoice_number: str | None = Field(default=None, index=True)
    actor: str | None = None                   # who acted: the OS user, or the web app's logged-in user
    payload: str = Field(sa_column=Column(Text, nullable=False))
    prev_hash: str
    hash: str


class Run(SQLModel, table=True):
    __tablename__ = "run"
    id: int | None = Field(default=None, primary_key=True)
    started_at: datetime
    ended_at: datetime | None = None
    as_of: date
    status: str = "running"                    # running | ok | failed
    counts: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    errors: str = Field(default="", sa_column=Column(Text, nullable=False))


class RunLock(SQLModel, table=True):
    __tablename__ = "run_lock"
    name: str = Field(primary_key=True)
    holder: str
    acquired_at: datetime


# (SQLModel gives each table class its __table__ at class creation; its type stubs do not say so.)
# By invoice and share, with what the per-invoice sums read (amount, payment, its day): SQLite sums from the index
# alone.
Index("ix_allocation_invoice_covering", Allocation.__table__.c.invoice_number,  # type: ignore[attr-defined]
      Allocation.__table__.c.payer_type, Allocation.__table__.c.amount_cents,  # type: ignore[attr-defined]
      Allocation.__table__.c.payment_id, Allocation.__table__.c.payment_date)  # type: ignore[attr-defined]


class Meta(SQLModel, table=True):
    """Small key-value facts about the database (e.g. what the last reconciliation saw)."""
    __tablename__ = "meta"
    key: str = Field(primary_key=True)
    value: str


class WebUser(SQLModel, table=True):
    """A person who logs into the web app: one role, an argon2 password hash (never the password)."""
    __tablename__ = "web_user"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column_kwargs={"unique": True})
    role: str                                  # accountant | staff | auditor
    password_hash: str
    created_at: datetime
    disabled: bool = False


class WebSession(SQLModel, table=True):
    """A server-side session: the cookie carries a random token, the table only its SHA-256."""
    __tablename__ = "web_session"
    token_hash: str = Field(primary_key=True)
    user_id: int = Field(index=True)
    csrf_token: str
    created_at: datetime
    last_seen: datetime
    expires_at: datetime


class LoginFailure(SQLModel, table=True):
    """A refused login, kept a short while to slow down password guessing (per account name)."""
    __tablename__ = "login_failure"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True)
    at: datetime = Field(index=True)


class Promise(SQLModel, table=True):
    """A patient's promise to pay by a date, taken at the desk: no reminder for the patient until then."""
    __tablename__ = "promise"
    id: int | None = Field(default=None, primary_key=True)
    patient_id: str = Field(index=True)
    made_on: date
    pay_by: date                               # the ladder waits through this day, then resumes by itself
    amount_cents: int | None = cents(nullable=True, default=None)
    cancelled_on: date | None = None


class HoldReview(SQLModel, table=True):
    """The day staff should look again at a patient's hold (a reminder to people; the hold stays until released)."""
    __tablename__ = "hold_review"
    hold_id: int = Field(primary_key=True)
    review_on: date


class LetterApproval(SQLModel, table=True):
    """A person looked at a letter (its preview) and approved it, in the web app."""
    __tablename__ = "letter_approval"
    letter_id: str = Field(primary_key=True)
    approved_by: str
    approved_at: datetime


class CallTask(SQLModel, table=True):
    """A phone step of the ladder the night put on the call list (issue #14), and its outcome.

    status: open (to call), reached, promise, dispute (the step is done on closed_on), wrong_number, expired (no
    outcome within the level's call_within_days: the step falls back to its letter), cancelled (the patient is
    no longer to be chased: paid, on hold …)."""
    __tablename__ = "call_task"
    call_id: str = Field(primary_key=True)     # C<yyyymmdd>-<patient>-<level>
    patient_id: str = Field(index=True)
    level: int
    listed_on: date = Field(index=True)
    amount_cents: int = cents()
    script: str
    status: str = Field(index=True)
    closed_on: date | None = None


class CallTaskItem(SQLModel, table=True):
    """One invoice a call is about, at its own level (as a letter lists it)."""
    __tablename__ = "call_task_item"
    call_id: str = Field(primary_key=True)
    invoice_number: str = Field(primary_key=True)
    amount_cents: int = cents()
    level: int


class UnusablePhone(SQLModel, table=True):
    """A patient's phone number found wrong on a call: no phone step on it again (a new number is tried)."""
    __tablename__ = "unusable_phone"
    patient_id: str = Field(primary_key=True)
    phone: str = Field(primary_key=True)
    marked_on: date
