"""`recouvrement segments`: how many patients are one-off, chronic or on hold, and why one is."""

from __future__ import annotations

from pathlib import Path

import click
from recouvrement.app.segmentation import patient_segments, queued_payment_holds, segment_counts
from recouvrement.cli import Context, Table, cli, out, pass_context
from recouvrement.cli.options import as_of_option
from recouvrement.errors import RecouvrementError
from recouvrement.rules import load_rules


@cli.command()
@as_of_option("Jour de l'évaluation (jj/mm/aaaa ou ISO ; défaut : aujourd'hui).")
@click.option("--patient", "patient_id", help="Le segment d'un patient et ses raisons.")
@click.option("--rules", "rules_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Dossier des fichiers de règles (défaut : le dossier rules/ livré).")
@pass_context
def segments(ctx: Context, as_of, patient_id: str | None, rules_dir: Path | None) -> None:
    """Patients par segment (one_off, chronic, on_hold) ; avec --patient, celui de ce patient et pourquoi."""
    day = as_of
    rules = load_rules(rules_dir)
    with ctx.engine.connect() as conn:
        results = patient_segments(conn, day, rules, patient_id)
        waiting = queued_payment_holds(conn, day, rules)
    if patient_id:
        if patient_id not in results:
            raise RecouvrementError(f"patient inconnu {patient_id!r}", field="--patient")
        result = results[patient_id]
        out.print(f"patient {patient_id} au {day:%d/%m/%Y} : {result.segment}")
        for reason in result.reasons:
            out.print(f"  - {reason}")
        if patient_id in waiting:
            out.print(f"  - relances suspendues : {waiting[patient_id]}")
        return
    table = Table(title=f"Segments au {day:%d/%m/%Y}")
    table.add_column("segment")
    table.add_column("patients", justify="right")
    for name, count in segment_counts(results).items():
        table.add_row(name, str(count))
    table.add_row("total", str(len(results)), style="bold")
    out.print(table)
    if waiting:
        out.print(f"dont {len(waiting)} patient(s) sans relance tant qu'un paiement attend le rapprochement")
