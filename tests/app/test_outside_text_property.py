"""Property: whatever medical text is planted in whatever field comes from outside (patients' names and
addresses, cities, e-mails, mutuelle names, guarantors, payers' names, transfer labels and references),
every output — letters (HTML, PDF text), e-mails, manifests, exports, the agency file, the report,
refused rows and error lines — is either free of it or refused."""

from __future__ import annotations

import re
import tempfile
from dataclasses import replace
from datetime import date
from pathlib import Path

from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st
from stdnum.fr import nir as stdnum_nir

from recouvrement.app.agency import export_agency
from recouvrement.app.balance import aged_balance, export_allocations, export_exceptions, write_balance_csv
from recouvrement.app.exports import export_payments
from recouvrement.app.imports import import_file
from recouvrement.app.reconcile import run_reconcile
from recouvrement.app.remind import run_remind
from recouvrement.app.report import write_report
from recouvrement.config import Privacy, Settings
from recouvrement.core.privacy import fold
from recouvrement.errors import RecouvrementError
from recouvrement.rules import Rules
from recouvrement.scanner import extract_text
from tests.app.test_agency import letter
from tests.app.test_remind import CREDITOR, MONDAY
from tests.app.test_remind_privacy import fresh_engine

HEADER = ("invoice_number;issue_date;due_date;patient_id;last_name;first_name;address;postal_code;city;email;"
          "total_amount;amo_amount;amc_amount;patient_amount;amc_payer;guarantor_last_name;guarantor_first_name;"
          "guarantor_address;guarantor_postal_code;guarantor_city;guarantor_email")
PAYMENT_HEADER = "payment_id;payment_date;payer_type;payer_name;amount;reference;invoice_number;status;reject_reason"
INVOICE_FIELDS = ["last_name", "first_name", "address", "city", "email", "amc_payer", "guarantor_last_name",
                  "guarantor_first_name", "guarantor_address", "guarantor_city", "guarantor_email"]
PAYMENT_FIELDS = ["payer_name", "reference"]
BASE = {"last_name": "Martin", "first_name": "Claire", "address": "5 rue Haute", "city": "Paris",
        "email": "claire@example.org", "amc_payer": "Harmonie Mutuelle", "guarantor_last_name": "",
        "guarantor_first_name": "", "guarantor_address": "", "guarantor_city": "", "guarantor_email": "",
        "payer_name": "Claire Martin", "reference": "facture F2025-000201"}
GUARANTOR = {"guarantor_last_name": "Martin", "guarantor_first_name": "Paul", "guarantor_address": "5 rue Haute",
             "guarantor_city": "Paris", "guarantor_email": "paul@example.org"}
HANDOVER = date(2025, 4, 20)


def typed_nirs(body: str) -> list[str]:
    number = body + stdnum_nir.calc_check_digits(body)
    cut = [number[:1], number[1:3], number[3:5], number[5:7], number[7:10], number[10:13], number[13:]]
    return [number, "-".join(cut), ".".join(cut), " ".join(cut), "NIR" + number, number[:13] + " " + number[13:]]


nirs = st.from_regex(r"[12][0-9]{2}(0[1-9]|1[0-2])(75|13|69)[0-9]{6}", fullmatch=True).flatmap(
    lambda body: st.sampled_from(typed_nirs(body)))
# Each leak and the needle that must not come out: the medical part of what was planted.
words = st.sampled_from([("séance kiné", "kine"), ("seance kine", "kine"), ("HIV", "hiv"), ("Psychiatre", "psychiatre"),
                         ("chimiotherapie", "chimiotherapie"), ("dialysis", "dialysis"), ("IVG", "ivg")])
codes = st.sampled_from([("yyyy010", "yyyy010"), ("HBLD038", "hbld038"), ("AMI 3", "ami 3"), ("J45.0", "j45.0")])
leaks = st.one_of(nirs.map(lambda n: (n, re.sub(r"\D", "", n))), words, codes)


def leaked(needle: str, text: str) -> bool:
    if needle.isdigit():  # a NIR, whatever separators were typed or added
        return needle in re.sub(r"(?<=\d)[\s.\-_/]+(?=\d)", "", text)
    return re.search(rf"(?<![^\W_]){re.escape(needle)}(?![^\W_])", fold(text)) is not None


def invoice_row(number: str, issued: str, patient: str, values: dict, amc: str = "0", by_post: bool = False) -> str:
    """50 € for the patient, and `amc` awaited from the mutuelle (which the aged balance names)."""
    values = {**values, "email": ""} if by_post else values
    total = f"{50 + int(amc)},00"
    cells = [number, issued, "", patient, *(values[f] for f in ("last_name", "first_name", "address")), "75011",
             values["city"], values["email"], total, "0", amc, "50,00", values["amc_payer"],
             *(values[f] for f in ("guarantor_last_name", "guarantor_first_name", "guarantor_address")), "75011",
             values["guarantor_city"], values["guarantor_email"]]
    return ";".join(cells)


def write(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def every_output(folder: Path, settings: Settings, engine, values: dict) -> list[tuple[str, str]]:
    """(what, text) of everything the clinic's outputs hold after a day's work on the planted world."""
    said: list[tuple[str, str]] = []

    def attempt(what: str, work) -> None:
        try:
            work()
        except RecouvrementError as refused:  # refused: nothing written, and the error line is an output
            said.append((f"{what} error", str(refused)))

    rows = [invoice_row("F2025-000201", "01/03/2025", "P1", values),
            invoice_row("F2025-000101", "05/01/2025", "P2", values, by_post=True),
            invoice_row("F2025-000301", "02/05/2025", "P3", values, amc="30")]
    reports = []
    attempt("invoices", lambda: reports.append(import_file(engine, write(folder / "inv.csv", HEADER, rows), settings)))
    payment = ";".join(["X1", "2025-05-02", "patient", values["payer_name"], "12,00", values["reference"], "",
                        "paid", ""])
    attempt("payments", lambda: reports.append(
        import_file(engine, write(folder / "pay.csv", PAYMENT_HEADER, [payment]), settings)))
    said += [("reject", str(r)) for report in reports for r in report.rejects]
    said += [("warning", w) for report in reports for w in report.warnings]
    run_reconcile(engine)
    out = folder / "out"
    remind = run_remind(engine, settings, MONDAY, out / "letters", single_pdf=True)
    said += [("remind error", e) for e in remind.errors]
    letter(engine, "L3-P2", date(2025, 4, 1), ["F2025-000101"], patient="P2")
    attempt("agency", lambda: export_agency(engine, settings, HANDOVER, out / "agency.csv", rules=Rules()))
    attempt("payments export", lambda: export_payments(engine, out / "payments.csv"))
    attempt("allocations export", lambda: export_allocations(engine, out / "allocations.csv"))
    attempt("exceptions export", lambda: export_exceptions(engine, out / "exceptions.csv"))
    attempt("balance", lambda: write_balance_csv(aged_balance(engine, MONDAY), out / "balance.csv"))
    attempt("report", lambda: write_report(engine, settings, MONDAY, out / "report.html"))
    said += [(path.name, extract_text(path)) for path in sorted(out.rglob("*")) if path.is_file()]
    return said


@hypothesis_settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(INVOICE_FIELDS + PAYMENT_FIELDS), leak=leaks, glued=st.booleans(),
       guarantor=st.booleans())
def test_a_leak_planted_in_any_outside_field_is_in_no_output_or_the_output_is_refused(
        request, field, leak, glued, guarantor):
    planted, needle = leak
    values = {**BASE, **(GUARANTOR if guarantor or field.startswith("guarantor") else {})}
    values[field] = (values[field] + ("" if glued else " ") + planted).strip()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        settings = replace(Settings(privacy=Privacy(nir_key_file=folder / "nir.key")), creditor=CREDITOR)
        engine = fresh_engine(request, folder)
        try:
            said = every_output(folder, settings, engine, values)
        finally:
            engine.dispose()
    assert said, "the world wrote nothing"
    assert [what for what, text in said if leaked(needle, text)] == []
