"""`recouvrement dispute ...` (the complaints register) and `recouvrement hold` (pausing a patient)."""

from __future__ import annotations

import click
from recouvrement.app.disputes import (CATEGORIES, CHANNELS, NEAR_DAYS, STATUS_FR, add_note, answer_dispute, close_dispute,
                                       dispute_notes, forward_dispute, get_dispute, list_disputes, open_dispute)
from recouvrement.app.holds import place_hold, release_hold
from recouvrement.cli import Context, Table, cli, out, pass_context
from recouvrement.cli.options import as_of_option, day_option
from recouvrement.errors import RecouvrementError

DEADLINE_FR = {"overdue": "dépassée", "nears": "proche", "in time": "à temps", "answered": "répondue", "closed": "close"}

@cli.group()
def dispute() -> None:
    """Le registre des réclamations : une contestation suspend le recouvrement de sa facture jusqu'à sa clôture.

    Statut : open → forwarded (transmise au praticien) → answered → closed ; l'accueil peut répondre
    sans transmettre, et clore à tout moment. La réponse est due 60 jours après réception.
    """


@dispute.command("open")
@click.argument("invoice_number")
@click.option("--reason", required=True, help="Ce que le patient conteste (interne : jamais dans les courriers ni les exports).")
@click.option("--channel", type=click.Choice(CHANNELS), default="desk", show_default=True)
@click.option("--category", type=click.Choice(CATEGORIES), default="other", show_default=True)
@day_option("--received", help="Jour de réception de la réclamation (jj/mm/aaaa ou ISO ; défaut : aujourd'hui).")
@pass_context
def dispute_open(ctx: Context, invoice_number: str, reason: str, channel: str, category: str, received) -> None:
    """Enregistrer une réclamation sur INVOICE_NUMBER."""
    dispute_id = open_dispute(ctx.engine, invoice_number, reason, channel=channel, category=category,
                              received=received)
    with ctx.engine.connect() as conn:
        row = get_dispute(conn, dispute_id)
    out.print(f"réclamation n° {dispute_id} ouverte sur {invoice_number} ; réponse due le {row.answer_due:%d/%m/%Y} ; "
              "le recouvrement de la facture est suspendu jusqu'à sa clôture")


@dispute.command("note")
@click.argument("dispute_id", metavar="ID", type=int)
@click.argument("note", metavar="TEXT")
@pass_context
def dispute_note(ctx: Context, dispute_id: int, note: str) -> None:
    """Ajouter une note à la contestation ID."""
    add_note(ctx.engine, dispute_id, note)
    out.print(f"note ajoutée à la réclamation n° {dispute_id}")


@dispute.command("forward")
@click.argument("dispute_id", metavar="ID", type=int)
@click.option("--note", help="Ce qui a été transmis, à qui.")
@pass_context
def dispute_forward(ctx: Context, dispute_id: int, note: str | None) -> None:
    """Transmettre la contestation ID au praticien (open → forwarded)."""
    out.print(f"réclamation n° {dispute_id} : {STATUS_FR.get(s := forward_dispute(ctx.engine, dispute_id, note), s)}")


@dispute.command("answer")
@click.argument("dispute_id", metavar="ID", type=int)
@click.option("--note", required=True, help="Ce qui a été répondu au patient.")
@pass_context
def dispute_answer(ctx: Context, dispute_id: int, note: str) -> None:
    """Noter la réponse faite au patient (open ou forwarded → answered)."""
    out.print(f"réclamation n° {dispute_id} : {STATUS_FR.get(s := answer_dispute(ctx.engine, dispute_id, note), s)}")


@dispute.command("close")
@click.argument("dispute_id", metavar="ID", type=int)
@click.option("--note", help="Pourquoi elle est close.")
@pass_context
def dispute_close(ctx: Context, dispute_id: int, note: str | None) -> None:
    """Clore la contestation ID : le recouvrement de sa facture reprend."""
    out.print(f"réclamation n° {dispute_id} : {STATUS_FR.get(s := close_dispute(ctx.engine, dispute_id, note), s)}")


@dispute.command("list")
@click.option("--overdue", is_flag=True, help="Seulement les contestations dont la réponse est en retard.")
@as_of_option("Jour à partir duquel les échéances sont comptées (jj/mm/aaaa ou ISO ; défaut : aujourd'hui).")
@click.option("--all", "show_all", is_flag=True, help="Les contestations closes aussi.")
@pass_context
def dispute_list(ctx: Context, overdue: bool, as_of, show_all: bool) -> None:
    """Les contestations par échéance de réponse : jours restants, "nears" à moins de 10 jours, "overdue" au-delà.

    Les motifs ne sont pas montrés ici (voir `dispute show ID`) : cette liste peut être imprimée ou partagée.
    """
    day = as_of
    with ctx.engine.connect() as conn:
        rows = list_disputes(conn, include_closed=show_all)
    if overdue:
        rows = [r for r in rows if r.is_overdue(day)]
    table = Table(title=f"Réclamations au {day:%d/%m/%Y}")
    for column in ("n°", "facture", "patient", "reçue", "canal", "catégorie", "statut", "réponse due",
                   "jours restants", "échéance"):
        table.add_column(column, justify="right" if column in ("n°", "jours restants") else "left")
    for r in rows:
        state = r.deadline(day)
        style = {"overdue": "bold red", "nears": "yellow"}.get(state, "")
        table.add_row(str(r.id), r.invoice_number, r.patient_id, f"{r.received_on:%d/%m/%Y}", r.channel, r.category,
                      STATUS_FR.get(r.status, r.status), f"{r.answer_due:%d/%m/%Y}",
                      "" if r.status in ("answered", "closed") else str(r.days_left(day)),
                      DEADLINE_FR.get(state, state), style=style)
    out.print(table)
    out.print(f"{len(rows)} réclamation(s) ; proche = réponse due dans moins de {NEAR_DAYS} jours")


@dispute.command("show")
@click.argument("dispute_id", metavar="ID", type=int)
@pass_context
def dispute_show(ctx: Context, dispute_id: int) -> None:
    """Une contestation en entier, motif et notes compris (écran interne)."""
    with ctx.engine.connect() as conn:
        row = get_dispute(conn, dispute_id)
        notes = dispute_notes(conn, dispute_id)
    out.print(f"réclamation n° {row.id} sur {row.invoice_number} (patient {row.patient_id}) : "
              f"{STATUS_FR.get(row.status, row.status)} ; reçue le {row.received_on:%d/%m/%Y} par {row.channel} ; "
              f"catégorie {row.category} ; réponse due le {row.answer_due:%d/%m/%Y}"
              + (f" ; close le {row.closed_on:%d/%m/%Y}" if row.closed_on else ""))
    out.print(f"motif : {row.reason}")
    for note in notes:
        out.print(f"  {note.at:%d/%m/%Y %H:%M} {note.action}" + (f" : {note.text}" if note.text else ""))


@cli.command()
@click.argument("patient_id")
@click.option("--reason", help="Pourquoi (difficultés, décès, protection juridique…) ; interne, hors du journal d'audit.")
@click.option("--release", is_flag=True, help="Lever la suspension du patient : le recouvrement reprend.")
@day_option("--on", "on", help="Jour de début ou de fin de la suspension (jj/mm/aaaa ou ISO ; défaut : aujourd'hui).")
@day_option("--review-on", "review_on", default_today=False,
            help="Jour où revoir la suspension (montré sur la page Aujourd'hui de l'application web ; après --on, "
                 "dans l'année) ; écrit avec la suspension, dans la même transaction.")
@pass_context
def hold(ctx: Context, patient_id: str, reason: str | None, release: bool, on, review_on) -> None:
    """Suspendre toute relance à PATIENT_ID (--reason TEXTE [--review-on DATE]), ou les reprendre (--release)."""
    if release == bool(reason):
        raise RecouvrementError("indiquer soit --reason TEXTE pour suspendre, soit --release pour reprendre",
                                field="--reason/--release")
    if release and review_on is not None:
        raise RecouvrementError("--review-on date une suspension que l'on pose, pas une reprise", field="--review-on")
    if release:
        release_hold(ctx.engine, patient_id, on=on)
        out.print(f"patient {patient_id} : suspension levée, le recouvrement reprend")
    elif reason:
        place_hold(ctx.engine, patient_id, reason, since=on, review_on=review_on)
        out.print(f"patient {patient_id} suspendu : aucune relance ne sera envoyée"
                  + (f" ; à revoir le {review_on:%d/%m/%Y}" if review_on else ""))
