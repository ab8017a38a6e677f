"""Patients in the store: found by id, invoice number or name, and what the desk reads of one account."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Connection, RowMapping, text

from recouvrement.db.values import as_date

ACCOUNT_COLUMNS = ("patient_id", "last_name", "first_name", "address", "postal_code", "city", "phone", "email",
                   "guarantor_last_name", "guarantor_first_name")


def patient_card(conn: Connection, patient_id: str) -> tuple | None:
    """(patient_id, last_name, first_name, city) of the patient with this exact id, or None."""
    row = conn.execute(text("SELECT patient_id, last_name, first_name, city FROM patient WHERE patient_id = :p"),
                       {"p": patient_id}).first()
    return None if row is None else tuple(row)


def patient_cards_by_invoice(conn: Connection, compact_number: str) -> list[tuple]:
    """(patient_id, last_name, first_name, city, invoice_number) of the invoices with this compact number."""
    return [tuple(r) for r in conn.execute(text(
        "SELECT p.patient_id, p.last_name, p.first_name, p.city, i.invoice_number FROM invoice i "
        "JOIN patient p ON p.patient_id = i.patient_id WHERE i.compact_number = :c"), {"c": compact_number})]


def all_patient_cards(conn: Connection) -> list[tuple]:
    """(patient_id, last_name, first_name, city) of every patient."""
    return [tuple(r) for r in conn.execute(text("SELECT patient_id, last_name, first_name, city FROM patient"))]


def patient_and_guarantor_names(conn: Connection) -> list[tuple]:
    """(patient_id, last_name, first_name, guarantor_last_name, guarantor_first_name) of every patient."""
    return [tuple(r) for r in conn.execute(text("SELECT patient_id, last_name, first_name, guarantor_last_name, "
                                                "guarantor_first_name FROM patient"))]


def patient_contact(conn: Connection, patient_id: str) -> dict | None:
    """The patient's names, address, phone, e-mail and guarantor's names (ACCOUNT_COLUMNS), or None."""
    row = conn.execute(text(f"SELECT {', '.join(ACCOUNT_COLUMNS)} FROM patient WHERE patient_id = :p"),
                       {"p": patient_id}).mappings().first()
    return None if row is None else dict(row)


def patient_allocations(conn: Connection, patient_id: str, as_of: date) -> list[tuple]:
    """(payment_id, payment_date, payer_type, invoice_number, amount_cents, rule) of the payments allocated to
    the patient's invoices, paid on or before `as_of`, newest first."""
    return [(r[0], as_date(r[1]), r[2], r[3], int(r[4]), r[5]) for r in conn.execute(text(
        "SELECT a.payment_id, p.payment_date, p.payer_type, a.invoice_number, a.amount_cents, a.rule "
        "FROM allocation a JOIN payment p ON p.payment_id = a.payment_id JOIN invoice i ON i.invoice_number = "
        "a.invoice_number WHERE i.patient_id = :p AND p.payment_date <= :d ORDER BY p.payment_date DESC, a.id DESC"),
        {"p": patient_id, "d": as_of})]


def patient_letters(conn: Connection, patient_id: str) -> list[tuple]:
    """(letter_id, as_of, kind, level, channel, amount_cents, status, SMS status or None) of the patient's letters,
    newest first; the SMS status is its outbox's (written, queued, sending, sent: accepted by the provider, failed)."""
    return [(r[0], as_date(r[1]), r[2], int(r[3]), r[4], int(r[5]), r[6], r[7]) for r in conn.execute(text(
        "SELECT l.letter_id, l.as_of, l.kind, l.level, l.channel, l.amount_cents, l.status, s.status "
        "FROM letter l LEFT JOIN sms_message s ON s.letter_id = l.letter_id WHERE l.patient_id = :p "
        "ORDER BY l.as_of DESC, l.letter_id DESC"), {"p": patient_id})]


def patient_agency_cases(conn: Connection, patient_id: str) -> list[dict]:
    """The patient's agency cases (case_id, handed_on, amount_cents, status, updated_on), newest first."""
    return [{**r, "handed_on": as_date(r["handed_on"]), "updated_on": as_date(r["updated_on"])}
            for r in conn.execute(text("SELECT case_id, handed_on, amount_cents, status, updated_on FROM agency_case "
                                       "WHERE patient_id = :p ORDER BY handed_on DESC"),
                                  {"p": patient_id}).mappings()]


def patient_row(conn: Connection, patient_id: str) -> RowMapping | None:
    """The patient's row (every column of the patient table), or None when unknown."""
    return conn.execute(text("SELECT * FROM patient WHERE patient_id = :p"), {"p": patient_id}).mappings().first()


def patient_exists(conn: Connection, patient_id: str) -> bool:
    return conn.execute(text("SELECT 1 FROM patient WHERE patient_id = :p"), {"p": patient_id}).first() is not None
