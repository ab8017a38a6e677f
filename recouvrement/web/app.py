"""The staff web app (Starlette, server-rendered Jinja2 pages, a little htmx served from the package).

A thin adapter over the same use cases as the command line: it reads through `app.patient_account`,
`app.workbench`, `app.audit_views`, writes through `app.reconcile.match_queued` and `app.workbench.dismiss`,
and writes no business rule of its own. French for the reader; every action audited with the user.
"""

from __future__ import annotations

import gc
import secrets
from datetime import date, datetime, timedelta
from functools import cached_property, partial
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from recouvrement.app import users
from recouvrement.app.audit_views import audit_log, verify_log
from recouvrement.app import plans
from recouvrement.app.calls import OUTCOMES as CALL_OUTCOMES, call_list, call_of, call_script, record_call
from recouvrement.app.desk_checks import dispute_refusal
from recouvrement.app.disputes import ANSWER_DAYS, open_dispute
from recouvrement.app.disputes import CATEGORIES as DISPUTE_CATEGORIES
from recouvrement.app.disputes import CHANNELS as DISPUTE_CHANNELS
from recouvrement.app.hold_reviews import holds_to_review, review_hold, reviews
from recouvrement.app.holds import place_hold, release_hold
from recouvrement.app.letter_desk import (LetterRow, approve_letters, batch_pdf, letter_html, letter_pdf, letter_row,
                                          letters_to_approve, print_batches)
from recouvrement.app.payment_split import split_payment
from recouvrement.app.promises import promises, record_promise
from recouvrement.app.statement import statement_pdf
from recouvrement.app.patient_account import patient_account, search_patients
from recouvrement.app.today import today_view
from recouvrement.app.users import ROLE_LABELS, LoginRefused, LoginThrottled
from recouvrement.app.reconcile import match_queued
from recouvrement.app.workbench import DISMISS_CATEGORIES, KIND_LABELS, dismiss, exceptions_queue
from recouvrement.config import Settings, load_settings
from recouvrement.core.privacy import safe_message, scan_text
from recouvrement.core.plans import plan_answer_deadline
from recouvrement.core.promises import promise_in_force
from recouvrement.errors import RecouvrementError
from recouvrement.money import AmountError, format_eur, parse_amount
from recouvrement.rules import Rules
from recouvrement.web.security import (BOOKS, CSRF_FIELD, DESK, LETTER_POLICY, LOGIN_CSRF_COOKIE, PROOFS,
                                       SESSION_COOKIE, SecurityHeaders, Visit, csrf_ok)

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "web"
STATIC = Path(__file__).resolve().parent / "static"
CLINIC_ZONE = ZoneInfo("Europe/Paris")
HOME = {"accountant": "/aujourdhui", "staff": "/patients", "auditor": "/audit"}
MENU = (("/aujourdhui", "Aujourd'hui", DESK), ("/patients", "Patients", DESK), ("/courriers", "Courriers", DESK),
        ("/appels", "Appels", DESK), ("/exceptions", "Paiements à rapprocher", BOOKS), ("/audit", "Journal", PROOFS))


def clinic_today() -> date:
    """Today at the clinic (Europe/Paris), decided here at the edge."""
    return datetime.now(CLINIC_ZONE).date()


def shown_text(value) -> str:
    """Free text typed by a person or read from a bank (a hold's reason, a transfer's label) as shown on a
    page: masked whole when the privacy scanner finds medical data in it."""
    value = "" if value is None else str(value)
    return "[masqué : donnée médicale possible]" if value and scan_text(value) else value


def _stamp(value: str) -> str:
    """An audit event's UTC time as the clinic reads it: dd/mm/yyyy hh:mm, Paris time."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo("UTC"))
    return moment.astimezone(CLINIC_ZONE).strftime("%d/%m/%Y %H:%M:%S")


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(default=True),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["eur"] = lambda cents: format_eur(int(cents or 0))
    env.filters["jour"] = lambda d: d.strftime("%d/%m/%Y") if d else ""
    env.filters["libre"] = shown_text
    env.filters["horodatage"] = _stamp
    env.globals["ROLE_LABELS"] = ROLE_LABELS
    env.globals["timedelta"] = timedelta
    return env


class WebApp:
    def __init__(self, engine: Engine, *, secure_cookies: bool = True, today: Callable[[], date] = clinic_today,
                 rules: Rules | None = None, settings: Settings | None = None) -> None:
        self.engine, self.secure_cookies, self.today = engine, secure_cookies, today
        self._rules, self._settings = rules, settings
        self.env = _environment()

    @cached_property
    def rules(self) -> Rules:
        return self._rules or self.settings.rules()

    @cached_property
    def settings(self) -> Settings:
        return self._settings or load_settings()

    # -- rendering ---------------------------------------------------------------------------------------

    def render(self, name: str, visit: Visit | None, status: int = 200, **values) -> HTMLResponse:
        menu = [(href, label) for href, label, roles in MENU if visit and visit.user.role in roles]
        html = self.env.get_template(name).render(visit=visit, user=visit.user if visit else None, menu=menu,
                                                  csrf_token=visit.csrf_token if visit else "",
                                                  CSRF_FIELD=CSRF_FIELD, **values)
        return HTMLResponse(html, status_code=status)

    def forbidden(self, visit: Visit, why: str) -> HTMLResponse:
        return self.render("refus.html", visit, status=403, why=why)

    def set_cookie(self, response: Response, name: str, value: str, max_age: int | None = None) -> None:
        response.set_cookie(name, value, max_age=max_age, path="/", secure=self.secure_cookies, httponly=True,
                            samesite="strict")

    # -- the guard every page goes through ------------------------------------------------------------------

    def guarded(self, roles: tuple[str, ...], handler: Callable[[Visit], Response]):
        async def endpoint(request: Request) -> Response:
            token = request.cookies.get(SESSION_COOKIE)
            session = await run_in_threadpool(users.session_of, self.engine, token)
            if session is None:
                return RedirectResponse("/connexion", status_code=303)
            visit = Visit(request, session.user, session.csrf_token)
            if session.user.role not in roles:
                return self.forbidden(visit, "Votre rôle ne donne pas accès à cette page ou à cette action.")
            if request.method == "POST":
                form = await request.form()
                if not csrf_ok(session, request, form):
                    return self.forbidden(visit, "Formulaire expiré ou invalide (jeton de sécurité) : "
                                                 "rechargez la page et recommencez.")
                visit.form = {k: v for k, v in form.items() if isinstance(v, str)}
                visit.lists = {k: [v for v in form.getlist(k) if isinstance(v, str)] for k in form.keys()}
            return await run_in_threadpool(handler, visit)
        return endpoint

    # -- login ------------------------------------------------------------------------------------------

    async def login_page(self, request: Request) -> Response:
        if request.method == "POST":
            return await self.login(request)
        return self.login_form()

    def login_form(self, error: str = "", status: int = 200) -> Response:
        token = secrets.token_urlsafe(32)
        response = self.render("connexion.html", None, status=status, login_token=token, error=error)
        self.set_cookie(response, LOGIN_CSRF_COOKIE, token, max_age=3600)
        return response

    async def login(self, request: Request) -> Response:
        form = await request.form()
        expected = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
        token = form.get(CSRF_FIELD)          # a file posted in its place is no token
        if not expected or not isinstance(token, str) or not users.same_token(expected, token):
            return self.login_form("Formulaire expiré : recommencez.", status=403)
        name, password = str(form.get("nom") or ""), str(form.get("mot_de_passe") or "")
        try:
            user = await run_in_threadpool(users.authenticate, self.engine, name, password)
        except LoginThrottled as exc:
            return self.login_form(f"Trop de tentatives pour ce compte : réessayez dans {exc.minutes} min.", 429)
        except LoginRefused:
            return self.login_form("Identifiant ou mot de passe incorrect.", status=401)
        token = await run_in_threadpool(users.open_session, self.engine, user)
        response = RedirectResponse(HOME[user.role], status_code=303)
        self.set_cookie(response, SESSION_COOKIE, token)
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
        return response

    def logout(self, visit: Visit) -> Response:
        users.close_session(self.engine, visit.request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/connexion", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", secure=self.secure_cookies, httponly=True,
                               samesite="strict")
        return response

    def home(self, visit: Visit) -> Response:
        return RedirectResponse(HOME[visit.user.role], status_code=303)

    def today_page(self, visit: Visit) -> Response:
        today = self.today()
        return self.render("aujourdhui.html", visit, day=today_view(self.engine, today),
                           reviews=holds_to_review(self.engine, today),
                           letters_waiting=len(letters_to_approve(self.engine, today)))

    # -- patients ---------------------------------------------------------------------------------------

    def patients(self, visit: Visit) -> Response:
        query = visit.request.query_params.get("q", "")
        with self.engine.connect() as conn:
            found = search_patients(conn, query)
        if visit.request.headers.get("hx-request") and visit.request.headers.get("hx-target") == "resultats":
            return self.render("_resultats.html", visit, query=query, found=found)
        return self.render("patients.html", visit, query=query, found=found)

    def patient(self, visit: Visit, error: str = "", status: int = 200) -> Response:
        patient_id = visit.request.path_params["patient_id"]
        today = self.today()
        account = patient_account(self.engine, patient_id, today, self.rules)
        if account is None:
            return self.render("introuvable.html", visit, status=404, what="Ce patient")
        made = promises(self.engine, patient_id)
        message = "" if error else DONE.get(visit.request.query_params.get("fait", ""), "")
        return self.render("patient.html", visit, status=status, account=account, today=today, message=message,
                           error=error, promises=made, promise=promise_in_force(made, today),
                           reviews=reviews(self.engine, patient_id), form=visit.form,
                           dispute_channels=DISPUTE_CHANNEL_LABELS, dispute_categories=DISPUTE_CATEGORY_LABELS,
                           answer_days=ANSWER_DAYS, plan_deadline=lambda p: plan_answer_deadline(p.proposed_on, self.rules))

    def statement_html(self, visit: Visit):
        """The relevé de compte's HTML, or the 404 page."""
        today = self.today()
        account = patient_account(self.engine, visit.request.path_params["patient_id"], today, self.rules)
        if account is None:
            return None, self.render("introuvable.html", visit, status=404, what="Ce patient")
        awaited = sum(s.due_cents for i in account.invoices for s in i.shares if s.payer_type != "patient" and s.due_cents > 0)
        html = self.env.get_template("releve.html").render(account=account, today=today, awaited=awaited,
                                                           creditor=self.settings.creditor)
        return (account, html), None

    def statement(self, visit: Visit) -> Response:
        found, missing = self.statement_html(visit)
        if missing:
            return missing
        return HTMLResponse(found[1], headers={"content-security-policy": LETTER_POLICY})

    def statement_file(self, visit: Visit) -> Response:
        found, missing = self.statement_html(visit)
        if missing:
            return missing
        account, html = found
        try:
            data = statement_pdf(html, f"releve-{account.patient_id}", self.settings)
        except RecouvrementError as exc:
            return self.render("refus.html", visit, status=409, why=_french_error(exc))
        return Response(data, media_type="application/pdf",
                        headers={"content-disposition": f'inline; filename="releve-{account.patient_id}.pdf"'})

    # -- the desk's actions on a patient's account: each audited with the user, refused in one French line --

    def act(self, visit: Visit, action: Callable[[Visit, object, date], str]) -> Response:
        """Run one action on the patient's account; back to the page with what was done, or the refusal."""
        patient_id = visit.request.path_params["patient_id"]
        today = self.today()
        account = patient_account(self.engine, patient_id, today, self.rules)
        if account is None:
            return self.render("introuvable.html", visit, status=404, what="Ce patient")
        try:
            done = action(visit, account, today)
        except Refused as exc:
            return self.patient(visit, error=str(exc), status=400)
        except RecouvrementError as exc:
            return self.patient(visit, error=_french_error(exc), status=409)
        return RedirectResponse(f"/patients/{patient_id}?fait={done}", status_code=303)

    def promise(self, visit: Visit, account, today: date) -> str:
        pay_by = _form_day(visit.form.get("paye_le", ""), "date promise")
        amount = _form_amount(visit.form.get("montant", ""))
        record_promise(self.engine, account.patient_id, pay_by, today, owed_cents=account.net_due_cents,
                       amount_cents=amount, actor=visit.actor)
        return "promesse"

    def hold(self, visit: Visit, account, today: date) -> str:
        reason = _free_text(visit.form.get("motif", ""), "motif")
        review_on = _form_day(visit.form.get("revoir_le", ""), "date de revue")
        place_hold(self.engine, account.patient_id, reason, since=today, review_on=review_on, actor=visit.actor)
        return "suspension"

    def review(self, visit: Visit, account, today: date) -> str:
        review_hold(self.engine, account.patient_id, _form_day(visit.form.get("revoir_le", ""), "date de revue"),
                    today, actor=visit.actor)
        return "revue"

    def release(self, visit: Visit, account, today: date) -> str:
        release_hold(self.engine, account.patient_id, on=today, actor=visit.actor)
        return "reprise"

    # -- exceptions workbench ---------------------------------------------------------------------------------

    def exceptions(self, visit: Visit, message: str = "", error: str = "", status: int = 200) -> Response:
        queue = exceptions_queue(self.engine, self.today())
        done = visit.request.query_params.get("fait", "")
        if done and not message:
            message = {"rapproche": "Paiement rapproché.", "ecarte": "Paiement écarté de la file.",
                       "reparti": "Paiement réparti ; ce qui reste attend dans la file.",
                       "reparti-tout": "Paiement réparti en entier."}.get(done, "")
        return self.render("exceptions.html", visit, status=status, queue=queue, message=message, error=error,
                           categories=DISMISS_CATEGORIES, kinds=KIND_LABELS, split_rows=SPLIT_ROWS)

    def match(self, visit: Visit) -> Response:
        payment_id = visit.request.path_params["payment_id"]
        invoice = visit.form.get("facture", "").strip()
        amount = visit.form.get("montant", "").strip()
        try:
            cents = parse_amount(amount) if amount else None
            match_queued(self.engine, payment_id, invoice, cents, actor=visit.actor)
        except AmountError:
            return self.exceptions(visit, error="Montant illisible (exemple : 16,25).", status=400)
        except RecouvrementError as exc:
            return self.exceptions(visit, error=_french_error(exc), status=409)
        return RedirectResponse("/exceptions?fait=rapproche", status_code=303)

    def split(self, visit: Visit) -> Response:
        payment_id = visit.request.path_params["payment_id"]
        parts = []
        try:
            for k in range(1, SPLIT_ROWS + 1):
                invoice = visit.form.get(f"facture_{k}", "").strip()
                amount = visit.form.get(f"montant_{k}", "").strip()
                if invoice and amount:
                    parts.append((invoice, parse_amount(amount)))
                elif invoice or amount:
                    raise Refused(f"Ligne {k} : indiquez la facture et le montant.")
            rest = split_payment(self.engine, payment_id, parts, actor=visit.actor)
        except AmountError:
            return self.exceptions(visit, error="Montant illisible (exemple : 16,25).", status=400)
        except Refused as exc:
            return self.exceptions(visit, error=str(exc), status=400)
        except RecouvrementError as exc:
            return self.exceptions(visit, error=_french_error(exc), status=409)
        return RedirectResponse("/exceptions?fait=" + ("reparti" if rest else "reparti-tout"), status_code=303)

    def dismiss(self, visit: Visit) -> Response:
        payment_id = visit.request.path_params["payment_id"]
        try:
            dismiss(self.engine, payment_id, visit.form.get("motif", ""), visit.form.get("note", ""),
                    actor=visit.actor)
        except RecouvrementError as exc:
            return self.exceptions(visit, error=_french_error(exc), status=409)
        return RedirectResponse("/exceptions?fait=ecarte", status_code=303)

    # -- the call list ----------------------------------------------------------------------------------

    def calls(self, visit: Visit, error: str = "", status: int = 200) -> Response:
        """The call list the nights stored (never the ladder run again here), with each call's script."""
        calls = call_list(self.engine)
        scripts = {c.script: call_script(c.script, self.settings.creditor) for c in calls}
        done = visit.request.query_params.get("fait", "")
        message = "" if error else {k: f"Appel noté : {v}." for k, v in CALL_OUTCOMES.items()}.get(done, "")
        return self.render("appels.html", visit, status=status, calls=calls, scripts=scripts,
                           outcomes=CALL_OUTCOMES, message=message, error=error, creditor=self.settings.creditor)

    def call_outcome(self, visit: Visit) -> Response:
        """One call's outcome; a promise (its date) or a dispute (its invoice and reason) is recorded first by
        its own use case, then the call notes it."""
        outcome, today = visit.form.get("issue", ""), self.today()
        call = call_of(self.engine, visit.request.path_params["call_id"])
        if call is None:
            return self.render("introuvable.html", visit, status=404, what="Cet appel")
        try:
            if outcome == "promise" and call.status == "open":
                account = patient_account(self.engine, call.patient_id, today, self.rules)
                record_promise(self.engine, call.patient_id, _form_day(visit.form.get("paye_le", ""), "date promise"),
                               today, owed_cents=account.net_due_cents if account else 0, actor=visit.actor)
            elif outcome == "dispute" and call.status == "open":
                invoice = visit.form.get("facture", "").strip()
                if invoice not in call.invoice_numbers:
                    raise Refused("Choisissez l'une des factures de cet appel.")
                refusal = dispute_refusal(self.engine, call.patient_id, invoice)
                if refusal:
                    raise Refused(refusal[0].upper() + refusal[1:] + ".")
                open_dispute(self.engine, invoice, _free_text(visit.form.get("motif", ""), "motif"), channel="phone",
                             received=today, actor=visit.actor)
            record_call(self.engine, call.call_id, outcome, today, actor=visit.actor)
        except Refused as exc:
            return self.calls(visit, error=str(exc), status=400)
        except RecouvrementError as exc:
            return self.calls(visit, error=_french_error(exc), status=409)
        return RedirectResponse(f"/appels?fait={outcome}", status_code=303)

    # -- letters: approval, preview, PDF ---------------------------------------------------------------------

    def letters(self, visit: Visit, error: str = "", status: int = 200) -> Response:
        waiting = letters_to_approve(self.engine, self.today())
        days = sorted({row.as_of for row in waiting}, reverse=True)
        done = visit.request.query_params.get("approuves", "")
        message = "" if error or not done.isdigit() else f"{done} courrier(s) approuvé(s)."
        return self.render("courriers.html", visit, status=status, days=days, waiting=waiting, message=message,
                           error=error, kinds=LETTER_KINDS, channels=LETTER_CHANNELS,
                           batches=print_batches(self.engine, days))

    def batch(self, visit: Visit) -> Response:
        name = visit.request.path_params["name"]
        try:
            data = batch_pdf(self.engine, name)
        except RecouvrementError as exc:
            return self.render("refus.html", visit, status=409, why=_french_error(exc))
        if data is None:
            return self.render("introuvable.html", visit, status=404, what="Ce lot")
        return Response(data, media_type="application/pdf", headers={"content-disposition": f'inline; filename="{name}"'})

    def approve(self, visit: Visit) -> Response:
        chosen = visit.lists.get("courrier", [])
        if not chosen:
            return self.letters(visit, error="Aucun courrier choisi.", status=400)
        try:
            done = approve_letters(self.engine, chosen, actor=visit.actor)
        except RecouvrementError as exc:
            return self.letters(visit, error=_french_error(exc), status=409)
        return RedirectResponse(f"/courriers?approuves={done}", status_code=303)

    def _served_letter(self, visit: Visit, serve: Callable[[LetterRow], Response]) -> Response:
        """The letter named in the path served by `serve`: 404 when unknown, 409 (in French) when its stored
        file is refused (changed since it was written); the preview and the PDF share this preamble."""
        row = letter_row(self.engine, visit.request.path_params["letter_id"])
        if row is None:
            return self.render("introuvable.html", visit, status=404, what="Ce courrier")
        try:
            return serve(row)
        except RecouvrementError as exc:
            return self.render("refus.html", visit, status=409, why=_french_error(exc))

    def preview(self, visit: Visit) -> Response:
        return self._served_letter(visit, lambda row: HTMLResponse(
            letter_html(self.engine, row), headers={"content-security-policy": LETTER_POLICY}))

    def pdf(self, visit: Visit) -> Response:
        return self._served_letter(visit, lambda row: Response(
            letter_pdf(self.engine, row), media_type="application/pdf",
            headers={"content-disposition": f'inline; filename="{row.letter_id}.pdf"'}))

    # -- audit -------------------------------------------------------------------------------------------

    def audit(self, visit: Visit) -> Response:
        verification = verify_log(self.engine)
        rows = audit_log(self.engine, limit=100)
        return self.render("audit.html", visit, verification=verification, rows=rows)

    def dispute(self, visit: Visit, account, today: date) -> str:
        invoice = visit.form.get("facture", "").strip()
        refusal = dispute_refusal(self.engine, account.patient_id, invoice)
        if refusal:
            raise Refused(refusal[0].upper() + refusal[1:] + ".")
        channel, category = visit.form.get("canal", "desk"), visit.form.get("categorie", "other")
        if channel not in DISPUTE_CHANNELS or category not in DISPUTE_CATEGORIES:
            raise Refused("Canal ou catégorie inconnus.")
        open_dispute(self.engine, invoice, _free_text(visit.form.get("motif", ""), "motif"), channel=channel,
                     category=category, received=today, actor=visit.actor)
        return "contestation"

    def propose_plan(self, visit: Visit, account, today: date) -> str:
        waiting = [p for p in account.plans if p.status == "proposed" and today < plan_answer_deadline(p.proposed_on, self.rules)]
        if waiting:
            raise Refused(f"Un échéancier proposé le {waiting[0].proposed_on:%d/%m/%Y} attend la réponse du patient "
                          f"jusqu'au {plan_answer_deadline(waiting[0].proposed_on, self.rules):%d/%m/%Y} : "
                          "enregistrez son acceptation ou attendez.")
        months = visit.form.get("mois", "").strip()
        if months and not months.isdigit():
            raise Refused("Nombre de mensualités illisible.")
        plans.propose(self.engine, account.patient_id, today, self.settings, months=int(months) if months else None,
                      rules=self.rules, actor=visit.actor)
        return "echeancier"

    def accept_plan(self, visit: Visit, account, today: date) -> str:
        plan_id = visit.form.get("echeancier", "")
        if not any(str(p.plan_id) == plan_id for p in account.plans):
            raise Refused("Cet échéancier n'est pas celui de ce patient.")
        plans.accept(self.engine, int(plan_id), today, rules=self.rules, actor=visit.actor)
        return "acceptation"

    def desk_actions(self) -> dict[str, Callable]:
        return {"promesse": self.promise, "suspension": self.hold, "suspension/revue": self.review,
                "suspension/lever": self.release, "contestation": self.dispute, "echeancier": self.propose_plan,
                "echeancier/acceptation": self.accept_plan}

    # -- assembly ------------------------------------------------------------------------------------------

    def routes(self) -> list:
        return [
            Route("/connexion", self.login_page, methods=["GET", "POST"]),
            Route("/deconnexion", self.guarded(DESK + PROOFS, self.logout), methods=["POST"]),
            Route("/", self.guarded(DESK + PROOFS, self.home)),
            Route("/aujourdhui", self.guarded(DESK, self.today_page)),
            Route("/patients", self.guarded(DESK, self.patients)),
            Route("/patients/{patient_id:str}", self.guarded(DESK, self.patient)),
            Route("/patients/{patient_id:str}/releve", self.guarded(DESK, self.statement)),
            Route("/patients/{patient_id:str}/releve.pdf", self.guarded(DESK, self.statement_file)),
            *[Route(f"/patients/{{patient_id:str}}/{path}", self.guarded(DESK, partial(self.act, action=action)),
                    methods=["POST"]) for path, action in self.desk_actions().items()],
            Route("/exceptions", self.guarded(BOOKS, self.exceptions)),
            Route("/exceptions/{payment_id:str}/rapprocher", self.guarded(BOOKS, self.match), methods=["POST"]),
            Route("/exceptions/{payment_id:str}/repartir", self.guarded(BOOKS, self.split), methods=["POST"]),
            Route("/exceptions/{payment_id:str}/ecarter", self.guarded(BOOKS, self.dismiss), methods=["POST"]),
            Route("/appels", self.guarded(DESK, self.calls)),
            Route("/appels/{call_id:str}", self.guarded(DESK, self.call_outcome), methods=["POST"]),
            Route("/courriers", self.guarded(DESK, self.letters)),
            Route("/courriers/approuver", self.guarded(DESK, self.approve), methods=["POST"]),
            Route("/courriers/lots/{name:str}", self.guarded(DESK, self.batch)),
            Route("/courriers/{letter_id:str}/apercu", self.guarded(DESK, self.preview)),
            Route("/courriers/{letter_id:str}/pdf", self.guarded(DESK, self.pdf)),
            Route("/audit", self.guarded(PROOFS, self.audit)),
            Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
        ]


LETTER_KINDS = {"avant_echeance": "Avis avant échéance", "avis_rejet": "Avis de rejet", "relance_1": "1re relance", "relance_2": "2e relance",
                "mise_en_demeure": "Mise en demeure", "proposition_echeancier": "Proposition d'échéancier"}
LETTER_CHANNELS = {"letter": "courrier", "email": "e-mail", "both": "courrier et e-mail", "sms": "SMS",
                   "letter+sms": "courrier et SMS", "email+sms": "e-mail et SMS",
                   "letter+email+sms": "courrier, e-mail et SMS"}
SPLIT_ROWS = 4          # invoices one split form offers (a family paying for several people)
DONE = {
    "promesse": "Promesse de paiement enregistrée : aucune relance jusqu'à la date promise.",
    "suspension": "Relances suspendues ; la date de revue apparaîtra sur la page Aujourd'hui.",
    "revue": "Date de revue enregistrée.",
    "reprise": "Suspension levée : les relances reprennent.",
    "contestation": "Contestation enregistrée : la facture n'est plus relancée ; réponse due sous 60 jours (voir plus bas).",
    "echeancier": "Échéancier proposé : la lettre est prête ; les relances attendent la réponse du patient.",
    "acceptation": "Acceptation enregistrée : l'échéancier est en cours.",
}
DISPUTE_CHANNEL_LABELS = {"desk": "à l'accueil", "phone": "au téléphone", "letter": "par courrier", "email": "par e-mail"}
DISPUTE_CATEGORY_LABELS = {"amount": "montant", "billing-error": "erreur de facturation", "insurer": "part de l'assurance",
                           "service": "accueil ou service", "other": "autre"}


class Refused(ValueError):
    """A form field the web app cannot read (a date, an amount, a free text with care details)."""


def _form_day(value: str, what: str) -> date:
    value = (value or "").strip()
    for layout in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(value, layout).date()
        except ValueError:
            continue
    raise Refused(f"{what} illisible : attendu jj/mm/aaaa.")


def _form_amount(value: str) -> int | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return parse_amount(value)
    except AmountError:
        raise Refused("Montant illisible (exemple : 16,25).") from None


def _free_text(value: str, what: str) -> str:
    """Free text typed at the desk: required, and refused when it looks like a care detail (it would be kept)."""
    value = " ".join((value or "").split())[:300]
    if not value:
        raise Refused(f"Le {what} est obligatoire.")
    if scan_text(value):
        raise Refused(f"Le {what} semble contenir une donnée médicale : décrivez la situation sans détail de soin.")
    return value


def _french_error(exc: RecouvrementError) -> str:
    """The use case's own one line (in French), without the command-line field it names; medical data in it
    described, never echoed."""
    return safe_message(str(exc).split("]: ", 1)[-1])


def create_app(engine: Engine, *, secure_cookies: bool = True, today: Callable[[], date] = clinic_today,
               rules: Rules | None = None, settings: Settings | None = None) -> Starlette:
    users.dummy_hash()          # made now, so that the first login of an unknown name takes no longer than the next
    web = WebApp(engine, secure_cookies=secure_cookies, today=today, rules=rules, settings=settings)
    app = Starlette(routes=web.routes())
    app.add_middleware(SecurityHeaders)
    app.state.web = web
    return app


def freeze_startup_heap() -> None:
    """Keep what the server holds from its start (modules, templates, rules, the app) out of the garbage
    collector's full passes: each walked all of it, 80 ms of CPU falling into one page request in twenty (a busy
    patient's page: 15 ms, 110-145 ms wall when a pass fell in it). What is left of the start is collected first;
    the requests' own objects are collected as before."""
    gc.collect()
    gc.freeze()
