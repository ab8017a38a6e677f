"""The desk's day at a glance: what the last nightly run did, disputes nearing their 60-day answer date,
cases the agency gave back, and how many payments wait for the accountant. Read-only."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import Engine

from recouvrement.db.agency import returned_cases
from recouvrement.db.disputes import DisputeRow, list_disputes
from recouvrement.db.runs import RunRow, latest_runs
from recouvrement.db.queue import WAITING, waiting_count
from recouvrement.db.values import as_date

LEVEL_NAMES = {"0": "avis de rejet", "1": "1res relances", "2": "2es relances", "3": "mises en demeure"}


@dataclass
class Today:
    as_of: date
    last_run: RunRow | None = None
    run_lines: list[str] = field(default_factory=list)
    disputes: list[DisputeRow] = field(default_factory=list)      # nearing or past their answer date
    returned: list[dict] = field(default_factory=list)
    waiting_payments: int = 0


def run_summary(counts: dict) -> list[str]:
    """A run's counts in the desk's words, one line each (what is zero is left out)."""
    lines = []
    files, rows = counts.get("files") or {}, counts.get("rows") or {}
    if files.get("seen"):
        lines.append(f"{files.get('imported', 0)} fichier(s) importé(s) sur {files['seen']}"
                     + (f", {files['quarantined']} mis en quarantaine" if files.get("quarantined") else ""))
    if rows.get("imported") or rows.get("refused"):
        lines.append(f"{rows.get('imported', 0)} ligne(s) importée(s), {rows.get('refused', 0)} refusée(s), "
                     f"{rows.get('duplicates', 0)} déjà connue(s)")
    if counts.get("allocations"):
        lines.append(f"{counts['allocations']} paiement(s) rapproché(s)")
    queue = {k: v for k, v in (counts.get("exceptions") or {}).items() if v}
    if queue:
        names = {"unmatched": "sans correspondance", "ambiguous": "ambigu(s)", "credit": "avoir(s)",
                 "held": "en attente", "clawback": "reprise(s) d'assureur à vérifier"}
        lines.append("File des paiements : " + ", ".join(f"{v} {names.get(k, k)}" for k, v in sorted(queue.items())))
    letters = {k: v for k, v in (counts.get("letters") or {}).items() if v}
    if letters:
        lines.append("Courriers : " + ", ".join(f"{v} {LEVEL_NAMES.get(str(k), 'niveau ' + str(k))}"
                                                for k, v in sorted(letters.items())))
    if counts.get("sent"):
        lines.append(f"{counts['sent']} e-mail(s) envoyé(s)")
    plans = counts.get("plans") or {}
    if plans.get("broken") or plans.get("completed"):
        lines.append(f"Échéanciers : {plans.get('completed', 0)} soldé(s), {plans.get('broken', 0)} rompu(s)")
    if counts.get("agency_cases"):
        lines.append(f"{counts['agency_cases']} dossier(s) confié(s) à l'agence")
    if counts.get("agency_below_minimum"):
        lines.append(f"{counts['agency_below_minimum']} dossier(s) gardé(s) à la clinique : sous le montant minimum "
                     "de l'agence")
    return lines or ["Rien de nouveau."]


def today_view(engine: Engine, as_of: date) -> Today:
    view = Today(as_of)
    with engine.connect() as conn:
        runs = latest_runs(conn, limit=1)
        if runs:
            view.last_run = runs[0]
            view.run_lines = run_summary(runs[0].counts)
        view.disputes = [d for d in list_disputes(conn) if d.deadline(as_of) in ("nears", "overdue")]
        view.returned = [{**c, "handed_on": as_date(c["handed_on"]), "updated_on": as_date(c["updated_on"])}
                         for c in returned_cases(conn)]
        view.waiting_payments = waiting_count(conn, WAITING)
    return view
