"""The day's reminders: decide with the ladder, render the whitelist letters, scan, write, send, record.

Every document is privacy-scanned before it is written; a document that leaks is refused alone
(reported as an error) and the others go on. Letters already recorded for a patient on that date are
never made again, so running the same day twice sends nothing twice and rewrites the same manifest.

Nothing doubled, nothing lost, also with two runs at once or a run killed half-way: the letters are
recorded under the writer lock (a letter another run recorded meanwhile is left to it), with their print
batch and, for e-mails and SMS, in their outboxes ('queued'). Only then is the batch PDF written (and marked written);
the composers (the nightly run, `recouvrement remind`: app.reminders.remind_and_send) then send the outboxes
(app/outbox.py). A run killed after recording leaves the next run to write the missing batch and send what
is still queued; a batch already written is never made again.

Never on a half-reconciled ledger: payments dated on or before the run's day that no `reconcile` has
processed yet could be a patient's who paid, so the run refuses (PaymentsNotReconciled) before it closes a call,
writes a letter or queues a message; a dry run still shows what would go, with the same warning
(`RemindReport.warning`). The check is made again in the transaction that records the calls and the letters,
under the writer lock, with the payments' mark read before the accounts (db.payments.payments_mark): a payment
imported, reconciled or matched while the letters were composed refuses the run there, nothing recorded, queued
or printed (so does an invoices file imported meanwhile: a patient's address, coverage or guarantor may have changed), and no letter file left in the output folder: a run writes its letters into its own private folder
(`.remind-run-…`, inside the output folder, locked while the run lives) and moves them into place only once they are
recorded. The folder of a run killed or stopped in between is recovered by the next run: the recorded letters'
files moved into place (for the print batch and the outbox), the others removed. A patient put on hold, disputing,
promising to pay, offered or accepting a plan, handed over, written off or called meanwhile (db.eligibility's
pauses_mark, read with the payments' mark) loses only their own letter and call of that run, said in its errors.
A payment the reconcile put in the queue is processed: the queue's holds protect its candidates
(db.accounts.queued_payment_holds), it does not block.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
import multiprocessing
import os
import re
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

from sqlalchemy import Connection, Engine

from recouvrement.render.recipients import patient_name, recipient_mobile, recipient_of
from recouvrement.render.listing import exclusion_rows, letter_rows, lines as listing_lines
from recouvrement.render.csvfile import EXCEL_FR, Amount
from recouvrement.render.files import (abandoned_private_folders, lock_beside, move_into_place, open_private_folder,
                                      unlock_beside, write_atomically, write_checked_csv)
from recouvrement.db import calls as call_store
from recouvrement.db import letters as stored
from recouvrement.db import outbox as outboxes
from recouvrement.db.accounts import load_accounts, patient_count, patient_split
from recouvrement.db.eligibility import patients_paused_since, pauses_mark
from recouvrement.db.ledger import PatientRange
from recouvrement.db.payments import invoices_mark, payments_mark, unreconciled_count
from recouvrement.db.session import released_for_fork, sqlite_file, writing
from recouvrement.memory import no_cycle_collection
from recouvrement.audit import Event, append_event, append_events, file_record, record_files
from recouvrement.channels.compose import BatchPart
from recouvrement.render.views import LetterView
from recouvrement.config import Settings
from recouvrement.core.ladder import (PRE_DUE_LEVEL, Account, CallFacts, Decision, call_expired, call_wanted, decide,
                                      is_quiet_day, pre_due_notice)
from recouvrement.core.references import letter_reference, rf_reference
from recouvrement.core.wording import neutral_reason
from recouvrement.db.rejections import rejection_reasons
from recouvrement.errors import RecouvrementError
from recouvrement.rules import Rules, by_email, by_sms, is_postal
from recouvrement.core.privacy import Finding
from recouvrement.scanner import PrivacyLeak, ensure_clean, known_texts, pdf_text, refuse_findings

MANIFEST_HEADER = ["letter_id", "patient_id", "invoice_numbers", "level", "channel", "amount_due", "file"]
# The night's call list (French Excel): whom to phone, the amount to ask, the level, the script to follow.
CALL_LIST_HEADER = ["appel", "nom", "prénom", "téléphone", "montant_demandé", "niveau", "script"]
CALL_LIST_NAME = "appels.csv"
# The run's letters are written in its own folder inside the output folder, moved into place once recorded.
PRIVATE_PREFIX = ".remind-"
PAUSE_HOOK = "RECOUVREMENT_TEST_PAUSE_REMIND"   # tests: "recorded" sleeps after the commit, before the move
_PAYERS = {"amo": "l'Assurance Maladie", "amc": "votre mutuelle", "amo amc": "l'Assurance Maladie et votre mutuelle"}


class LedgerChangedDuringRun(RecouvrementError):
    """What the run decided on changed before it recorded (payments or invoices imported, payments reconciled):
    nothing is recorded, the run is to be made again (the command exits with code 5)."""


class InvoicesImportedDuringRun(LedgerChangedDuringRun):
    """An invoices file was imported while the run composed its letters: a patient's address, coverage, birth date
    or guarantor may have changed since the accounts were read (a patient now covered by the CSS, a child whose
    guarantor just came): no letter is recorded."""

    def __init__(self) -> None:
        super().__init__("des factures ont été importées pendant les relances (adresse, couverture ou garant d'un "
                         "patient ont pu changer) : aucun courrier n'a été enregistré ni envoyé ; relancez "
                         "« recouvrement remind ».")


class PaymentsNotReconciled(LedgerChangedDuringRun):
    """Payments imported but not yet reconciled: no reminder is written until `recouvrement reconcile` ran; or
    payments imported, reconciled or matched while the run composed its letters (`during_run`): none is recorded."""

    def __init__(self, count: int, during_run: bool = False) -> None:
        self.count = count
        super().__init__(changed_during_run_message(count) if during_run else not_reconciled_message(count))


def not_reconciled_message(count: int) -> str:
    """The one French line telling the user what to do.

    >>> not_reconciled_message(3)
    '3 paiements importés ne sont pas encore rapprochés : lancez « recouvrement reconcile » avant les relances.'
    >>> not_reconciled_message(1)
    "1 paiement importé n'est pas encore rapproché : lancez « recouvrement reconcile » avant les relances."
    """
    what = ("1 paiement importé n'est pas encore rapproché" if count == 1
            else f"{count} paiements importés ne sont pas encore rapprochés")
    return f"{what} : lancez « recouvrement reconcile » avant les relances."


def changed_during_run_message(count: int) -> str:
    """The one French line of a run refused when it recorded: payments came (`count` not reconciled yet) or were
    reconciled while it composed its letters.

    >>> changed_during_run_message(0)
    "des paiements ont été rapprochés pendant les relances : aucun courrier n'a été enregistré ni envoyé ; relancez « recouvrement remind »."
    """
    if not count:
        return ("des paiements ont été rapprochés pendant les relances : aucun courrier n'a été enregistré ni envoyé ; "
                "relancez « recouvrement remind ».")
    what = ("1 paiement a été importé" if count == 1 else f"{count} paiements ont été importés")
    return (f"{what} pendant les relances : aucun courrier n'a été enregistré ni envoyé ; lancez « recouvrement "
            "reconcile » puis relancez « recouvrement remind ».")


@dataclass(frozen=True)
class Excluded:
    patient_id: str
    invoice_number: str | None  # None: the whole account
    code: str
    reason: str


@dataclass(frozen=True)
class WrittenLetter:
    letter_id: str
    patient_id: str
    invoice_numbers: tuple[str, ...]
    level: int
    kind: str
    channel: str
    amount_cents: int
    file: str  # relative to the output folder: the HTML, or the .eml for an e-mail only
    sha256: str
    decision: Decision
    files: tuple[dict, ...] = ()  # every file written for it (HTML, .eml, PDF): path and SHA-256, for the audit
    rf_reference: str | None = None  # the letter's own RF reference, for all its invoices
    sms: tuple[str, str] | None = None  # (mobile in E.164, text) when the letter also goes by SMS


@dataclass
class RemindReport:
    as_of: date
    dry_run: bool
    quiet_day: bool
    decisions: list[Decision] = field(default_factory=list)  # letters due (made, or to make in a dry run)
    exclusions: list[Excluded] = field(default_factory=list)
    letters: list[WrittenLetter] = field(default_factory=list)  # made by this run
    already_recorded: list[str] = field(default_factory=list)  # letter ids of that date from an earlier run
    errors: list[str] = field(default_factory=list)
    # The outbox's sending after the run, filled in by the composer that sends it (app.reminders.remind_and_send).
    emails_sent: int = 0
    emails_queued: int = 0      # still in the outbox after this run (server unreachable, killed run …)
    emails_failed: int = 0      # refused by the server too many times: a person looks at them
    email_note: str | None = None
    sms_sent: int = 0
    sms_queued: int = 0         # still in the SMS outbox after this run (provider unreachable, killed run …)
    sms_failed: int = 0         # refused by the provider: a person looks at them
    sms_note: str | None = None
    batch_pdf: Path | None = None
    pages: dict[str, tuple[int, int]] = field(default_factory=dict)  # letter id -> pages of the batch PDF
    manifest: Path | None = None
    calls_listed: list[str] = field(default_factory=list)  # call ids this run put on the call list
    calls_closed: dict[str, str] = field(default_factory=dict)  # call id -> expired | cancelled, by this run
    call_list: Path | None = None
    unreconciled: int = 0       # payments on or before as_of not reconciled yet (a dry run only: a run refuses)
    # What the letters cost (benchmarks/letters.py prints them): (step, wall s, CPU s) of this process, and the
    # CPU seconds of the composing workers by stage (channels.compose.STAGES).
    stages: list[tuple[str, float, float]] = field(default_factory=list)
    worker_cpu: dict[str, float] = field(default_factory=dict)
    # A dry run's listings' lines (render.listing): of `decisions` and of `exclusions`, in their order.
    listing: tuple[str, str] | None = None

    @property
    def warning(self) -> str | None:
        """The line to show when payments wait to be reconciled (a dry run's decisions may chase someone who paid)."""
        return not_reconciled_message(self.unreconciled) if self.unreconciled else None

    @property
    def letters_by_level(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for letter in self.letters:
            counts[letter.level] = counts.get(letter.level, 0) + 1
        return counts


def letter_id(as_of: date, patient_id: str, level: int) -> str:
    """Stable: the same patient, day and level always give the same id (and file name); the pre-due notice
    ends in -A ("avant échéance")."""
    return f"L{as_of:%Y%m%d}-{re.sub(r'[^A-Za-z0-9_-]', '_', patient_id)}-{'A' if level == PRE_DUE_LEVEL else level}"


def run_remind(engine: Engine, settings: Settings, as_of: date, out_dir: Path, dry_run: bool = False,
               rules: Rules | None = None, single_pdf: bool = False) -> RemindReport:
    """Decide the reminders due on as_of; unless dry_run, write and record them (e-mails wait in the outbox:
    app.reminders.remind_and_send sends them). PaymentsNotReconciled, nothing written, when payments dated on or
    before as_of are not reconciled yet; a dry run reports them in `unreconciled` instead."""
    rules = rules or settings.rules()
    started = time.perf_counter(), time.process_time()
    with no_cycle_collection(), child_pool(engine) as pool:
        with engine.connect() as conn:
            mark = payments_mark(conn)      # before the accounts are read: any payment after it shows at recording,
            invoices = invoices_mark(conn)  # any invoices file imported after it (a patient's details changed),
            paused_mark = pauses_mark(conn)  # and any hold, dispute, promise, plan, handover, write-off …
            pending = unreconciled_count(conn, as_of)
            if pending and not dry_run:
                raise PaymentsNotReconciled(pending)
            day = read_and_decide(engine, conn, as_of, rules, (mark, invoices, paused_mark), pool=pool,
                                  listing=dry_run)
            recorded = stored.letter_ids_of_day(conn, as_of)
        accounts = day.accounts
        report = RemindReport(as_of, dry_run, is_quiet_day(as_of), unreconciled=pending)
        report.exclusions = [Excluded(*excluded) for excluded in day.exclusions]
        # What core.ladder.due_reminders returns, without deciding every account a second time.
        report.decisions = [] if report.quiet_day else day.letters
        # The pre-due notices, decided apart: not ladder letters, and they never delay one (none when disabled).
        report.decisions += day.pre_due
        if day.listing is not None:
            letters, pre_due, exclusions = day.listing
            report.listing = ("" if report.quiet_day else letters) + pre_due, exclusions
    report.stages.append(("read and decide", time.perf_counter() - started[0], time.process_time() - started[1]))
    if dry_run:
        return report
    fresh = [d for d in report.decisions if d.level is not None and d.channel != "phone"
             and letter_id(as_of, d.patient_id, d.level) not in recorded]
    report.already_recorded = sorted(recorded)
    with engine.connect() as conn:
        awaiting = stored.folders_awaiting_files(conn)
    for folder in dict.fromkeys([str(Path(out_dir).resolve()), *awaiting]):
        _recover_private_folders(engine, Path(folder))
    private = open_private_folder(Path(out_dir), PRIVATE_PREFIX) if fresh else None
    committed = False
    batch_lock: tuple[str, int | None] | None = None
    try:
        parts = _make_letters(engine, settings, as_of, Path(out_dir), private.path, fresh, report, single_pdf,
                              rules) if private else []
        with _stage(report, "record"), writing(engine) as conn:
            _ensure_ledger_unchanged(conn, as_of, mark, invoices)
            paused = _drop_paused(conn, paused_mark, report)
            _record_calls(conn, as_of, accounts, [d for d in report.decisions if d.channel == "phone"
                                                  and d.patient_id not in paused], report, rules)
            if fresh:
                batch = _record(conn, as_of, Path(out_dir), report, queue_emails=bool(settings.smtp.host),
                                queue_sms=bool(settings.sms.url))
                if batch:   # taken before the commit: another run that sees the batch leaves it to this one
                    batch_lock = (batch, lock_beside(Path(out_dir).resolve() / batch))
        committed = True
        if private:
            _pause_for_tests()
            with _stage(report, "move into place"):
                _move_letters(private.path, Path(out_dir), report.letters)
    except BaseException:
        if private:   # refused or failed before recording: its files go; recorded, not moved: the next run moves them
            private.close(remove=not committed)
        if batch_lock and batch_lock[1] is not None:
            os.close(batch_lock[1])
        raise
    if private:       # what is left: letters another run recorded meanwhile, or of a patient paused meanwhile
        private.close(remove=True)
    with _stage(report, "batch PDF"):
        _write_batches(engine, report, known_texts(settings), parts, batch_lock)
    with _stage(report, "manifest and call list"):
        if report.already_recorded or report.letters:
            report.manifest = write_manifest(engine, as_of, Path(out_dir))
        report.call_list = write_call_list(engine, as_of, Path(out_dir))
    return report


def _move_letters(private: Path, out_dir: Path, letters: Sequence[WrittenLetter]) -> None:
    """After the commit: the recorded letters' files moved from the run's private folder into the output folder,
    each letter's document last (a recovery moves a letter whose document is still in the private folder)."""
    for written in letters:
        names = [Path(f["path"]).name for f in written.files]
        move_into_place(private, out_dir, [n for n in names if n != written.file] + [written.file])


def _recover_private_folders(engine: Engine, out_dir: Path) -> None:
    """The private folders left by runs killed or stopped in between: the files of a letter recorded from there (its
    document's SHA-256 the recorded one, and in this folder) are moved into place, for the print batch and the
    outbox; those of a letter not recorded (a refused run, a run killed before it recorded) removed. Each run does
    it in its output folder and in those where queued e-mails or unwritten batches wait for their files."""
    if not out_dir.is_dir():
        return
    final = str(out_dir.resolve())
    for left in abandoned_private_folders(out_dir, PRIVATE_PREFIX):
        moved = False
        try:
            names: dict[str, list[str]] = {}
            for path in sorted(left.path.iterdir()):
                if not path.name.startswith("."):     # the lock, a file cut half-way (.part)
                    names.setdefault(path.name.split(".")[0], []).append(path.name)
            with engine.connect() as conn:
                recorded = stored.recorded_documents(conn, sorted(names))
            for lid, files in names.items():
                folder, document, sha256 = recorded.get(lid, ("", "", ""))
                if folder != final or document not in files \
                        or hashlib.sha256((left.path / document).read_bytes()).hexdigest() != sha256:
                    continue
                move_into_place(left.path, out_dir, [n for n in files if n != document] + [document])
            moved = True
        finally:
            left.close(remove=moved)


def _pause_for_tests() -> None:
    """Lets a test kill the run at a known point: its letters recorded, their files not yet moved into place."""
    if os.environ.get(PAUSE_HOOK) == "recorded":
        print("paused after recording", file=sys.stderr, flush=True)
        time.sleep(3600)


def _ensure_ledger_unchanged(conn: Connection, as_of: date, mark: tuple[int, int], invoices: int) -> None:
    """Under the writer lock, before anything is recorded: the run's check made again (the transaction rolled back).
    PaymentsNotReconciled when a payment was imported, reconciled or matched since the accounts were read;
    InvoicesImportedDuringRun when an invoices file was (`invoices`: db.payments.invoices_mark then)."""
    if payments_mark(conn) != mark:
        raise PaymentsNotReconciled(unreconciled_count(conn, as_of), during_run=True)
    if invoices_mark(conn) != invoices:
        raise InvoicesImportedDuringRun()


def _drop_paused(conn: Connection, mark: tuple[int, int, int, int], report: RemindReport) -> set[str]:
    """Under the writer lock: the patients put on hold, disputing, promising to pay, offered or accepting a plan,
    handed over, written off or called since the accounts were read (db.eligibility.patients_paused_since); their
    letters and calls are not recorded (nor printed nor sent: each letter said in report.errors), the next run
    decides again."""
    paused = patients_paused_since(conn, mark)
    if paused:
        report.errors.extend(f"{w.letter_id} : non enregistré, le dossier du patient a changé pendant les relances "
                             "(suspension, réclamation, promesse, échéancier, agence, non-valeur ou appel) ; le "
                             "prochain passage décide à nouveau"
                             for w in report.letters if w.patient_id in paused)
        report.letters = [w for w in report.letters if w.patient_id not in paused]
    return paused


def call_id(as_of: date, patient_id: str, level: int) -> str:
    """Stable, like a letter's: the same patient, night and level always give the same call."""
    return f"C{as_of:%Y%m%d}-{re.sub(r'[^A-Za-z0-9_-]', '_', patient_id)}-{level}"


def _record_calls(conn: Connection, as_of: date, accounts: list[Account], phoned: list[Decision],
                  report: RemindReport, rules: Rules) -> None:
    """In the run's writer transaction: close the open calls that expired (no outcome in time: their level's letter
    follows) or are no longer wanted (the patient paid, is on hold …), then list the night's phone steps
    (a call already listed that night by another run is left to it). Each one audited."""
    by_patient = {a.patient_id: a for a in accounts}
    for call in call_store.open_calls(conn):
        facts = CallFacts(call.level, call.listed_on, call.status, call.invoice_numbers)
        account = by_patient.get(call.patient_id)
        if call.listed_on >= as_of:
            continue
        status = ("expired" if call_expired(facts, as_of, rules) else
                  "cancelled" if account is None or not call_wanted(account, facts, as_of, rules) else None)
        if status and call_store.close_call(conn, call.call_id, status, as_of):
            report.calls_closed[call.call_id] = status
            append_event(conn, "call_" + status, {"call_id": call.call_id, "level": call.level},
                         patient_id=call.patient_id)
    listed = call_store.call_ids_of_day(conn, as_of)
    for decision in phoned:
        assert decision.level is not None and decision.template is not None, "a call has a level and a script"
        cid = call_id(as_of, decision.patient_id, decision.level)
        if cid in listed:
            continue
        call_store.insert_call(conn, call_store.StoredCall(
            cid, decision.patient_id, decision.level, as_of, decision.amount_due_cents, decision.template, "open",
            None, ()), [(i.invoice_number, int(i.amount_cents), level)
                        for i, level in zip(decision.items, decision.item_levels)])
        report.calls_listed.append(cid)
        append_event(conn, "call_listed", {"call_id": cid, "level": decision.level,
                                           "amount": decision.amount_due_cents,
                                           "invoices": [i.invoice_number for i in decision.items]},
                     patient_id=decision.patient_id)


def write_call_list(engine: Engine, as_of: date, out_dir: Path) -> Path | None:
    """The calls still to make after this night, as the desk's CSV (French Excel, inert, privacy-scanned):
    name, number, amount to ask, level and the script's name — never a care detail. None when there is none."""
    with engine.connect() as conn:
        calls = call_store.open_call_rows(conn)
    if not calls:
        return None
    rows = [[c.call_id, c.last_name, c.first_name, c.phone, Amount(c.amount_cents), c.level, c.script] for c in calls]
    path = out_dir / CALL_LIST_NAME
    out_dir.mkdir(parents=True, exist_ok=True)
    write_checked_csv(path, CALL_LIST_HEADER, rows, free_text=("nom", "prénom", "téléphone"), dialect=EXCEL_FR)
    record_files(engine, "call_list", [path], as_of=as_of, calls=len(rows))
    return path


def _make_letters(engine: Engine, settings: Settings, as_of: date, out_dir: Path, private: Path,
                  decisions: list[Decision], report: RemindReport, single_pdf: bool, rules: Rules) -> list[BatchPart]:
    """Each letter composed (HTML, text, e-mail, the print batch's parts: channels.compose, in worker processes),
    then written here into the run's `private` folder (named as they will be in out_dir, once moved); the batch's
    parts, laid out already, for _write_batches."""
    from recouvrement.channels.compose import LetterJob, compose
    creditor, known = _creditor(settings), known_texts(settings)
    with _stage(report, "read people"), engine.connect() as conn:
        people = stored.patients_frame(conn)
        reasons = rejection_reasons(conn, [i.invoice_number for d in decisions if d.template == "avis_rejet"
                                           for i in d.items])
    order: dict[str, int] = {}
    refused: dict[str, str] = {}
    made: dict[str, tuple[Decision, LetterView, tuple[str, str] | None]] = {}
    jobs = []
    with _stage(report, "views"):
        for decision in decisions:
            assert decision.level is not None, "a letter to send has a level"
            lid = letter_id(as_of, decision.patient_id, decision.level)
            order[lid] = len(order)
            view = letter_view(lid, as_of, creditor, people.loc[decision.patient_id], decision,
                               agency=settings.agency.name, reasons=_neutral_reasons(decision, reasons, rules))
            try:
                sms = _sms(settings, view, people.loc[decision.patient_id], known) if by_sms(decision.channel) \
                    else None
            except RecouvrementError as refusal:   # a leak, or no usable mobile: this one only
                refused[lid] = str(refusal)
                continue
            made[lid] = (decision, view, sms)
            jobs.append(LetterJob(view, by_email(decision.channel), is_postal(decision.channel)))
    # In letter id order: the print batch's order, so that the parts laid out chunk by chunk follow one another.
    jobs.sort(key=lambda job: job.view.letter_id)
    sender = settings.mail_sender() if any(job.email for job in jobs) else ""
    parts: list[BatchPart] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    folder = out_dir.resolve()
    with _stage(report, "compose and write"):
        for chunk in compose(jobs, sender, known):
            for letter in chunk.letters:
                if letter.refused is not None:
                    refused[letter.letter_id] = letter.refused
                    continue
                decision, view, sms = made[letter.letter_id]
                written = _write_letter(private, letter.letter_id, letter.html, letter.eml, decision, view.kind,
                                        single_pdf, known, sms, folder)
                report.letters.append(dataclasses.replace(written, rf_reference=view.payment_reference))
            if chunk.part is not None:
                parts.append(chunk.part)
            for name, seconds in chunk.cpu.items():
                report.worker_cpu[name] = report.worker_cpu.get(name, 0.0) + seconds
    report.letters.sort(key=lambda written: order[written.letter_id])
    report.errors.extend(refused[lid] for lid in sorted(refused, key=order.__getitem__))
    return parts


@contextlib.contextmanager
def _stage(report: RemindReport, name: str):
    """The wall and CPU time (this process only) of one step of the run, in report.stages."""
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        report.stages.append((name, time.perf_counter() - wall, time.process_time() - cpu))


def _creditor(settings: Settings):
    from recouvrement.render.views import Creditor
    c = settings.require_creditor()
    return Creditor(c.name, c.address, c.postal_code, c.city, c.phone, c.email, c.siret, c.iban, c.bic)


def _neutral_reasons(decision: Decision, reasons: dict[str, tuple[str, ...]], rules: Rules) -> str:
    """A notice's insurer reasons in the rules' neutral words, once each; those the rules do not list are
    left out (never copied: they could reveal care)."""
    if decision.template != "avis_rejet":
        return ""
    words = (neutral_reason(r, rules.reject_reasons.reasons) for i in decision.items
             for r in reasons.get(i.invoice_number, ()))
    return " ; ".join(dict.fromkeys(w for w in words if w))


def letter_view(lid: str, as_of: date, creditor, person, decision: Decision, *, agency: str = "",
                reasons: str = ""):
    """The whitelist view: identity and address, invoice numbers, dates, amounts, RF references, the rules'
    neutral words for an insurer's reason, the agency's name. Nothing else."""
    from recouvrement.render.views import LetterLine, LetterView
    assert decision.level is not None and decision.template is not None, "a letter to send has a level and a template"

    def line(item, level: int) -> LetterLine:
        return LetterLine(item.invoice_number, item.issue_date, item.due_date, int(item.amount_cents),
                          rf_reference(item.invoice_number), level)
    # The formal part at the letter's level, the credits deducted from it first; the rest "also due".
    lines = tuple(line(i, decision.level) for i in decision.formal_items)
    also_due = tuple(line(i, level) for i, level in decision.also_due)
    also_total = decision.amount_due_cents - decision.formal_due_cents
    recipient = recipient_of(person)
    shifted = next((i.shifted_from for i in decision.items if i.shifted_from), None)
    notice = decision.template == "avis_rejet"
    return LetterView(
        letter_id=lid, kind=decision.template, level=decision.level, date=as_of, creditor=creditor,
        recipient=recipient, patient_display_name=patient_name(person), lines=lines,
        payment_reference=letter_reference(lid), agency_name=agency, rejection_reason=reasons,
        credits_cents=sum(x.amount_cents for x in lines) - decision.formal_due_cents,
        total_due_cents=decision.formal_due_cents, offer_plan_first=decision.offer_plan_first,
        payer_rejected=_PAYERS.get(shifted or "", "votre assurance") if notice else None,
        also_due=also_due, also_due_total_cents=also_total,
        also_due_credits_cents=sum(x.amount_cents for x in also_due) - also_total,
        # The notice's deadline is the due date the ladder counts from afterwards (core.ladder).
        pay_within_days=min((x.due_date - as_of).days for x in lines)
        if notice or decision.level == PRE_DUE_LEVEL else 30)


def _sms(settings: Settings, view, person, known: tuple[str, ...]) -> tuple[str, str]:
    """(the patient's mobile, the SMS text), the text refused (PrivacyLeak, its content never echoed) if it
    says anything medical."""
    from recouvrement.channels.sms import sms_text
    mobile = recipient_mobile(person)
    if mobile is None:        # the ladder only asks for an SMS to a consenting mobile: a changed record
        raise RecouvrementError(f"{view.letter_id} : pas de mobile utilisable pour le SMS", field="phone")
    text_ = sms_text(creditor=view.creditor.name, phone=settings.sms_phone(), reference=view.payment_reference,
                     recipient=view.recipient.name)
    ensure_clean(text_, f"{view.letter_id}.sms", known=known)
    return mobile, text_


def _write_letter(into: Path, lid: str, html: str, message, decision: Decision, kind: str,
                  single_pdf: bool, known: tuple[str, ...] = (), sms: tuple[str, str] | None = None,
                  folder: Path | None = None) -> WrittenLetter:
    """The letter's files written into `into`, each named with its SHA-256 for the audit (audit.file_record's
    record) as it will be in `folder` (the output folder resolved, where they are moved once recorded)."""
    folder = folder or into.resolve()

    def put(name: str, data: bytes) -> dict:
        write_atomically(into / name, data)
        return {"path": str(folder / name), "sha256": hashlib.sha256(data).hexdigest()}
    files = [put(f"{lid}.html", html.encode("utf-8"))]
    document = files[0]
    if message is not None:
        files.append(put(f"{lid}.eml", message))
        if not is_postal(decision.channel):
            document = files[-1]
    if sms is not None:       # the text only (never the number): what the patient's phone shows
        files.append(put(f"{lid}.sms.txt", sms[1].encode("utf-8")))
        if not is_postal(decision.channel) and message is None:
            document = files[-1]
    if single_pdf and is_postal(decision.channel):
        files.append(put(f"{lid}.pdf", _checked_pdf(f"{lid}.pdf", html, known)))
    assert decision.level is not None and decision.channel is not None, "a letter to send has a level and a channel"
    return WrittenLetter(lid, decision.patient_id, tuple(i.invoice_number for i in decision.items), decision.level,
                         kind, decision.channel, decision.amount_due_cents, Path(document["path"]).name,
                         document["sha256"], decision, tuple(files), sms=sms)


def _checked_pdf(name: str, html: str, known: tuple[str, ...] = ()) -> bytes:
    from recouvrement.render.pdf import render_pdf
    pdf = render_pdf(html)
    ensure_clean(pdf_text(pdf, name), name, known=known)
    return pdf


def _batch_name(conn: Connection, as_of: date, folder: Path) -> str:
    """batch-<date>.pdf, or -2, -3 … when that name is recorded already or taken on disk."""
    taken = stored.print_batch_names(conn, as_of)
    name, n = f"batch-{as_of:%Y-%m-%d}.pdf", 1
    while name in taken or (folder / name).exists():
        n += 1
        name = f"batch-{as_of:%Y-%m-%d}-{n}.pdf"
    return name


def _record(conn: Connection, as_of: date, out_dir: Path, report: RemindReport, queue_emails: bool,
            queue_sms: bool = False) -> str | None:
    """Letters, their invoices, their print batch and one audit event each, in the run's writer transaction. A
    letter another run recorded meanwhile (two runs at once) is left to that run: it is not recorded, printed
    or sent a second time."""
    folder = out_dir.resolve()
    taken = stored.letter_ids_of_day(conn, as_of)
    report.already_recorded = sorted(set(report.already_recorded) | (taken & {w.letter_id for w in report.letters}))
    report.letters = [w for w in report.letters if w.letter_id not in taken]
    postal = [w for w in report.letters if is_postal(w.channel)]
    batch = _batch_name(conn, as_of, folder) if postal else None
    if batch:
        stored.insert_print_batch(conn, batch, as_of, str(folder), len(postal))
    # The night's letters in two statements and their events in one (one by one, 1.4 ms a letter: issue #16).
    stored.insert_letters(conn, [stored.NewLetter(
        letter_id=written.letter_id, patient_id=written.patient_id, level=written.level, kind=written.kind,
        channel=written.channel, as_of=as_of, amount_cents=written.amount_cents, sha256=written.sha256,
        file=written.file, folder=str(folder),
        status="queued" if queue_emails and by_email(written.channel) else "written",
        batch=batch if is_postal(written.channel) else None, rf_reference=written.rf_reference,
        items=[(item.invoice_number, int(item.amount_cents), level)
               for item, level in zip(written.decision.items, written.decision.item_levels)])
        for written in report.letters])
    for written in report.letters:
        if written.sms is not None:   # without [sms] settings: kept as written, not sent
            outboxes.insert_sms(conn, letter_id=written.letter_id, patient_id=written.patient_id, as_of=as_of,
                                phone=written.sms[0], text_=written.sms[1],
                                status="queued" if queue_sms else "written")
        if written.level == 0:
            stored.mark_transfers_notified(conn, as_of, written.invoice_numbers)
    append_events(conn, [Event("reminder", {"letter_id": written.letter_id, "level": written.level,
                                            "channel": written.channel, "amount": written.amount_cents,
                                            "sha256": written.sha256, "invoices": list(written.invoice_numbers),
                                            "files": list(written.files)},
                               patient_id=written.patient_id,
                               invoice_number=written.invoice_numbers[0] if len(written.invoice_numbers) == 1
                               else None)
                         for written in report.letters])
    return batch


def _write_batches(engine: Engine, report: RemindReport, known: tuple[str, ...] = (),
                   parts: Sequence[BatchPart] = (), own: tuple[str, int | None] | None = None) -> None:
    """Every recorded print batch not yet written (this run's, or one a killed run left), whatever its day.
    `parts`: this run's batch laid out already (channels.compose), used when it holds exactly the batch's letters.
    `own`: this run's batch and its lock (render.files.lock_beside), taken before its commit. Another run's batch
    is written only when its lock can be taken (its run is gone): a run still alive writes its own, and two runs
    never lay out the same batch at once."""
    with engine.connect() as conn:
        pending = stored.unwritten_batches(conn)
    members = {name: letters for name, _, letters in pending}
    mine = {w.letter_id for w in report.letters}
    try:
        for name, folder, _ in pending:
            path = Path(folder) / name
            lock = own[1] if own and own[0] == name else lock_beside(path, wait=False)
            if lock is None:
                continue
            try:
                laid_out = parts if [lid for part in parts for lid in part.letter_ids] == members[name] else ()
                if not path.exists() and not _write_batch(path, members[name], report, known, laid_out):
                    continue
                _mark_batch_written(engine, name, path)
            finally:
                unlock_beside(path, lock)
                if own and own[0] == name:
                    own = None
            if mine & set(members[name]):
                report.batch_pdf = path
    finally:
        if own and own[1] is not None:     # recorded, yet not among the pending (written meanwhile?): let go
            os.close(own[1])


def _write_batch(path: Path, letters: list[str], report: RemindReport, known: tuple[str, ...] = (),
                 parts: Sequence[BatchPart] = ()) -> bool:
    """The batch's letters, in letter id order, as one PDF; False (an error reported) when it cannot be.
    From its parts when given (each laid out and its text scanned in a worker), else laid out here from the
    letters' HTML files."""
    from recouvrement.render.pdf import concatenate_pdfs, page_ranges, render_batch_pdf
    if parts:
        findings, offset = [], 0
        for part in parts:
            findings += [Finding(f.line + offset, f.kind, f.excerpt) for f in part.findings]
            offset += part.lines
        try:
            refuse_findings(findings, path.name)
        except PrivacyLeak as leak:
            report.errors.append(str(leak))
            return False
        pdf = concatenate_pdfs([part.pdf for part in parts])
        ranges = page_ranges([count for part in parts for count in part.counts])
    else:
        try:
            htmls = [(path.parent / f"{lid}.html").read_text(encoding="utf-8") for lid in letters]
        except OSError as exc:
            report.errors.append(f"{path.name} : non écrit, une de ses lettres est illisible ({exc.strerror or exc})")
            return False
        pdf, ranges = render_batch_pdf(htmls)
        try:
            ensure_clean(pdf_text(pdf, path.name), path.name, known=known)
        except PrivacyLeak as leak:
            report.errors.append(str(leak))
            return False
    write_atomically(path, pdf)
    report.pages.update(zip(letters, ranges))
    return True


def _mark_batch_written(engine: Engine, name: str, path: Path) -> None:
    """Written (by this run, or by one killed just after writing it): never made again."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with writing(engine) as conn:
        if stored.mark_batch_written(conn, name, digest, datetime.now(timezone.utc).replace(microsecond=0)):
            append_event(conn, "letter_batch", {"name": name, "files": [file_record(path)]})


def write_manifest(engine: Engine, as_of: date, out_dir: Path) -> Path:
    """Every letter recorded for as_of, in letter id order: the same rows however many times the day runs."""
    with engine.connect() as conn:
        letters = stored.day_letters(conn, as_of)
        items = stored.day_letter_invoices(conn, as_of)
    invoices = items.groupby("letter_id")["invoice_number"].agg(" ".join).to_dict() if not items.empty else {}
    rows = [[lid, pid, invoices.get(lid, ""), int(level), channel, Amount(int(amount)), file]
            for lid, pid, level, channel, amount, file in letters.itertuples(index=False, name=None)]
    path = out_dir / "manifest.csv"
    write_checked_csv(path, MANIFEST_HEADER, rows)
    record_files(engine, "letters_manifest", [path], as_of=as_of, letters=len(rows))
    return path


# The day's accounts and the ladder's decisions on them (run_remind's read-and-decide step): on a big ledger, read
# and decided by two processes, each for a part of the patients.
#
# The step is Python work on every patient with money due: at 1M invoices, 137,887 accounts over 240,137 open
# invoices, 15 s of one core. The patients are independent there: each account is read from the patient's own open
# invoices, credits, queued money, letters, calls and segment, and only the money waiting in nobody's name is read
# for all (db.accounts.load_accounts on a range of patient ids). So on a SQLite file with many patients, a child
# process (its own connection, nothing shared) reads and decides the upper part of the patient ids while this process
# does the lower part, as before.
#
# The child is forked before this process opens the database (child_pool): it starts with every module imported, in
# milliseconds, where a spawned interpreter imported pandas, the store and this module again (1.2-1.9 s of the 1M
# night, on its critical path: the child's part, with its result to send back, ends last). A fork is safe only while no
# connection to the file is open in this process and no other thread runs (db.session.released_for_fork); otherwise
# (a connection checked out by the caller, the checkpoint behind a bulk commit still running, a test calling
# read_and_decide on its own connection) the child is spawned as before, once the split is known.
#
# The child's part counts only if it started from the ledger this process started from: the marks it read before
# its reads (payments and allocations, invoices files, holds, disputes, promises and the last audit event: every write
# moves one of them) must equal the ones run_remind read before its own. Otherwise, or if the child failed in any way
# (killed, out of memory, a database error), this process reads and decides that part itself: the result is what one
# process gives. A write during the reads is caught as before, when run_remind records (its marks read again under the
# writer lock). The parts join in patient order, so the decisions come in the order one process gives.

# From this many patients a child process takes a part of them (below, starting it costs more than it saves: a
# spawned interpreter imports pandas, the store and this module in about 1.5 s of CPU on the 2-core machine).
SPLIT_FROM_PATIENTS = 100_000
# The child's part of the open invoices (db.accounts.patient_split): a little less than half, for the time its
# result takes to come back (pickled there, sent, loaded here: 0.2-0.6 s after its part at 1M). Forked, at 1M, each
# part making its listing's lines too (dry run), at 0.47 the parts took as much CPU (6.80 / 6.90 / 6.55 in the child,
# 6.77 / 6.98 / 6.47 here) and the child's result came 0.2-1.1 s after the later one's end; at 0.45, 6.16 / 6.41 /
# 6.35 against 6.66 / 7.11 / 6.67: the child's part ends first by about what its result takes (machine loaded 2.4-4.9:
# walls meaningless). A spawned child started its part 1.9 s after this one.
CHILD_SHARE = 0.45


@dataclass
class DayAccounts:
    """What run_remind keeps of the step: the accounts it needs afterwards (every account of this process's part;
    of the child's, those with calls, which the run closes or keeps), the ladder's decisions with a letter, every
    exclusion of its decisions as (patient_id, invoice_number, code, reason), and the pre-due notices due (when
    enabled), each in patient order. Not the decisions without a letter: the child's 44k of 71.5k at 1M, each with its
    reason, made its result 10.6 MB to pickle and load where it is now 7.7 MB (dumps 0.44-0.56 -> 0.29-0.35 s, loads
    0.32-0.49 -> 0.25-0.38 s, on the critical path)."""
    accounts: list[Account]
    letters: list[Decision]
    exclusions: list[tuple[str, str | None, str, str]]
    pre_due: list[Decision]
    split_at: str | None = None        # the first patient id of the child's part, when a child took one
    child_counted: bool = False        # whether the child's part was used (else this process read it again)
    # A dry run's listings (render.listing), when asked: the lines of the letters, of the pre-due notices and of the
    # exclusions, each made in the process that decided them.
    listing: tuple[str, str, str] | None = None


def marks(conn: Connection) -> tuple:
    """Every mark a write moves (db.payments, db.eligibility), as run_remind reads them before the accounts."""
    return payments_mark(conn), invoices_mark(conn), pauses_mark(conn)


@contextlib.contextmanager
def child_pool(engine: Engine) -> Iterator[ProcessPoolExecutor | None]:
    """The pool of read_and_decide's child, its process forked now, before this process opens the database (see
    above); None when no child will take a part (a server database, fewer than SPLIT_FROM_PATIENTS patients) or a
    fork is not safe: read_and_decide then spawns one if it splits."""
    if sqlite_file(engine) is None:      # a server database: left to its own parallelism
        yield None
        return
    with engine.connect() as conn:
        many = patient_count(conn) >= SPLIT_FROM_PATIENTS
    if not many or not released_for_fork(engine):
        yield None
        return
    with _child_executor("fork") as pool:
        pool.submit(_started)       # the executor forks its process in its first submit
        yield pool


def _started() -> None:
    """The forked child's first task: nothing, the fork is what was wanted."""


def _child_executor(start: str) -> ProcessPoolExecutor:
    """The one-process pool of the child's part, its process started by `start` ('fork' or 'spawn') and ending
    with this one (_ends_with)."""
    return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context(start),
                               initializer=_ends_with, initargs=(os.getpid(),))


def _ends_with(parent: int) -> None:
    """In the child, before its part: killed when the process that started it ends (Linux's PR_SET_PDEATHSIG, sent
    when the thread that started it ends: run_remind's, which waits for the child's part anyway). A parent killed
    half-way (SIGKILL) left the child, once its part was decided, blocked for ever writing its result (7.7 MB at 1M)
    into a pipe nobody reads, some 500 MB held. The child only reads: nothing of it is left to undo."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:       # it ended before the line above
        os._exit(1)


_PR_SET_PDEATHSIG = 1       # linux/prctl.h


def read_and_decide(engine: Engine, conn: Connection, as_of: date, rules: Rules, read: tuple, *,
                    split_from: int | None = None, pool: ProcessPoolExecutor | None = None,
                    listing: bool = False) -> DayAccounts:
    """The day's accounts and decisions (see above: in two processes from `split_from` patients), this process's
    part read on `conn`; `read`: the marks (`marks`) read on it before. `pool`: child_pool's, forked before `conn`
    was opened; without it a child is spawned. `listing`: with a dry run's listings (DayAccounts.listing)."""
    first = _split_point(engine, conn, as_of, SPLIT_FROM_PATIENTS if split_from is None else split_from)
    if first is None:
        return _part(conn, as_of, rules, None, listing=listing)
    if pool is not None:
        lower, theirs = _in_two_processes(pool, engine, conn, as_of, rules, read, first, listing)
    else:
        with _child_executor("spawn") as spawned:
            lower, theirs = _in_two_processes(spawned, engine, conn, as_of, rules, read, first, listing)
    counted = theirs is not None
    if theirs is None:
        theirs = _part(conn, as_of, rules, (first, None), keep=_with_calls, listing=listing)
    return DayAccounts(lower.accounts + theirs.accounts, lower.letters + theirs.letters,
                       lower.exclusions + theirs.exclusions, lower.pre_due + theirs.pre_due,
                       split_at=first, child_counted=counted, listing=_joined(lower.listing, theirs.listing))


def _joined(lower: tuple[str, str, str] | None, upper: tuple[str, str, str] | None) -> tuple[str, str, str] | None:
    """The two parts' listings, each kind's lines in patient order (render.listing: a line is its row's alone)."""
    if lower is None or upper is None:
        return None
    return (lower[0] + upper[0], lower[1] + upper[1], lower[2] + upper[2])


def _in_two_processes(pool: ProcessPoolExecutor, engine: Engine, conn: Connection, as_of: date, rules: Rules,
                      read: tuple, first: str, listing: bool) -> tuple[DayAccounts, DayAccounts | None]:
    """(this process's part, below `first`; the child's, from `first`, or None when it does not count)."""
    url = engine.url.render_as_string(hide_password=False)
    upper = pool.submit(_child_part, url, as_of, rules, first, listing)
    lower = _part(conn, as_of, rules, (None, first), listing=listing)
    return lower, _child_result(upper, read)


def _split_point(engine: Engine, conn: Connection, as_of: date, split_from: int) -> str | None:
    """The first patient id of the child's part, or None to read in this process alone: a SQLite file with at least
    `split_from` patients."""
    if sqlite_file(engine) is None:      # a server database: left to its own parallelism
        return None
    return patient_split(conn, as_of, 1 - CHILD_SHARE, at_least=max(split_from, 2))


def _with_calls(account: Account) -> bool:
    return bool(account.calls)


def _everyone(account: Account) -> bool:
    return True


def _part(conn: Connection, as_of: date, rules: Rules, patients: PatientRange | None,
          keep=_everyone, listing: bool = False) -> DayAccounts:
    """One part's accounts (those `keep` keeps), decisions and pre-due notices, read in `conn`'s transaction; with
    their listings when asked."""
    accounts = load_accounts(conn, as_of, rules, patients)
    judged = [decide(account, as_of, rules) for account in accounts]
    pre_due = ([d for d in (pre_due_notice(a, as_of, rules) for a in accounts) if d.level is not None]
               if rules.ladder.pre_due.enabled else [])
    letters = [d for d in judged if d.level is not None]
    exclusions = [(d.patient_id, e.invoice_number, e.code, e.reason) for d in judged for e in d.exclusions]
    return DayAccounts([a for a in accounts if keep(a)], letters, exclusions, pre_due,
                       listing=_listing(letters, pre_due, exclusions) if listing else None)


def _listing(letters: list[Decision], pre_due: list[Decision],
             exclusions: list[tuple[str, str | None, str, str]]) -> tuple[str, str, str]:
    """A part's listings' lines (render.listing): made in the process that decided the part, where the command made
    them all once both parts were back (at 1M, 1.2-1.4 s of one core after the parts)."""
    return (listing_lines(letter_rows(letters)), listing_lines(letter_rows(pre_due)),
            listing_lines(exclusion_rows(exclusions)))


def _child_part(url: str, as_of: date, rules: Rules, first: str, listing: bool = False) -> tuple[tuple, DayAccounts]:
    """In the child: the upper part (with its listings when asked), and the marks read before it."""
    from recouvrement.db.session import open_engine

    gc.disable()        # hundreds of thousands of small objects, none in a cycle (memory.no_cycle_collection)
    engine = open_engine(url, migrate=False)
    try:
        with engine.connect() as conn:
            read = marks(conn)
            return read, _part(conn, as_of, rules, (first, None), keep=_with_calls, listing=listing)
    finally:
        engine.dispose()


def _child_result(future, own_marks: tuple) -> DayAccounts | None:
    """The child's part if it read the same ledger, else None (it failed, or a write came between the reads)."""
    try:
        read, part = future.result()
    except Exception:           # killed, out of memory, a database error there: this process reads the part again
        return None
    return part if read == own_marks else None
