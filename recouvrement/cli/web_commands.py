"""`recouvrement web` (the staff web app) and `recouvrement user add` (its accounts)."""

from __future__ import annotations

import sys

import click

from recouvrement.app.users import MIN_PASSWORD, ROLE_LABELS, ROLES, add_user
from recouvrement.cli import Context, cli, out, pass_context
from recouvrement.cli.options import as_of_option


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Adresse d'écoute.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port d'écoute.")
@click.option("--insecure-cookies", is_flag=True,
              help="Envoyer aussi le cookie de session en HTTP simple (seulement sur un réseau de confiance sans HTTPS ; "
                   "inutile sur 127.0.0.1/localhost, que les navigateurs tiennent pour sûrs).")
@as_of_option("Calculer les pages à cette date, jj/mm/aaaa ou ISO (défaut : le jour de l'établissement, jour après "
              "jour) ; pour les démonstrations.", default_today=False)
@pass_context
def web(ctx: Context, host: str, port: int, insecure_cookies: bool, as_of) -> None:
    """Servir l'application web du personnel (patients, exceptions, audit), en français.

    Exemple : recouvrement web --port 8000   then open http://127.0.0.1:8000/
    """
    import uvicorn

    from recouvrement.web.app import clinic_today, create_app, freeze_startup_heap
    app = create_app(ctx.engine, secure_cookies=not insecure_cookies, settings=ctx.settings,
                     today=(lambda: as_of) if as_of else clinic_today)
    freeze_startup_heap()
    out.print(f"recouvrement web : http://{host}:{port}/  (Ctrl+C pour arrêter)")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, proxy_headers=False,
                server_header=False)


@cli.group()
def user() -> None:
    """Comptes de l'application web."""


@user.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(ROLES),
              help="accountant (tout), staff (accueil), auditor (preuves en lecture seule).")
@click.option("--password-stdin", is_flag=True, help="Lire le mot de passe sur la première ligne de l'entrée standard.")
@pass_context
def user_add(ctx: Context, name: str, role: str, password_stdin: bool) -> None:
    """Créer un utilisateur de l'application web ; le mot de passe est demandé deux fois (12 caractères au moins).

    Exemple : recouvrement user add marie --role staff
    """
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt(f"Mot de passe (au moins {MIN_PASSWORD} caractères)", hide_input=True,
                                confirmation_prompt="Confirmez le mot de passe")
    created = add_user(ctx.engine, name, role, password, actor="cli")
    out.print(f"utilisateur {created.name} créé (rôle : {ROLE_LABELS[created.role]})")
