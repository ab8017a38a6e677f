"""The accountant's report: one self-contained HTML page (French) on receivables, queue, disputes, letters.

Definitions (also printed in the page):
- DSO (délai moyen de recouvrement) = receivables at the end of as_of / amount billed over the 90
  days ending on as_of × 90 days. Receivables: every share (AMO, AMC, patient) still due.
- Collection rate (taux d'encaissement) = collected / billed for the invoices issued during the 90 days
  that end 30 days before as_of (invoices that had at least 30 days to be paid); collected: what
  payments dated up to as_of settled on those invoices, all payers together.
Only counts and amounts are shown, invoice numbers for disputes: no patient name, no payer name of a
bank credit, no free text; the page is privacy-scanned before it is written.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from sqlalchemy import Engine

from recouvrement.db.ledger import BUCKETS, aged_balance
from recouvrement.render.files import write_atomically
from recouvrement.audit import record_files, verify
from recouvrement.config import Settings
from recouvrement.db import report as stored
from recouvrement.db.outbox import outbox_counts, sms_counts
from recouvrement.db.runs import latest_runs
from recouvrement.money import format_eur

TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates" / "report"
DSO_DAYS = 90
RATE_DAYS, RATE_LAG = 90, 30
DISPUTE_TARGET_DAYS = 60
LETTERS_WINDOW = 30
BUCKET_COLOURS = ("#8fbcdb", "#3f7fb5", "#e39b3b", "#b8412f")
PAYER_LABELS = {"amo": "Assurance Maladie (AMO)", "amc": "Mutuelles (AMC)", "patient": "Patients (reste à charge)"}
CALL_LABELS = {"open": "À appeler", "reached": "Patient joint", "promise": "Promesse de paiement",
               "dispute": "Contestation", "wrong_number": "Faux numéro (le courrier suit)",
               "expired": "Sans issue à temps (le courrier suit)", "cancelled": "Retirés de la liste (payé, suspendu…)"}
LEVEL_LABELS = {-1: "Avis avant échéance", 0: "Avis de rejet", 1: "Relance 1", 2: "Relance 2", 3: "Mise en demeure"}
EXCEPTION_LABELS = {"unmatched": "Paiements non rapprochés", "ambiguous": "Paiements ambigus",
                    "credit": "Avoirs / trop-perçus", "clawback": "Reprises d'assureur à vérifier"}
PLAN_LABELS = {"proposed": "Proposés", "lapsed": "Restés sans réponse", "active": "En cours (tenus)",
               "completed": "Soldés", "broken": "Rompus", "cancelled": "Annulés"}
AGENCY_LABELS = {"handed_over": "Transmis", "partial": "Recouvrés en partie", "collected": "Recouvrés en totalité",
                 "plan_proposed": "Échéancier proposé par le débiteur", "disputed": "Contestés (registre des réclamations)",
                 "uncollectable": "Irrécouvrables (passés en non-valeur)", "closed": "Clos", "returned": "Retournés"}


@dataclass(frozen=True)
class BalanceRow:
    label: str
    group: str                     # type | mutuelle
    buckets: tuple[int, ...]       # cents per age bucket
    total: int


@dataclass
class ReportData:
    as_of: date
    balance: list[BalanceRow] = field(default_factory=list)
    receivables: int = 0
    billed_90: int = 0
    dso_days: float | None = None
    rate_from: date | None = None
    rate_to: date | None = None
    rate_billed: int = 0
    rate_collected: int = 0
    exceptions: list[tuple[str, int, int]] = field(default_factory=list)       # label, count, cents
    disputes: list[dict] = field(default_factory=list)
    letters: list[tuple[str, int, int, int]] = field(default_factory=list)   # label, as_of, window, cents
    calls: list[tuple[str, int, int, int]] = field(default_factory=list)     # status label, listed as_of, window, cents
    plans: list[tuple[str, int, int]] = field(default_factory=list)
    agency: list[tuple[str, int, int, int]] = field(default_factory=list)   # label, cases, handed over, collected
    agency_today: int = 0
    agency_commission: int = 0     # cents of commission the agency took on what it collected (the clinic's expense)
    runs: list[dict] = field(default_factory=list)
    emails_queued: int = 0         # still in the outbox (server unreachable, run killed mid-send)
    emails_failed: int = 0         # refused by the server for good: a person looks at them
    sms_queued: int = 0            # SMS still in their outbox (provider unreachable, run killed mid-send)
    sms_failed: int = 0            # refused by the provider: a person looks at them
    audit_events: int = 0
    audit_head: str = ""
    audit_ok: bool = True

    @property
    def collection_rate(self) -> float | None:
        return self.rate_collected / self.rate_billed if self.rate_billed else None


def dso(receivables: int, billed: int, days: int = DSO_DAYS) -> float | None:
    """Days sales outstanding; None when nothing was billed over the period."""
    return receivables * days / billed if billed > 0 else None


# ---------------------------------------------------------------- the figures

def _balance(engine: Engine, as_of: date) -> list[BalanceRow]:
    with engine.connect() as conn:
        table = aged_balance(conn, as_of)
    rows = []
    for key in ("type:amo", "type:amc", "type:patient"):
        values = table.loc[key].tolist() if key in table.index else [0] * (len(BUCKETS) + 1)
        rows.append(BalanceRow(PAYER_LABELS[key[5:]], "type", tuple(int(v) for v in values[:-1]), int(values[-1])))
    mutuelles = sorted((k for k in table.index if k.startswith("mutuelle:")), key=lambda k: -int(table.loc[k, "total"]))
    for key in mutuelles:
        values = table.loc[key].tolist()
        rows.append(BalanceRow(key.split(":", 1)[1], "mutuelle", tuple(int(v) for v in values[:-1]), int(values[-1])))
    return rows


def _ordered(found: dict, labels: dict) -> list[tuple]:
    """(label, *values) of each key found: the labelled keys in the labels' order, then the others."""
    ordered = [k for k in labels if k in found] + sorted(k for k in found if k not in labels)
    return [(labels.get(k, str(k)), *found[k]) for k in ordered]


def _today_and_window(by_key, conn, as_of: date, labels: dict) -> list[tuple[str, int, int, int]]:
    """(label, count of as_of, count over the window, cents over the window) of `by_key(conn, after, through)`."""
    today = {label: n for label, n, _ in _ordered(by_key(conn, as_of - timedelta(days=1), as_of), labels)}
    return [(label, today.get(label, 0), n, cents) for label, n, cents in
            _ordered(by_key(conn, as_of - timedelta(days=LETTERS_WINDOW), as_of), labels)]


def _disputes(conn, as_of: date) -> list[dict]:
    out = []
    for dispute_id, invoice, received, category, status in stored.open_disputes(conn, as_of):
        age = (as_of - received).days
        out.append({"id": dispute_id, "invoice": invoice, "received": received, "age": age, "category": category,
                    "status": status, "late": age > DISPUTE_TARGET_DAYS,
                    "width": min(age, 2 * DISPUTE_TARGET_DAYS) * 100 // (2 * DISPUTE_TARGET_DAYS)})
    return out


def _runs(conn) -> list[dict]:
    return [{"id": r.id, "as_of": str(r.as_of), "status": r.status, "started": _minute(r.started_at),
             "ended": _minute(r.ended_at) if r.ended_at else ""} for r in latest_runs(conn, 7)]


def _minute(moment) -> str:
    """yyyy-mm-dd hh:mm of a UTC time."""
    return moment.strftime("%Y-%m-%d %H:%M")


def report_data(engine: Engine, as_of: date) -> ReportData:
    data = ReportData(as_of, balance=_balance(engine, as_of))
    data.receivables = sum(row.total for row in data.balance if row.group == "type")
    since = as_of - timedelta(days=DSO_DAYS)
    data.rate_to = as_of - timedelta(days=RATE_LAG)
    data.rate_from = data.rate_to - timedelta(days=RATE_DAYS - 1)
    with engine.connect() as conn:
        data.billed_90 = stored.billed_cents(conn, since, as_of)
        data.rate_billed = stored.billed_cents_between(conn, data.rate_from, data.rate_to)
        data.rate_collected = stored.collected_cents_between(conn, data.rate_from, data.rate_to, as_of)
        data.exceptions = _ordered(stored.queue_by_kind(conn, as_of), EXCEPTION_LABELS)
        data.disputes = _disputes(conn, as_of)
        data.letters = _today_and_window(stored.letters_by_level, conn, as_of, LEVEL_LABELS)
        data.calls = _today_and_window(stored.calls_by_status, conn, as_of, CALL_LABELS)
        data.plans = _ordered(stored.plans_by_status(conn, as_of), PLAN_LABELS)
        data.agency = _ordered(stored.agency_by_status(conn, as_of), AGENCY_LABELS)
        data.agency_today = stored.agency_cases_handed_on(conn, as_of)
        data.agency_commission = stored.agency_commission_cents(conn, as_of)
        data.runs = _runs(conn)
        data.emails_queued, data.emails_failed = outbox_counts(conn)
        data.sms_queued, data.sms_failed = sms_counts(conn)
        check = verify(conn)
    data.dso_days = dso(data.receivables, data.billed_90)
    data.audit_events, data.audit_head, data.audit_ok = check.events, check.head, check.ok
    return data


# ---------------------------------------------------------------- the chart

def balance_svg(rows: list[BalanceRow], width: int = 1000) -> str:
    """Horizontal stacked bars, one per payer, one colour per age bucket; amounts written at the bar's end."""
    label_w, value_w, bar_h, gap, top = 250, 130, 22, 10, 34
    span = width - label_w - value_w
    biggest = max((row.total for row in rows), default=0) or 1
    height = top + len(rows) * (bar_h + gap) + 6
    parts = [f'<svg width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="Encours par payeur et par ancienneté">']
    for i, (bucket, colour) in enumerate(zip(BUCKETS, BUCKET_COLOURS)):
        x = label_w + i * 150
        parts.append(f'<rect x="{x}" y="6" width="14" height="14" fill="{colour}"/>'
                     f'<text x="{x + 20}" y="18" class="legend">{html.escape(bucket)} jours</text>')
    for n, row in enumerate(rows):
        y = top + n * (bar_h + gap)
        weight = "bold" if row.group == "type" else "normal"
        label = row.label if row.group == "type" else f"\u2003{row.label}"
        parts.append(f'<text x="{label_w - 10}" y="{y + bar_h - 6}" text-anchor="end" font-weight="{weight}">'
                     f'{html.escape(label)}</text>')
        bar_x = float(label_w)
        for cents, colour, bucket in zip(row.buckets, BUCKET_COLOURS, BUCKETS):
            w = span * cents / biggest
            if w > 0:
                parts.append(f'<rect x="{bar_x:.1f}" y="{y}" width="{max(w, 1):.1f}" height="{bar_h}" fill="{colour}">'
                             f'<title>{html.escape(row.label)}, {bucket} jours : {html.escape(format_eur(cents))}'
                             '</title></rect>')
            bar_x += w
        parts.append(f'<text x="{bar_x + 8:.1f}" y="{y + bar_h - 6}">{html.escape(format_eur(row.total))}</text>')
    parts.append("</svg>")
    return "".join(parts)


# ---------------------------------------------------------------- the page

def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=select_autoescape(["html", "j2"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["eur"] = format_eur
    env.filters["fr_date"] = lambda d: d.strftime("%d/%m/%Y") if d else ""
    env.filters["pct"] = lambda v: "—" if v is None else f"{100 * v:.1f}\u00a0%".replace(".", ",")
    env.filters["days"] = lambda v: "—" if v is None else f"{v:.0f}\u00a0jours"
    return env


def render_report(data: ReportData, creditor_name: str = "") -> str:
    template = _environment().get_template("report.html.j2")
    return template.render(data=data, creditor=creditor_name, chart=Markup(balance_svg(data.balance)),
                           buckets=BUCKETS, colours=BUCKET_COLOURS, target=DISPUTE_TARGET_DAYS,
                           window=LETTERS_WINDOW, late=sum(1 for d in data.disputes if d["late"]))


def write_report(engine: Engine, settings: Settings, as_of: date, path: Path) -> Path:
    """Render, scan for medical data (PrivacyLeak: nothing written), write atomically; returns the path."""
    from recouvrement.scanner import ensure_clean, known_texts
    page = render_report(report_data(engine, as_of), settings.creditor.name)
    path = Path(path)
    ensure_clean(page, path.name, known=known_texts(settings))
    write_atomically(path, page)
    record_files(engine, "report", [path], as_of=as_of)
    return path
