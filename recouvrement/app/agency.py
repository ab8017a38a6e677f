"""Handover to the collection agency: the case export with its manifest, and the agency's returns.

Decisions where the brief was silent, documented once here:

* A case is one patient's debt formally demanded in their mise(s) en demeure: the invoices listed at the
  ladder's last level (letter_item.level; an invoice a mise en demeure lists apart as "also due" is not
  demanded by it), each only once its own mise en demeure is at least `after_level3_days` old
  (core.eligibility's level3_too_recent). Case id:
  ``AG-<yyyymmdd>-<patient_id>``. Letters count whether still 'written' or already 'sent': the
  letter's date is the day it went out. An e-mail still in the outbox ('queued', 'sending') or refused
  ('failed') has not gone out, unless it also went by post (channel 'both').
* Whether each invoice may be handed over on the day is core.eligibility's (action "hand_over", the rule
  the ladder and the plans read too, every fact judged on that day). A case goes as a whole or not at
  all: a refusal in core.eligibility.LEFT_OUT_OF_A_CASE (handed over already, nothing owed, time-barred,
  a share still awaited from an insurer, mise en demeure too recent) drops that invoice alone; any other
  (a dispute on one of its invoices, a hold on the patient, a plan of the patient accepted or awaiting its
  answer, a payment in the queue that may be theirs …) keeps the whole case in the building.
* Amount due = those open shares less every credit and every payment waiting in the patient's name
  (core.ledger.asked_cents, as the letters ask), and at least `min_amount_cents`.
* The file names the debtor (render.recipients.debtor_of): the guarantor who received the letters (a
  parent for a minor, a legal guardian), else the patient; a minor with no guarantor is never handed
  over (left out as `minor_without_guarantor`). The patient id stays, so the agency's returns match.
* Agency returns: each collected amount is a payment of payer_type 'agency', id
  ``AGENCY-<case_id>-<yyyymmdd>-<line>``, allocated here at once (rule 'agency', patient share, oldest
  invoice first, Code civil art. 1342-10); what exceeds the case's debt is a credit in the
  patient's name. The payment is stored reconciled, so the matching cascade never sees it.
  The case takes the status of its latest line (by date, then line); a 'collected' or 'partial' line is
  'collected' once nothing is left on the case, else 'partial' (the report never counts it as collected in
  full). 'plan_proposed' only shows on the case (its invoices are out of the ladder already); 'disputed' opens
  a complaint on each of its invoices in the register; 'uncollectable' writes off what the patient still owes
  on each (reason agency_uncollectable, as `write-off` does), booked in the FEC. A returned case goes back to
  the clinic's worklist (`returned_cases`) and never back into the ladder: its invoices stay in
  `handed_over_invoices`, like those of every case the agency ever had.
* The agency's commission on a collected line: the file's `commission_amount`, else the rules' rate
  (`commission_rate_bp`); stored apart (agency_commission) and booked 622/401 in the FEC, never owed by the
  patient.
* The file: one row per invoice, the case's columns repeated (EXPORT_COLUMNS; README "The agency file").
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, Engine

from recouvrement.db import agency as store
from recouvrement.db.agency import handed_over_invoices, returned_cases  # noqa: F401 (moved to the store)
from recouvrement.db.eligibility import decision_facts, queued_payment_patients
from recouvrement.db.patients import patient_row
from recouvrement.db.ledger import current_due_cents, load_snapshot
from recouvrement.db.session import writing
from recouvrement.importers.base import ImportReport
from recouvrement.render.recipients import debtor_of
from recouvrement.core.ledger import asked_cents, outstanding, patient_money
from recouvrement.core.eligibility import LEFT_OUT_OF_A_CASE, Action, Invoice, Refusal, refusals, time_barred_on
from recouvrement.audit import append_event, file_record, os_actor, text_digest
from recouvrement.db import books as books_store
from recouvrement.db import disputes as dispute_store
from recouvrement.db.disputes import disputed_invoices
from recouvrement.config import Settings
from recouvrement.core.privacy import redact, safe_file_name
from recouvrement.core.references import rf_reference
from recouvrement.errors import RecouvrementError
from recouvrement.importers.base import AMOUNT_TOO_LARGE, Reject
from recouvrement.money import format_plain
from recouvrement.render.csvfile import MASK, PLAIN, Amount, Dialect, csv_document
from recouvrement.render.files import write_atomically
from recouvrement.rules import Rules, by_email, is_postal, load_rules
from recouvrement.scanner import ensure_clean, known_texts

# One row per invoice of a case, the case's columns repeated on each (see the README, "Agency file").
CASE_COLUMNS = ["case_id", "patient_id", "last_name", "first_name", "address", "postal_code", "city", "amount_due",
                "creditor_reference"]
INVOICE_COLUMNS = ["invoice_number", "issue_date", "due_date", "invoice_amount", "invoice_paid", "invoice_remaining",
                   "time_barred_on", "letter_dates", "letter_references", "mise_en_demeure_date",
                   "mise_en_demeure_reference", "mise_en_demeure_sent_by", "mise_en_demeure_tracking"]
EXPORT_COLUMNS = CASE_COLUMNS + INVOICE_COLUMNS
# The debtor's cells come from outside (the practice software's export): masked on a line the scanner flags.
FREE_TEXT_COLUMNS = ("last_name", "first_name", "address", "postal_code", "city", "email", "phone")
LETTER_STATUSES = ("written", "sent")
TRACKING = re.compile(r"[A-Z0-9]{8,20}")      # a La Poste tracking number, spaces removed (1A 123 456 7890 1 …)


@dataclass(frozen=True)
class CaseInvoice:
    """One invoice of a case: the patient's share of it (with what insurers' rejections moved onto it), what
    was paid on it and what remains, on the day of the handover."""

    number: str
    issue_date: date
    due_date: date
    amount_cents: int
    paid_cents: int
    remaining_cents: int


@dataclass(frozen=True)
class Case:
    case_id: str
    patient_id: str
    lines: tuple[CaseInvoice, ...]          # oldest first
    amount_cents: int
    last_reminder: date

    @property
    def invoices(self) -> tuple[tuple[str, date], ...]:
        """(number, issue date) of each invoice, oldest first."""
        return tuple((line.number, line.issue_date) for line in self.lines)


@dataclass
class Eligibility:
    cases: list[Case] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)  # patient_id -> reason code


def agency_cases(engine: Engine, as_of: date, rules: Rules) -> Eligibility:
    """The cases to hand over on as_of, and why each other patient who got a mise en demeure stays."""
    result = Eligibility()
    with engine.connect() as conn:
        snapshot = load_snapshot(conn, as_of)
        shares = outstanding(snapshot, rejection_due_after_days=rules.ladder.rejection_notice.due_after_days)
        money = patient_money(snapshot, table=shares)
        patient_rows = shares[shares["payer_type"] == "patient"]
        open_patient = patient_rows[patient_rows["due_cents"] > 0]
        due = dict(zip(open_patient["invoice_number"], open_patient["due_cents"]))
        awaited = dict(zip(patient_rows["invoice_number"], patient_rows["awaited_cents"]))
        details = {row.invoice_number: row for row in open_patient.itertuples(index=False)}
        letters = store.final_letters(conn, as_of, rules.ladder.max_level)
        if letters.empty:
            return result
        queued = queued_payment_patients(conn, as_of, pd.DataFrame({
            "patient_id": open_patient["patient_id"], "amount_cents": open_patient["due_cents"].astype("int64"),
            "issue_date": open_patient["issue_date"].map(_day)}))
        facts = decision_facts(conn, as_of, queued=queued)
        for patient_id, group in letters.groupby("patient_id", sort=True):
            first_notice = group.groupby("invoice_number")["as_of"].min()
            issued = dict(zip(group["invoice_number"], group["issue_date"]))
            items = [Invoice(number, issued[number], int(due.get(number, 0)), int(awaited.get(number, 0)),
                             facts.disputes.get(number, ()), facts.handed_over_on.get(number), sent,
                             facts.patient(patient_id))
                     for number, sent in sorted(first_notice.items())]
            reason, case = _case(patient_id, items, max(group["as_of"]), as_of, rules, details, money)
            if case is None:
                result.left_out[patient_id] = reason
            else:
                result.cases.append(case)
    return result


def _day(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _case(patient_id: str, items: list[Invoice], last_reminder: date, as_of: date, rules: Rules,
          details: dict, money: pd.DataFrame) -> tuple[str, Case | None]:
    """(why not, None) or ("", the case): each invoice judged by core.eligibility, the case taken whole."""
    judged = [(item, refusals(item, Action.HAND_OVER, as_of, rules)) for item in items]
    ready = [(item, found) for item, found in judged if not _too_recent(found)]
    if not ready:
        return "level3_too_recent", None
    keeps_it_in = [found[0] for _, found in ready if found and found[0].code not in LEFT_OUT_OF_A_CASE]
    if keeps_it_in:
        return keeps_it_in[0].code, None
    live = [item for item, found in ready if not found]
    if not live:
        return _first_code([found[0] for _, found in ready]), None
    theirs = money.loc[patient_id] if patient_id in money.index else None
    amount = asked_cents((int(details[i.invoice_number].due_cents) for i in live),
                         int(theirs["credit_cents"]) if theirs is not None else 0,
                         int(theirs["pending_cents"]) if theirs is not None else 0)
    if amount < max(1, rules.agency.min_amount_cents):
        return "below_minimum", None
    lines = tuple(sorted((_case_invoice(details[i.invoice_number], i.issue_date) for i in live),
                         key=lambda line: (line.issue_date, line.number)))
    case_id = f"AG-{as_of:%Y%m%d}-{patient_id}"
    return "", Case(case_id, patient_id, lines, amount, last_reminder)


def _case_invoice(share, issued: date) -> CaseInvoice:
    """The patient's share of an invoice (a row of core.ledger.outstanding) as the agency file tells it."""
    amount = int(share.expected) + int(share.moved_in) - int(share.moved_out)
    return CaseInvoice(share.invoice_number, issued, _day(share.due_date), amount, int(share.paid),
                       int(share.due_cents))


def _too_recent(found: tuple[Refusal, ...]) -> bool:
    """Not yet the agency's: its mise en demeure is too recent (its other refusals do not count yet)."""
    return any(r.code in ("no_mise_en_demeure", "level3_too_recent") for r in found)


def _first_code(found: list[Refusal]) -> str:
    """The reason reported when every invoice was left out alone: the one most of them had."""
    codes = [r.code for r in found]
    return max(dict.fromkeys(codes), key=codes.count)


@dataclass(frozen=True)
class HandoverReport:
    cases: int
    total_cents: int
    file: Path | None
    manifest: Path | None
    left_out: dict[str, str]
    rows: int = 0                 # lines of the file: one per invoice
    masked: int = 0               # lines whose debtor cells the privacy scanner masked

    @property
    def below_minimum(self) -> int:
        """Patients whose case stays in the building: under rules/agency.toml's min_amount_cents."""
        return sum(1 for reason in self.left_out.values() if reason == "below_minimum")


def export_agency(engine: Engine, settings: Settings | None, as_of: date, path: Path, *, rules: Rules | None = None,
                  now: datetime | None = None, dialect: Dialect = PLAIN,
                  actor: str | None = None) -> HandoverReport:
    """Write the new cases (CSV + manifest), record them as handed over; nothing new writes nothing.

    The manifest names the creditor from `settings` ([creditor]: name, SIRET, address); without settings
    those fields are empty. An existing file is never overwritten: RecouvrementError.
    The cases and the file's content are recorded first (under the writer lock, so two exports at once
    never hand a case over twice), the files written after: an export killed in between is finished by
    the next one (`finish_exports`), never made again with the same cases.
    """
    rules = rules or (settings.rules() if settings is not None else load_rules())
    now = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    finish_exports(engine)
    found = agency_cases(engine, as_of, rules)
    if not found.cases:
        return HandoverReport(0, 0, None, None, found.left_out)
    manifest_path = path.with_name(path.name + ".manifest.json")
    if path.exists() or manifest_path.exists():
        raise RecouvrementError("existe déjà : un fichier pour l'agence n'est jamais écrasé, choisir un autre nom",
                                file=str(path))
    with writing(engine) as conn:
        handed = handed_over_invoices(conn)    # under the writer lock: another export may have just taken them
        cases = [c for c in found.cases if not any(n in handed for n, _ in c.invoices)]
        if not cases:
            return HandoverReport(0, 0, None, None, found.left_out)
        header, rows = _rows(conn, cases, as_of, rules)
        document, masked = _document(path.name, header, rows, dialect)
        digest = hashlib.sha256(document).hexdigest()
        total = sum(c.amount_cents for c in cases)
        for case in cases:
            _store_case(conn, case, as_of, now, actor)
        head = append_event(conn, "agency_export", {
            "file": path.name, "sha256": digest, "as_of": as_of, "rows": len(rows), "total_cents": total,
            "cases": [c.case_id for c in cases], "files": [file_record(path, document)]}, at=now, actor=actor)
        manifest = {"file": path.name, "row_count": len(rows), "case_count": len(cases), "total_cents": total,
                    "total": format_plain(total), "sha256": digest, "as_of": as_of.isoformat(),
                    "created_at": now.isoformat(), "creditor": creditor_identity(settings),
                    "columns": header, "audit_head": head}
        manifest_text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
        ensure_clean(manifest_text, manifest_path.name, known=known_texts(settings))
        # The manifest carries the head of the export's event, so its own digest is in the next event.
        append_event(conn, "agency_manifest", {"file": manifest_path.name,
                                               "files": [file_record(manifest_path, manifest_text.encode("utf-8"))]},
                     at=now, actor=actor)
        store.insert_export(conn, str(path.resolve()), as_of, digest, document, manifest_text)
    finish_exports(engine)
    return HandoverReport(len(cases), total, path, manifest_path, found.left_out, len(rows), masked)


def creditor_identity(settings: Settings | None) -> dict[str, str]:
    """Who the agency collects for, as the manifest names them (the settings' [creditor])."""
    creditor = settings.creditor if settings is not None else None
    return {key: getattr(creditor, key, "") or "" for key in ("name", "siret", "address", "postal_code", "city")}


def _document(name: str, header: list[str], rows: list[list], dialect: Dialect) -> tuple[bytes, int]:
    """The CSV's bytes (render.csvfile: privacy-scanned, debtor cells masked where the scanner flags a line)
    and how many lines were masked."""
    free = tuple(c for c in FREE_TEXT_COLUMNS if c in header)
    document = csv_document(name, header, rows, dialect=dialect, free_text=free)
    written = csv.reader(io.StringIO(document.decode(dialect.encoding)), delimiter=dialect.delimiter)
    return document, sum(1 for row in written if MASK in row)


def finish_exports(engine: Engine) -> list[Path]:
    """Write every recorded agency file not yet marked written (this export's, or one a killed export left),
    then mark it; a file already there with the recorded content is kept as it is."""
    with engine.connect() as conn:
        pending = store.pending_exports(conn)
    done = []
    for where, digest, data, manifest in pending:
        path = Path(where)
        if not (path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == digest):
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, data)
        write_atomically(path.with_name(path.name + ".manifest.json"), manifest)
        with writing(engine) as conn:
            store.mark_export_written(conn, where, datetime.now(timezone.utc).replace(microsecond=0))
        done.append(path)
    return done


def _rows(conn: Connection, cases: list[Case], as_of: date, rules: Rules) -> tuple[list[str], list[list]]:
    """One row per invoice of each case, the case's columns repeated; contact columns only as the rules allow."""
    allowed = {"email": rules.agency.allow_email, "phone": rules.agency.allow_phone}
    contact = [column for column, yes in allowed.items() if yes]
    header = EXPORT_COLUMNS + contact
    numbers = [n for case in cases for n, _ in case.invoices]
    letters: dict[str, list[store.LetterSent]] = {}
    for sent in store.letters_listing(conn, numbers, as_of):
        letters.setdefault(sent.invoice_number, []).append(sent)
    rows = []
    for case in cases:
        person = debtor_of(patient_row(conn, case.patient_id))
        head = [case.case_id, case.patient_id, person["last_name"], person["first_name"], person["address"],
                person["postal_code"], person["city"], Amount(case.amount_cents), rf_reference(case.invoices[0][0])]
        for line in case.lines:
            rows.append([*head, *_invoice_cells(line, letters.get(line.number, []), rules),
                         *(person[c] for c in contact)])
    return header, rows


def _invoice_cells(line: CaseInvoice, letters: list[store.LetterSent], rules: Rules) -> list:
    """The invoice's columns: its amounts and dates, the letters that claimed it and its mise en demeure."""
    def reference(sent: store.LetterSent) -> str:
        return sent.rf_reference or rf_reference(line.number)   # older letters printed the invoice's own
    final = [sent for sent in letters if sent.level >= rules.ladder.max_level]
    demand = final[0] if final else None
    return [line.number, line.issue_date.isoformat(), line.due_date.isoformat(), Amount(line.amount_cents),
            Amount(line.paid_cents), Amount(line.remaining_cents),
            time_barred_on(line.issue_date, rules).isoformat(),
            " ".join(sent.day.isoformat() for sent in letters), " ".join(reference(sent) for sent in letters),
            demand.day.isoformat() if demand else "", reference(demand) if demand else "",
            sent_by(demand) if demand else "", (demand.registered_tracking or "") if demand else ""]


def sent_by(letter: store.LetterSent) -> str:
    """How a letter went out, in French: by post (registered once its tracking number is recorded), and by
    e-mail too only once the SMTP server accepted it.

    >>> from dataclasses import replace
    >>> from datetime import date
    >>> sent = store.LetterSent("F1", "L1", date(2025, 4, 1), 3, None, "both", "sent")
    >>> sent_by(sent), sent_by(replace(sent, status="failed", registered_tracking="1A12345678901"))
    ('courrier + e-mail', 'lettre recommandée')
    """
    post = ("lettre recommandée" if letter.registered_tracking else "courrier") if is_postal(letter.channel) else ""
    email = "e-mail" if by_email(letter.channel) and letter.status == "sent" else ""
    return " + ".join(part for part in (post, email) if part)


def record_registered_post(engine: Engine, letter_id: str, tracking: str, *, now: datetime | None = None,
                           actor: str | None = None) -> str:
    """Record that a postal letter also went by registered post, with its tracking number (audited); the agency
    file then gives it for that mise en demeure. Returns the number as stored (upper case, no spaces)."""
    number = re.sub(r"[\s.-]", "", tracking or "").upper()
    if not TRACKING.fullmatch(number):
        raise RecouvrementError("numéro de suivi La Poste attendu : 8 à 20 lettres ou chiffres", field="TRACKING")
    now = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    with writing(engine) as conn:
        found = store.postal_letter(conn, letter_id)
        if found is None:
            raise RecouvrementError(f"courrier inconnu {letter_id!r}", field="LETTER_ID")
        patient_id, channel, known = found
        if not is_postal(channel):
            raise RecouvrementError(f"le courrier {letter_id} est parti par e-mail seulement : pas de recommandé",
                                    field="LETTER_ID")
        if known == number:
            return number
        if known is not None:
            raise RecouvrementError(f"le courrier {letter_id} a déjà le numéro de suivi {known}", field="TRACKING")
        store.set_registered_tracking(conn, letter_id, number)
        append_event(conn, "registered_post", {"letter_id": letter_id, "tracking": number},
                     patient_id=patient_id, at=now, actor=actor)
    return number


def _store_case(conn: Connection, case: Case, as_of: date, now: datetime, actor: str | None) -> None:
    numbers = " ".join(n for n, _ in case.invoices)
    store.insert_case(conn, case.case_id, case.patient_id, as_of, case.amount_cents, tuple(n for n, _ in case.invoices))
    append_event(conn, "agency_handover", {"case_id": case.case_id, "amount_cents": case.amount_cents,
                                           "invoices": numbers.split()}, patient_id=case.patient_id,
                 invoice_number=numbers if len(case.invoices) == 1 else None, at=now, actor=actor)


# -- the agency's returns ------------------------------------------------------------------------------

RETURN_COLUMNS = ["case_id", "date", "collected_amount", "status"]
RETURN_OPTIONAL = ["note", "commission_amount"]
RETURN_STATUSES = ("collected", "partial", "plan_proposed", "disputed", "uncollectable", "closed", "returned")
COLLECTING = ("collected", "partial")          # statuses that need a collected amount


@dataclass(frozen=True)
class ReturnLine:
    line: int
    case_id: str
    day: date
    cents: int
    status: str
    note: str
    commission_cents: int | None = None       # the file's commission on the line; None: the rules' rate


def _return_records(path: Path) -> tuple[pd.DataFrame, list[Reject], list[str]]:
    """The records of a returns CSV as text cells with their `source_line`, read record by record (the file
    is human-sized): a record whose cells do not fit the header is refused alone, with its line, and the
    others are kept. Only a file that cannot be read at all, or lacks a column, is refused whole."""
    from recouvrement.importers.tabular import detect_dialect
    data = path.read_bytes()
    dialect = detect_dialect(path, data)
    try:
        content = data.decode(dialect.encoding)
    except UnicodeDecodeError:
        raise RecouvrementError(f"illisible comme texte {dialect.encoding}", file=path.name) from None
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=dialect.separator)
    header, records, rejects, previous = None, [], [], 0
    try:
        for record in reader:
            line, previous = previous + 1, reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            if header is None:
                header = [cell.strip().lower() for cell in record]
                continue
            cells = [cell.strip() for cell in record]
            while len(cells) > len(header) and not cells[-1]:
                cells.pop()                                   # trailing separators are harmless
            if len(cells) != len(header):
                rejects.append(Reject(path.name, line, "line", f"{len(cells)} cellules là où l'en-tête en a "
                                                               f"{len(header)} : ligne illisible"))
                continue
            records.append([*cells, line])
    except csv.Error as error:
        raise RecouvrementError(f"illisible comme fichier CSV : {error}", file=path.name, line=previous + 1) from None
    header = header or []
    missing = [c for c in RETURN_COLUMNS if c not in header]
    if missing:
        raise RecouvrementError(f"colonne(s) manquante(s) : {', '.join(missing)}", file=path.name, line=1)
    known = set(RETURN_COLUMNS) | set(RETURN_OPTIONAL)
    warnings = [f"{path.name}:1: colonne inconnue {c!r} ignorée" for c in header if c not in known]
    raw = pd.DataFrame(records, columns=[*header, "source_line"])
    for column in RETURN_OPTIONAL:
        if column not in raw.columns:
            raw[column] = ""
    return raw[[*RETURN_COLUMNS, *RETURN_OPTIONAL, "source_line"]], rejects, warnings


def read_returns(path: Path) -> tuple[list[ReturnLine], list[Reject], list[str], int]:
    """(valid lines, refused lines, warnings, rows read) of an agency returns CSV; no database."""
    from recouvrement.importers.tabular import parse_dates
    from recouvrement.money import MAX_LINE_CENTS, AmountError, parse_amount
    raw, rejects, warnings = _return_records(path)
    read = len(raw) + len(rejects)
    days, bad_days = parse_dates(raw["date"]) if len(raw) else (pd.Series(dtype=str), pd.Series(dtype=bool))
    lines = []
    for k, row in enumerate(raw.itertuples(index=False)):
        where = (path.name, int(row.source_line))
        try:
            cents = parse_amount(row.collected_amount) if row.collected_amount else 0
        except AmountError:
            cents = None
        try:
            commission = parse_amount(row.commission_amount) if row.commission_amount else None
            bad_commission = False
        except AmountError:
            commission, bad_commission = None, True
        problem = (("case_id", "vide") if not row.case_id else
                   ("date", f"pas une date (attendu jj/mm/aaaa ou aaaa-mm-jj) : {row.date!r}") if bad_days.iloc[k] else
                   ("collected_amount", f"pas un montant en euros : {row.collected_amount!r}") if cents is None else
                   ("collected_amount", "montant négatif") if cents < 0 else
                   ("collected_amount", AMOUNT_TOO_LARGE) if cents > MAX_LINE_CENTS else
                   ("status", f"doit valoir {', '.join(RETURN_STATUSES)} ; trouvé {row.status!r}")
                   if row.status.lower() not in RETURN_STATUSES else
                   ("collected_amount", f"une ligne '{row.status.lower()}' demande un montant supérieur à zéro")
                   if row.status.lower() in COLLECTING and cents == 0 else
                   ("commission_amount", f"pas un montant en euros : {row.commission_amount!r}") if bad_commission else
                   ("commission_amount", "montant négatif") if commission is not None and commission < 0 else
                   ("commission_amount", "supérieure au montant encaissé sur la ligne")
                   if commission is not None and commission > cents else None)
        if problem:
            rejects.append(Reject(*where, *problem))
        else:
            assert cents is not None, "no problem: the amount was read"
            lines.append(ReturnLine(where[1], row.case_id, date.fromisoformat(days.iloc[k]), cents,
                                    row.status.lower(), row.note, commission))
    return lines, rejects, warnings, read


def import_agency_returns(engine: Engine, path: Path, now: datetime | None = None, *, rules: Rules | None = None,
                          actor: str | None = None) -> ImportReport:
    """Store the agency's returns in one transaction: good lines are applied, bad ones refused with their line."""
    if not path.is_file():
        raise RecouvrementError("fichier introuvable", file=str(path))
    rules = rules or load_rules()
    now = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    lines, rejects, warnings, read = read_returns(path)
    report = ImportReport(safe_file_name(path.name), "agency_returns_csv", "agency_returns", read,
                          warnings=[redact(w) for w in warnings])
    with writing(engine) as conn:
        for line in sorted(lines, key=lambda x: (x.day, x.line)):
            refused = _apply_return(conn, path.name, line, now, rules, actor)
            if refused is None:
                report.imported += 1
            elif isinstance(refused, Reject):
                rejects.append(refused)
            else:                                   # "duplicate"
                report.duplicates += 1
        report.rejects = sorted(rejects)
        if report.imported:
            _record_batch(conn, path, report, now)
    return report


def _apply_return(conn: Connection, file: str, line: ReturnLine, now: datetime, rules: Rules,
                  actor: str | None) -> Reject | str | None:
    case = store.case(conn, line.case_id)
    if case is None:
        return Reject(file, line.line, "case_id", f"dossier inconnu {line.case_id!r} : ce n'est pas un dossier confié à l'agence")
    if line.day < case.handed_on:
        return Reject(file, line.line, "date", f"antérieure à la remise du dossier à l'agence ({case.handed_on.isoformat()})")
    line_id = f"AGENCY-{line.case_id}-{line.day:%Y%m%d}-{line.line}"
    known = store.payment_day_and_amount(conn, line_id)
    if known is not None and known != (line.day, line.cents):
        return Reject(file, line.line, "collected_amount", f"déjà importée avec un autre montant ({line_id})")
    if line_id in store.applied_return_lines(conn, case.patient_id):
        return "duplicate"
    if line.cents:
        _collect(conn, case, line_id, line, file, now)
        _book_commission(conn, line_id, line, rules)
    if line.status == "disputed":
        _open_disputes(conn, case, line, now, actor)
    elif line.status == "uncollectable":
        _write_off(conn, case, line, now, actor)
    _update_status(conn, case, line, line_id, now)
    return None


def _book_commission(conn: Connection, line_id: str, line: ReturnLine, rules: Rules) -> None:
    """The agency's commission on what it collected on the line: the file's amount, else the rules' rate (rounded
    half up to the cent). The clinic's expense, booked in the FEC; never added to what the patient owes."""
    rate = None if line.commission_cents is not None else rules.agency.commission_rate_bp
    cents = line.commission_cents if line.commission_cents is not None else (line.cents * (rate or 0) + 5000) // 10000
    if cents > 0:
        store.insert_commission(conn, line_id, line.case_id, line.day, cents, rate)


def _open_disputes(conn: Connection, case: store.CaseRow, line: ReturnLine, now: datetime, actor: str | None) -> None:
    """The debtor disputes the debt before the agency: each of the case's invoices enters the complaints register
    (received the day of the line, answer due within 60 days), which stops every chase of it."""
    already = disputed_invoices(conn)
    reason = f"contestation transmise par l'agence de recouvrement (dossier {line.case_id})"
    for number in case.invoice_numbers:
        if number in already:
            continue
        answer_due = line.day + timedelta(days=dispute_store.ANSWER_DAYS)
        dispute_id = dispute_store.insert_dispute(conn, number, line.day, "letter", "other", reason, answer_due)
        dispute_store.insert_note(conn, dispute_id, "open", "", now.replace(tzinfo=None))
        append_event(conn, "dispute_open", {"dispute_id": dispute_id, "received_on": line.day, "channel": "letter",
                                            "category": "other", "answer_due": answer_due,
                                            "reason_sha256": text_digest(reason), "case_id": line.case_id},
                     patient_id=case.patient_id, invoice_number=number, at=now, actor=actor)


def _write_off(conn: Connection, case: store.CaseRow, line: ReturnLine, now: datetime, actor: str | None) -> None:
    """The agency returns the case as uncollectable: what the patient still owes on each of its invoices is written
    off (reason agency_uncollectable, the write-off path of app.write_offs), on the line's day; booked in the FEC."""
    for number in case.invoice_numbers:
        due = current_due_cents(conn, number, "patient") or 0
        if due <= 0:
            continue
        by = actor or os_actor()
        write_off_id = books_store.insert_write_off(
            conn, invoice_number=number, patient_id=case.patient_id, payer_type="patient", amount_cents=due,
            reason="agency_uncollectable", note=f"dossier {line.case_id}", written_off_on=line.day, written_off_by=by)
        append_event(conn, "write_off", {"write_off_id": write_off_id, "amount_cents": due,
                                         "reason": "agency_uncollectable", "written_off_on": line.day,
                                         "case_id": line.case_id},
                     patient_id=case.patient_id, invoice_number=number, at=now, actor=actor)


def _collect(conn: Connection, case: store.CaseRow, payment_id: str, line: ReturnLine, file: str,
             now: datetime) -> None:
    """The agency's payment, allocated to the case's patient shares oldest invoice first; the excess is a credit."""
    store.insert_agency_payment(conn, payment_id, line.day, line.cents, line.case_id, file, line.line)
    left = line.cents
    for number in store.oldest_first(conn, case.invoice_numbers):
        part = min(left, current_due_cents(conn, number, "patient") or 0)
        if part <= 0:
            continue
        store.insert_agency_allocation(conn, payment_id, number, part, now.replace(tzinfo=None))
        left -= part
        if left == 0:
            break
    if left:
        store.insert_credit(conn, payment_id, left, case.patient_id,
                            f"collected by the agency beyond case {line.case_id}: a credit to refund or use")


def _update_status(conn: Connection, case: store.CaseRow, line: ReturnLine, line_id: str, now: datetime) -> None:
    latest = case.updated_on or case.handed_on
    status = line.status
    if status in COLLECTING:
        status = "collected" if _fully_collected(conn, case) else "partial"
    if line.day >= latest:  # an older line re-imported never undoes a later status
        store.set_case_status(conn, line.case_id, status, line.day)
    append_event(conn, "agency_return", {"case_id": line.case_id, "date": line.day, "status": status,
                                         "collected_cents": line.cents, "line_id": line_id,
                                         "payment_id": line_id if line.cents else None,
                                         "note": _clean_note(line.note),
                                         "invoices": list(case.invoice_numbers)},
                 patient_id=case.patient_id, at=now)



def _fully_collected(conn: Connection, case: store.CaseRow) -> bool:
    """The agency brought the whole case in, or nothing is left to pay on its invoices (the patient may
    also have paid the clinic directly); anything less is a partial collection, never counted as whole."""
    if store.collected_cents(conn, case.case_id) >= case.amount_cents:
        return True
    return all((current_due_cents(conn, n, "patient") or 0) <= 0 for n in case.invoice_numbers)


def _clean_note(note: str) -> str:
    """The agency's note, masked whole if the privacy scanner finds anything medical in it."""
    from recouvrement.core.privacy import scan_text
    return MASK if note and scan_text(note) else note


def _record_batch(conn: Connection, path: Path, report: ImportReport, now: datetime) -> None:
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    store.insert_returns_batch(conn, report.file, sha, now.replace(tzinfo=None), report.rows_read, report.imported,
                               report.duplicates, len(report.rejects))
    append_event(conn, "import", {"file": report.file, "sha256": sha, "kind": "agency_returns", "format": "csv",
                                  "imported": report.imported, "duplicates": report.duplicates,
                                  "rejected": len(report.rejects)}, at=now)
