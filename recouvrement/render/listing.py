"""A dry run's listings (`recouvrement remind --dry-run`): the letters due and the exclusions as rows, and a long
listing's lines.

A long listing is printed as lines of the house's CSV writer (render.csvfile: cells inert, quoted when they hold « ; »,
a double quote, a CR or a LF), fields separated by « ; », lines ended by LF, to read in a file or a spreadsheet. Each
line depends on its own row only, so the lines of a listing's parts, joined in order, are the whole listing's lines:
app.remind makes those of each part of the patients in the process that decided it (issue 16), where the command
made them all after both parts were decided."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from recouvrement.core.ladder import Decision
from recouvrement.money import format_eur
from recouvrement.render.csvfile import Dialect, csv_lines, csv_text

LISTING = Dialect("listing", ";", ",", "utf-8", "\n")
LETTERS_HEADER = ("patient", "niveau", "canal", "factures", "montant", "pourquoi")
EXCLUSIONS_HEADER = ("patient", "facture", "code", "motif")


def letter_rows(decisions: Iterable[Decision]) -> list[tuple[str, ...]]:
    """One row a letter due: the patient, the level, the channel, the invoices it demands (and those listed apart
    at their own level), the amount, why."""
    rows: list[tuple[str, ...]] = []
    for d in decisions:
        invoices = " ".join(i.invoice_number for i in d.formal_items)
        if d.also_due:  # listed apart at their own level, no formal demand
            invoices += " + also due: " + " ".join(f"{i.invoice_number} ({level})" for i, level in d.also_due)
        rows.append((d.patient_id, str(d.level), d.channel or "", invoices, format_eur(d.amount_due_cents), d.reason))
    return rows


def exclusion_rows(exclusions: Iterable[tuple[str, str | None, str, str]]) -> list[tuple[str, ...]]:
    """One row an exclusion (patient, invoice or None for the whole account, code, reason)."""
    return [(patient, invoice or "(toutes)", code, reason) for patient, invoice, code, reason in exclusions]


def header_line(header: Sequence[str]) -> str:
    return csv_text(header, [], LISTING)


def lines(rows: Sequence[Sequence[str]]) -> str:
    """The rows' lines, without a header."""
    return csv_lines(rows, LISTING)
