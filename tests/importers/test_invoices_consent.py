"""The invoices CSV's contact columns: SMS and e-mail consent, phone numbers in E.164 (issue #14)."""

from __future__ import annotations

from sqlalchemy import text

from recouvrement.app.imports import import_file
from tests.app.world import write

HEADER = ("invoice_number;issue_date;patient_id;last_name;first_name;address;postal_code;city;phone;"
          "total_amount;amo_amount;patient_amount")
WITH_CONSENT = HEADER + ";sms_consent;email_consent"


def row(number: str, patient: str, issued: str = "10/01/2025", phone: str = "06 12 34 56 78") -> str:
    return f"{number};{issued};{patient};Martin;Jeanne;3 rue des Lilas;75019;Paris;{phone};40,00;28,00;12,00"


def patient(engine, patient_id: str) -> tuple:
    with engine.connect() as conn:
        return tuple(conn.execute(text("SELECT phone, sms_consent, email_consent FROM patient "
                                       "WHERE patient_id = :p"), {"p": patient_id}).one())


def test_consent_columns_accept_oui_non_one_zero_true_false(engine, settings, tmp_path):
    rows = [row("F1", "P1") + ";oui;non", row("F2", "P2") + ";1;0", row("F3", "P3") + ";TRUE;False",
            row("F4", "P4") + ";Non;Oui"]
    report = import_file(engine, write(tmp_path / "f.csv", WITH_CONSENT, rows), settings)
    assert report.rejects == []
    assert [patient(engine, p)[1:] for p in ("P1", "P2", "P3", "P4")] == [
        (True, False), (True, False), (True, False), (False, True)]


def test_a_bad_consent_value_is_refused_with_file_line_and_field(engine, settings, tmp_path):
    rows = [row("F1", "P1") + ";oui;oui", row("F2", "P2") + ";peut-être;oui"]
    report = import_file(engine, write(tmp_path / "consent.csv", WITH_CONSENT, rows), settings)
    assert [(r.file, r.line, r.field) for r in report.rejects] == [("consent.csv", 3, "sms_consent")]
    assert "peut-être" not in report.rejects[0].reason
    assert "oui ou non" in report.rejects[0].reason and report.imported == 1


def test_a_new_patient_without_the_consent_columns_has_no_consent(engine, settings, tmp_path):
    import_file(engine, write(tmp_path / "f.csv", HEADER, [row("F1", "P1")]), settings)
    assert patient(engine, "P1")[1:] == (None, None)


def test_a_reimport_without_the_consent_columns_leaves_the_stored_consent_unchanged(engine, settings, tmp_path):
    import_file(engine, write(tmp_path / "a.csv", WITH_CONSENT, [row("F1", "P1") + ";oui;oui"]), settings)
    import_file(engine, write(tmp_path / "b.csv", HEADER, [row("F2", "P1", issued="10/02/2025")]), settings)
    import_file(engine, write(tmp_path / "c.csv", WITH_CONSENT, [row("F3", "P1", issued="10/03/2025") + ";;"]),
                settings)
    assert patient(engine, "P1")[1:] == (True, True)


def test_a_newer_invoice_withdrawing_consent_wins(engine, settings, tmp_path):
    import_file(engine, write(tmp_path / "a.csv", WITH_CONSENT, [row("F1", "P1") + ";oui;oui"]), settings)
    import_file(engine, write(tmp_path / "b.csv", WITH_CONSENT, [row("F2", "P1", issued="10/02/2025") + ";non;"]),
                settings)
    assert patient(engine, "P1")[1:] == (False, True)


def test_phone_numbers_are_stored_in_e164(engine, settings, tmp_path):
    rows = [row("F1", "P1", phone="06 12 34 56 78"), row("F2", "P2", phone="+33 7 81 23 45 67"),
            row("F3", "P3", phone="01.42.00.00.00"), row("F4", "P4", phone="")]
    import_file(engine, write(tmp_path / "f.csv", HEADER, rows), settings)
    assert [patient(engine, p)[0] for p in ("P1", "P2", "P3", "P4")] == [
        "+33612345678", "+33781234567", "+33142000000", None]


def test_a_bad_phone_number_is_refused_with_file_line_and_field_and_never_echoed(engine, settings, tmp_path):
    rows = [row("F1", "P1"), row("F2", "P2", phone="06 12 34"), row("F3", "P3", phone="appeler le soir 0612")]
    report = import_file(engine, write(tmp_path / "phones.csv", HEADER, rows), settings)
    assert [(r.file, r.line, r.field) for r in report.rejects] == [("phones.csv", 3, "phone"), ("phones.csv", 4, "phone")]
    assert all("06 12 34" not in r.reason and "soir" not in r.reason for r in report.rejects)
    assert report.imported == 1
