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
from sqlalchemy import Engine, text

from recouvrement.app.balance import BUCKETS, aged_balance
from recouvrement.render.files import write_atomically
from recouvrement.app.outbox import outbox_counts
from recouvrement.audit import record_files, verify
from recouvrement.config import Settings
from recouvrement.money import format_eur

TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates" / "report"
DSO_DAYS = 90
RATE_DAYS, RATE_LAG = 90, 30
DISPUTE_TARGET_DAYS = 60
LETTERS_WINDOW = 30
BUCKET_COLOURS = ("#8fbcdb", "#3f7fb5", "#e39b3b", "#b8412f")
PAYER_LABELS = {"amo": "Assurance Maladie (AMO)", "amc": "Mutuelles (AMC)", "patient": "Patients (reste à charge)"}
LEVEL_LABELS = {0: "Avis de rejet", 1: "Relance 1", 2: "Relance 2", 3: "Mise en demeure"}
EXCEPTION_LABELS = {"unmatched": "Paiements non rapprochés", "ambiguous": "Paiements ambigus",
                    "credit": "Avoirs / trop-perçus", "clawback": "Reprises d'assureur à vérifier"}
PLAN_LABELS = {"proposed": "Proposés", "lapsed": "Restés sans réponse", "active": "En cours (tenus)",
               "completed": "Soldés", "broken": "Rompus", "cancelled": "Annulés"}
AGENCY_LABELS = {"handed_over": "Transmis", "partial": "Recouvrés en partie", "collected": "Recouvrés en totalité",
                 "closed": "Clos", "returned": "Retournés"}


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
    plans: list[tuple[str, int, int]] = field(default_factory=list)
    agency: list[tuple[str, int, int, int]] = field(default_factory=list)   # label, cases, handed over, collected
    agency_today: int = 0
    runs: list[dict] = field(default_factory=list)
    emails_queued: int = 0         # still in the outbox (server unreachable, run killed mid-send)
    emails_failed: int = 0         # refused by the server for good: a person looks at them
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
    table = aged_balance(engine, as_of)
    rows = []
    for key in ("type:amo", "type:amc", "type:patient"):
        values = table.loc[key].tolist() if key in table.index else [0] * (len(BUCKETS) + 1)
        rows.append(BalanceRow(PAYER_LABELS[key[5:]], "type", tuple(int(v) for v in values[:-1]), int(values[-1])))
    mutuelles = sorted((k for k in table.index if k.startswith("mutuelle:")), key=lambda k: -int(table.loc[k, "total"]))
    for key in mutuelles:
        values = table.loc[key].tolist()
        rows.append(BalanceRow(key.split(":", 1)[1], "mutuelle", tuple(int(v) for v in values[:-1]), int(values[-1])))
    return rows


def _scalar(conn, sql: str, params: dict) -> int:
    return int(conn.execute(text(sql), params).scalar_one() or 0)


def _groups(conn, sql: str, params: dict, labels: dict) -> list[tuple[str, int, int]]:
    found = {key: (int(n), int(c or 0)) for key, n, c in conn.execute(text(sql), params)}
    ordered = [k for k in labels if k in found] + sorted(k for k in found if k not in labels)
    return [(labels.get(k, str(k)), *found[k]) for k in ordered]


def _disputes(conn, as_of: date) -> list[dict]:
    rows = conn.execute(text("SELECT id, invoice_number, received_on, category, status, answer_due FROM dispute "
                             "WHERE status <> 'closed' AND received_on <= :a ORDER BY received_on, id"),
                        {"a": as_of}).all()
    out = []
    for dispute_id, invoice, received, category, status, _answer_due in rows:
        received = received if isinstance(received, date) else date.fromisoformat(str(received)[:10])
        age = (as_of - received).days
        out.append({"id": dispute_id, "invoice": invoice, "received": received, "age": age, "category": category,
                    "status": status, "late": age > DISPUTE_TARGET_DAYS,
                    "width": min(age, 2 * DISPUTE_TARGET_DAYS) * 100 // (2 * DISPUTE_TARGET_DAYS)})
    return out


def _agency(conn, as_of: date) -> list[tuple[str, int, int, int]]:
    """Cases by status: how many, the amount handed over, and what the agency really collected by as_of
    (a partial collection is its own line, never counted as collected in full)."""
    rows = conn.execute(text(
        "SELECT c.status, COUNT(*), SUM(c.amount_cents), SUM(COALESCE(g.cents, 0)) FROM agency_case c "
        "LEFT JOIN (SELECT reference, SUM(amount_cents) AS cents FROM payment WHERE payer_type = 'agency' "
        "AND payment_date <= :a GROUP BY reference) g ON g.reference = c.case_id "
        "WHERE c.handed_on <= :a GROUP BY c.status"), {"a": as_of}).all()
    found = {status: (int(n), int(handed or 0), int(collected or 0)) for status, n, handed, collected in rows}
    ordered = [k for k in AGENCY_LABELS if k in found] + sorted(k for k in found if k not in AGENCY_LABELS)
    return [(AGENCY_LABELS.get(k, str(k)), *found[k]) for k in ordered]


def _runs(conn) -> list[dict]:
    rows = conn.execute(text("SELECT id, as_of, status, started_at, ended_at FROM run ORDER BY id DESC LIMIT 7")).all()
    return [{"id": r[0], "as_of": str(r[1])[:10], "status": r[2], "started": str(r[3])[:16],
             "ended": str(r[4])[:16] if r[4] else ""} for r in rows]


def report_data(engine: Engine, as_of: date) -> ReportData:
    data = ReportData(as_of, balance=_balance(engine, as_of))
    data.receivables = sum(row.total for row in data.balance if row.group == "type")
    since = as_of - timedelta(days=DSO_DAYS)
    data.rate_to = as_of - timedelta(days=RATE_LAG)
    data.rate_from = data.rate_to - timedelta(days=RATE_DAYS - 1)
    with engine.connect() as conn:
        data.billed_90 = _scalar(conn, "SELECT SUM(total_cents) FROM invoice WHERE issue_date > :s AND issue_date <= :a",
                                 {"s": since, "a": as_of})
        cohort = {"f": data.rate_from, "t": data.rate_to, "a": as_of}
        data.rate_billed = _scalar(conn, "SELECT SUM(total_cents) FROM invoice WHERE issue_date BETWEEN :f AND :t",
                                   cohort)
        data.rate_collected = _scalar(conn, "SELECT SUM(a.amount_cents) FROM allocation a JOIN invoice i ON "
                                      "i.invoice_number = a.invoice_number JOIN payment p ON p.payment_id = a.payment_id "
                                      "WHERE i.issue_date BETWEEN :f AND :t AND p.payment_date <= :a", cohort)
        data.exceptions = _groups(conn, "SELECT e.kind, COUNT(*), SUM(e.remaining_cents) FROM payment_exception e "
                                  "JOIN payment p ON p.payment_id = e.payment_id WHERE p.payment_date <= :a "
                                  "GROUP BY e.kind", {"a": as_of}, EXCEPTION_LABELS)
        data.disputes = _disputes(conn, as_of)
        letters = ("SELECT level, COUNT(*), SUM(amount_cents) FROM letter WHERE as_of > :s AND as_of <= :a "
                   "GROUP BY level")
        today = {label: n for label, n, _ in _groups(conn, letters, {"s": as_of - timedelta(days=1), "a": as_of},
                                                     LEVEL_LABELS)}
        data.letters = [(label, today.get(label, 0), n, cents) for label, n, cents in
                        _groups(conn, letters, {"s": as_of - timedelta(days=LETTERS_WINDOW), "a": as_of}, LEVEL_LABELS)]
        data.plans = _groups(conn, "SELECT status, COUNT(*), SUM(total_cents) FROM plan WHERE proposed_on <= :a "
                             "GROUP BY status", {"a": as_of}, PLAN_LABELS)
        data.agency = _agency(conn, as_of)
        data.agency_today = _scalar(conn, "SELECT COUNT(*) FROM agency_case WHERE handed_on = :a", {"a": as_of})
        data.runs = _runs(conn)
        data.emails_queued, data.emails_failed = outbox_counts(conn)
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
