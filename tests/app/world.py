"""Small hand-built worlds written as real files, shared by the application tests."""

from __future__ import annotations

from pathlib import Path

INVOICE_HEADER = ("invoice_number;issue_date;due_date;patient_id;last_name;first_name;address;postal_code;city;"
                  "email;phone;nir;total_amount;amo_amount;amc_amount;patient_amount;amc_payer;coverage;"
                  "care_description;act_codes")
INVOICES = [
    "F2025-000101;10/01/2025;09/02/2025;P1;Lefèvre;Éloïse;3 rue des Lilas;75019;Paris;eloise@example.org;;"
    "2 85 05 75 123 456 29;100,00;70,00;20,00;10,00;MGEN;none;Consultation cardiologie;DEQP003",
    "F2025-000102;10/02/2025;;P1;Lefèvre;Éloïse;3 rue des Lilas;75019;Paris;eloise@example.org;;;45,00;0;0;45,00;;"
    "none;Détartrage;HBJD001",
    "F2025-000103;10/03/2025;;P2;De La Fontaine;Jean-François;8 avenue Foch;69006;Lyon;;;;50,00;21,00;6,00;23,00;"
    "Harmonie Mutuelle;none;;",
    "F2025-000104;12/03/2025;;P3;N'Diaye;Maëlle;1 place Bellecour;69002;Lyon;;;;23,00;0;0;23,00;;css;;",
]
PAYMENT_HEADER = "payment_id;payment_date;payer_type;payer_name;amount;reference;invoice_number;status;reject_reason"


def nir_valid(body13: str) -> str:
    return body13 + f"{97 - int(body13) % 97:02d}"


def write(path: Path, header: str, rows: list[str], encoding: str = "utf-8") -> Path:
    """The rows under the header; an invoices file with e-mail addresses and no consent column gets
    `email_consent` = oui on every row: the worlds' patients agreed to be e-mailed (issue #14: without
    consent, the post)."""
    if "invoice_number" in header and "email" in header and "email_consent" not in header:
        sep = ";" if ";" in header else ","
        header, rows = f"{header}{sep}email_consent", [f"{row}{sep}oui" for row in rows]
    path.write_text("\r\n".join([header, *rows]) + "\r\n", encoding=encoding)
    return path


def invoices_file(folder: Path, rows: list[str] | None = None, name: str = "invoices.csv",
                  encoding: str = "cp1252") -> Path:
    rows = INVOICES if rows is None else rows
    nir = nir_valid("2850575123456")
    rows = [r.replace("2 85 05 75 123 456 29", nir[:1] + " " + nir[1:3] + " " + nir[3:5] + " " + nir[5:7] + " "
                      + nir[7:10] + " " + nir[10:13] + " " + nir[13:]) for r in rows]
    return write(folder / name, INVOICE_HEADER, rows, encoding)


def payments_file(folder: Path, rows: list[str], name: str = "payments.csv") -> Path:
    return write(folder / name, PAYMENT_HEADER, rows)


SAMPLE_CLINIC = Path(__file__).resolve().parents[2] / "recouvrement" / "sample_clinic"
SAMPLE_FILES = ("invoices.csv", "remittance_amo.csv", "remittance_amc.csv", "retour_noemie.rsp", "bank_camt053.xml",
                "bank_cfonb120.txt")


def reconciled_sample_clinic(engine, settings):
    """The bundled sample clinic's files imported (invoices first) and reconciled; the engine."""
    from recouvrement.app.imports import import_file
    from recouvrement.app.reconcile import run_reconcile
    for name in SAMPLE_FILES:
        import_file(engine, SAMPLE_CLINIC / name, settings)
    run_reconcile(engine)
    return engine


def write_off_and_reverse_a_transfer(engine, owing: list[str]) -> None:
    """The first owing invoice written off on 2 November 2026, and the first insurer's transfer of a share
    reversed on 10 November: the two moves the everyday reads must count as the whole ledger does."""
    from datetime import date

    from sqlalchemy import text

    from recouvrement.app.write_offs import write_off
    write_off(engine, sorted(owing)[0], reason="under_cost", today=date(2026, 11, 2))
    with engine.begin() as conn:
        moved = conn.execute(text("SELECT MIN(id) FROM share_transfer")).scalar_one()
        conn.execute(text("UPDATE share_transfer SET reversed_on = :d WHERE id = :i"), {"d": date(2026, 11, 10),
                                                                                         "i": moved})


def ledger_reads_beside(monkeypatch) -> list:
    """What each run's read beside its explicit pass gave (app.reconcile._LedgerBeside.result: the ledger read,
    None when given up), in a list the caller looks at after the run."""
    from recouvrement.app.reconcile import _LedgerBeside
    read: list = []
    result = _LedgerBeside.result

    def watched(self):
        read.append(result(self))
        return read[-1]
    monkeypatch.setattr(_LedgerBeside, "result", watched)
    return read
