"""`recouvrement remind`: the day's reminder letters and e-mails, or a dry run listing who is not chased and why."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import click
from recouvrement.app.remind import LedgerChangedDuringRun, RemindReport
from recouvrement.app.reminders import remind_and_send
from recouvrement.cli import NOT_RECONCILED_EXIT, Context, Table, cli, error, out, pass_context, warning
from recouvrement.cli.options import as_of_option
from recouvrement.render.listing import EXCLUSIONS_HEADER, LETTERS_HEADER, exclusion_rows, header_line, letter_rows, lines


@cli.command()
@as_of_option("Date des courriers (jj/mm/aaaa ou ISO).", required=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Dossier des courriers, du PDF du lot, des e-mails et de manifest.csv.")
@click.option("--dry-run", is_flag=True, help="N'écrire et n'envoyer rien : lister les courriers dus et chaque exclusion.")
@click.option("--single-pdf", is_flag=True, help="Écrire aussi un PDF par courrier postal.")
@pass_context
def remind(ctx: Context, as_of, out_dir: Path, dry_run: bool, single_pdf: bool) -> None:
    """Envoyer les relances dues au --as-of (un courrier par patient, contrôlé, enregistré et audité).

    Refusé (code de sortie 5, rien d'écrit) tant que des paiements importés ne sont pas rapprochés : lancer
    d'abord `recouvrement reconcile` ; un essai à blanc montre les courriers avec cet avertissement. Refusé de même
    quand des paiements ou des factures sont importés pendant les relances : relancer."""
    try:
        report = remind_and_send(ctx.engine, ctx.settings, as_of, out_dir, dry_run=dry_run, single_pdf=single_pdf)
    except LedgerChangedDuringRun as refused:
        error(refused.message)
        raise SystemExit(NOT_RECONCILED_EXIT) from None
    print_remind(report)
    if report.errors:
        raise SystemExit(1)  # a refused document: the others are written, the run is not clean


def print_remind(report: RemindReport) -> None:
    if report.warning:
        warning(report.warning)
    if report.quiet_day:
        out.print(f"le {report.as_of:%d/%m/%Y} est un dimanche ou un jour férié : rien n'est envoyé, "
                  "le prochain jour ouvré rattrape")
    if report.dry_run:
        _print_dry_run(report)
    else:
        _print_done(report)
    _print_exclusion_counts(report)


def _print_dry_run(report: RemindReport) -> None:
    made = report.listing       # the long listings' lines, made where the parts were decided (app.remind)
    title = f"Relances dues le {report.as_of:%d/%m/%Y} (simulation : rien n'est écrit)"
    if made is not None and len(report.decisions) > TABLE_ROWS:
        _lines(title, LETTERS_HEADER, len(report.decisions), made[0])
    else:
        _listing(title, LETTERS_HEADER, letter_rows(report.decisions))
    if made is not None and len(report.exclusions) > TABLE_ROWS:
        _lines("Exclusions", EXCLUSIONS_HEADER, len(report.exclusions), made[1])
    else:
        _listing("Exclusions", EXCLUSIONS_HEADER,
                 exclusion_rows((e.patient_id, e.invoice_number, e.code, e.reason) for e in report.exclusions))


# Past this many rows a listing is printed as plain lines: rich lays a table out cell by cell (a clinic group's dry
# run, 52,672 letters and 97,208 exclusions at 1M, took 70 s to print as tables and under a second as lines).
TABLE_ROWS = 500


def _listing(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A table on the screen; a long one as lines of fields separated by « ; » (with its header line), to read
    in a file or a spreadsheet (render.listing): every cell made inert, as in our CSV files."""
    if len(rows) <= TABLE_ROWS:
        table = Table(title=title)
        for column in header:
            table.add_column(column)
        for row in rows:
            table.add_row(*row)
        out.print(table)
        return
    _lines(title, header, len(rows), lines(rows))


def _lines(title: str, header: Sequence[str], count: int, text: str) -> None:
    """A long listing: its title, its header line and its `count` lines (`text`, render.listing's)."""
    out.print(f"{title} : {count} lignes, une par ligne ci-dessous (champs séparés par « ; »)")
    out.file.write(header_line(header) + text)     # written at once: a write a line cost 0.1 s more
    out.file.flush()


def _print_done(report: RemindReport) -> None:
    if not report.letters and not report.quiet_day:
        out.print("aucune nouvelle relance due ce jour" + (f" ({len(report.already_recorded)} déjà faite(s) pour cette date)"
                                                           if report.already_recorded else ""))
    counts = Counter((w.level, w.channel) for w in report.letters)
    if counts:
        table = Table(title=f"Lettres du {report.as_of:%d/%m/%Y}")
        for column in ("niveau", "canal", "lettres"):
            table.add_column(column, justify="right")
        for (level, channel), count in sorted(counts.items()):
            table.add_row(str(level), channel, str(count))
        out.print(table)
    if report.calls_listed or report.calls_closed:
        out.print(f"appels : {len(report.calls_listed)} ajouté(s) à la liste ; {len(report.calls_closed)} retiré(s) "
                  "(sans issue à temps ou plus utiles)" + (f" ; liste : {report.call_list}" if report.call_list else ""))
    if report.batch_pdf:
        out.print(f"lot à imprimer : {report.batch_pdf} ({len(report.pages)} lettre(s))")
    if report.email_note:
        out.print(report.email_note)
    if report.sms_note:
        out.print(report.sms_note)
    if report.manifest:
        out.print(f"manifeste : {report.manifest}")
    for message in report.errors:
        error(message, label="refusé")


def _print_exclusion_counts(report: RemindReport) -> None:
    counts = Counter(e.code for e in report.exclusions)
    if not counts:
        return
    table = Table(title="Non relancés, par motif")
    table.add_column("code")
    table.add_column("nombre", justify="right")
    for code, count in sorted(counts.items()):
        table.add_row(code, str(count))
    out.print(table)
