"""The options shared by several commands: one date type (dd/mm/yyyy or ISO) and one `--as-of`.

"Today" is the clinic's day (the [schedule] timezone, Europe/Paris by default), decided once here,
at the edge, and passed down: a command never calls `date.today()`.
"""

from __future__ import annotations

from datetime import date, datetime

import click

FORMATS = ("%d/%m/%Y", "%Y-%m-%d")


def parse_day(value: str) -> date:
    """A day written dd/mm/yyyy (as on the letters) or yyyy-mm-dd (ISO); ValueError in French otherwise."""
    text = value.strip()
    for layout in FORMATS:
        try:
            return datetime.strptime(text, layout).date()
        except ValueError:
            continue
    raise ValueError(f"date invalide {value!r} : attendu jj/mm/aaaa ou aaaa-mm-jj")


class Day(click.ParamType):
    """A click type giving a `date` from dd/mm/yyyy or yyyy-mm-dd."""

    name = "date"

    def convert(self, value, param, ctx) -> date:
        if isinstance(value, date):
            return value.date() if isinstance(value, datetime) else value
        try:
            return parse_day(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)

    def get_metavar(self, param, *args, **kwargs) -> str:   # click 8.1 and 8.2 (ctx=) signatures
        return "JJ/MM/AAAA"


DAY = Day()


def _clinic_today(ctx: click.Context, param: click.Parameter, value: date | None) -> date | None:
    if value is not None:
        return value
    from recouvrement.cli import Context
    found = ctx.find_object(Context)
    return found.today if found is not None else None


def day_option(*names: str, help: str, required: bool = False, default_today: bool = True):
    """A date option; when absent (and not required) it is the clinic's today."""
    callback = _clinic_today if default_today and not required else None
    return click.option(*names, type=DAY, required=required, callback=callback, help=help)


def as_of_option(help: str = "Jour de référence (jj/mm/aaaa ou ISO ; défaut : aujourd'hui).",
                 *, required: bool = False, default_today: bool = True):
    """The one `--as-of`: dd/mm/yyyy or ISO, the clinic's today when absent (unless required)."""
    return day_option("--as-of", "as_of", help=help, required=required, default_today=default_today)
