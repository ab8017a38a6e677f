"""The demo: the nightly job on the bundled sample clinic, over seven weeks of its life.

The sample files are dropped into the demo's inbox and the nightly run takes them in on 23/11/2026
(import, reconcile, segments, reminders, agency, report). Three more nights follow on the days the
ladder moves (level 2, mise en demeure, then the agency handover fifteen days later); in between, one
patient is offered an instalment plan. Everything written is scanned for medical data at the end.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import date
from pathlib import Path

from recouvrement.app.balance import export_exceptions, outstanding_shares
from recouvrement.app.nightly import RunResult, run_nightly
from recouvrement.app.plans import propose
from recouvrement.config import Paths, Settings
from recouvrement.core.ladder import PRE_DUE_LEVEL
from recouvrement.db.payments import matching_summary
from recouvrement.errors import RecouvrementError
from recouvrement.money import format_eur
from recouvrement.render.labels import queue_label, rule_label
from recouvrement.scanner import format_finding, known_texts, scan_paths

ORDER = ("invoices.csv", "remittance_amo.csv", "remittance_amc.csv", "retour_noemie.rsp", "bank_camt053.xml",
         "bank_cfonb120.txt")
STATUS_FR = {"ok": "terminé", "failed": "en échec", "running": "en cours"}
NIGHTS = (date(2026, 11, 23), date(2026, 12, 8), date(2026, 12, 23), date(2027, 1, 8))


MARKER = ".recouvrement-demo"          # says the folder was made by the demo, so the demo may clean it
MADE = ("inbox", "archive", "quarantine", "out", "exceptions.csv")
CHECKPOINT = "recouvrement-audit.checkpoint"   # the demo database's audit head, beside its settings


def prepare_folder(folder: Path, samples: Path, own_database: bool) -> str:
    """The demo's folder, clean: made if absent, emptied of a previous demo's results if it has the marker,
    refused if it holds something else. Its settings file (a copy of the sample clinic's) and its NIR key
    stay, so the everyday commands run from the folder find the same database, settings and key. The demo's own
    database goes with its audit checkpoint: the checkpoint only ever moves forward (audit.write_checkpoint), so
    kept beside a new database it named the old trail's head, and `audit verify` then found the new trail
    "rewritten"."""
    if folder.exists() and not (folder / MARKER).exists() and any(folder.iterdir()):
        raise RecouvrementError("le dossier existe et ne vient pas de la démo : choisir un autre dossier",
                                file=str(folder), field="demo_folder")
    again = (folder / MARKER).exists()
    folder.mkdir(parents=True, exist_ok=True)
    for name in MADE:
        path = folder / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    if own_database:
        for name in ("recouvrement.db", "recouvrement.db-wal", "recouvrement.db-shm", CHECKPOINT):
            (folder / name).unlink(missing_ok=True)
    if not (folder / "recouvrement.toml").exists():
        shutil.copyfile(samples / "recouvrement.toml", folder / "recouvrement.toml")
    if not (folder / "rules").exists():     # the sample clinic's own rules, which its settings name
        shutil.copytree(samples / "rules", folder / "rules")
    (folder / MARKER).write_text("made by `recouvrement demo`; the demo empties this folder when run again\n",
                                 encoding="utf-8")
    if not again:
        return f"Dossier de démonstration : {folder}"
    return (f"Dossier de démonstration {folder} déjà utilisé : résultats précédents effacés"
            + (", base de données repartie de zéro" if own_database else " (base de données indiquée utilisée telle quelle)"))


def demo_settings(settings: Settings, folder: Path) -> Settings:
    """The folder's settings; its files are complete when dropped, so the inbox does not wait for them. The audit
    checkpoint is the folder's, like its database, under the name the commands run with the folder's settings look
    for (beside the settings file): they check the head the demo left."""
    return replace(settings, paths=Paths(folder / "inbox", folder / "archive", folder / "quarantine", folder / "out",
                                         settings.paths.rules),
                   inbox=replace(settings.inbox, settle_seconds=0),
                   audit=replace(settings.audit, checkpoint_file=folder / CHECKPOINT))


def run_demo(ctx, samples: Path, folder: Path, out) -> Path | None:
    settings = ctx.settings = demo_settings(ctx.settings, folder)    # before the engine: the checkpoint is the demo's
    engine = ctx.engine
    settings.paths.inbox.mkdir(parents=True, exist_ok=True)
    for name in ORDER:
        shutil.copyfile(samples / name, settings.paths.inbox / name)
    out.print(f"Fichiers de la clinique exemple déposés dans {settings.paths.inbox}")
    report = None
    for night in NIGHTS:
        result = run_nightly(engine, settings, night)
        print_run(out, result)
        report = result.report
        if night == NIGHTS[0]:
            print_matching(out, engine, folder)
            propose_a_plan(out, engine, settings, night)
    print_scan(out, settings.paths.output, known_texts(settings))
    return report


def print_run(out, result: RunResult) -> None:
    counts = result.counts
    files, rows = counts.get("files", {}), counts.get("rows", {})
    letters = ", ".join(f"{'avant échéance' if int(k) == PRE_DUE_LEVEL else f'niveau {k}'} : {v}"
                        for k, v in counts.get("letters", {}).items()) or "aucune"
    out.print(f"\nPassage de nuit du {result.as_of:%d/%m/%Y}", style="bold", end="")
    out.print(f" — {STATUS_FR.get(result.status, result.status)}")
    if files.get("seen"):
        out.print(f"  fichiers : {files.get('seen')} vus, {files.get('imported')} importés, "
                  f"{files.get('quarantined')} en quarantaine ; lignes : {rows.get('imported')} importées, "
                  f"{rows.get('refused', 0)} refusées")
    out.print(f"  lettres : {letters} ; dossiers remis à l'agence : {counts.get('agency_cases', 0)}")
    means = counts.get("means", {})
    if means:
        out.print(f"  envois : courrier {means.get('letter', 0)}, e-mail {means.get('email', 0)}, "
                  f"SMS {means.get('sms', 0)}")
    for error in result.errors:
        out.print(f"  note : {error}")


def print_matching(out, engine, folder: Path) -> None:
    with engine.connect() as conn:
        total, by_rule, queue = matching_summary(conn)
    out.print(f"  paiements rapprochés, sur {total} porteurs d'argent :")
    for rule, count in by_rule:
        share = f"{100 * count / max(total, 1):.1f}".replace(".", ",")
        out.print(f"    {rule_label(rule):<34} {count:>5}  ({share} %)")
    for kind, count in queue:
        out.print(f"    laissés dans la file, {queue_label(kind):<19} {count:>3}")
    export_exceptions(engine, folder / "exceptions.csv")
    out.print(f"    exceptions à examiner : {folder / 'exceptions.csv'}")


def propose_a_plan(out, engine, settings: Settings, as_of: date) -> None:
    """Offer a plan to the patient who owes the most on their own share (shown, not accepted)."""
    shares = outstanding_shares(engine, as_of)
    debts = shares[shares["payer_type"] == "patient"].groupby("patient_id")["due_cents"].sum()
    for patient_id in debts.sort_values(ascending=False, kind="stable").index[:5]:
        try:
            plan = propose(engine, patient_id, as_of, settings, out_dir=settings.paths.output / "plans")
        except RecouvrementError:
            continue                      # e.g. disputed or time-barred: the next one
        schedule = ", ".join(f"{i.due_date:%d/%m/%Y} {format_eur(i.amount_cents)}" for i in plan.instalments[:3])
        out.print(f"  échéancier proposé à {patient_id} : {format_eur(plan.total_cents)} en {len(plan.instalments)} "
                  f"échéance(s) ({schedule}{', …' if len(plan.instalments) > 3 else ''}) ; lettre "
                  f"{plan.files[0]}")
        return
    out.print("  aucune dette de patient qu'un échéancier pourrait couvrir")


def print_scan(out, folder: Path, known: tuple[str, ...] = ()) -> None:
    findings = scan_paths([folder], known=known) if folder.exists() else []
    count = sum(1 for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0
    out.print("\nContrôle de confidentialité", style="bold", end="")
    out.print(f" de {count} fichier(s) écrits dans {folder} : "
              + ("aucune donnée médicale" if not findings else f"{len(findings)} constat(s)"))
    for path, finding in findings:
        out.print(f"  {format_finding(path, finding)}")
