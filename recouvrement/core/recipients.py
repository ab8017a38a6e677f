"""Who receives a patient's letters, decided once: the guarantor when one is recorded (a parent, a legal
guardian), else the patient; never a minor; an e-mail only to one valid address (core.contact), an SMS only
to the patient's own consented mobile.

A person is a mapping with the patient table's columns (a row of the store's patients frame).

>>> child = {"birth_date": "2015-03-01", "guarantor_last_name": "Durand", "guarantor_address": "1 rue Haute",
...          "email": "enfant@ok.example", "guarantor_email": "parent@ok.example"}
>>> is_minor(child["birth_date"], date(2025, 6, 1)), has_guarantor(child), recipient_email(child)
(True, True, 'parent@ok.example')
>>> recipient_email({**child, "guarantor_last_name": None, "email": "a@ok.example, b@ok.example"}) is None
True
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from recouvrement.core.contact import e164, is_mobile, is_valid_email
from recouvrement.core.plans import add_months


def text_of(value) -> str:
    """A database value as letter text ("" when missing)."""
    return "" if value is None or pd.isna(value) else str(value).strip()


def has_guarantor(person) -> bool:
    """A guarantor the post can reach: a name and an address."""
    return bool(text_of(person["guarantor_last_name"]) and text_of(person["guarantor_address"]))


def is_minor(birth_date, as_of: date) -> bool:
    if not text_of(birth_date):
        return False
    born = date.fromisoformat(str(birth_date)[:10])
    return add_months(born, 18 * 12) > as_of


def recipient_email(person) -> str | None:
    """The one address a letter may be e-mailed to (the guarantor's when there is one), or None."""
    address = text_of(person["guarantor_email"] if has_guarantor(person) else person["email"])
    return address if is_valid_email(address) else None


def consented(person, column: str) -> bool:
    """Whether the recipient consented to that channel ('sms_consent', 'email_consent'): never stated is no."""
    value = person[column] if column in person else None
    return value is not None and not pd.isna(value) and bool(value)


def recipient_mobile(person) -> str | None:
    """The mobile number (E.164) a letter's SMS may go to, or None: the patient's own number, when they receive
    their letters themselves (no guarantor: the file's phone is the patient's), consented to SMS, and the
    number is a valid mobile's."""
    if has_guarantor(person) or not consented(person, "sms_consent"):
        return None
    number = e164(text_of(person["phone"]))
    return number if number is not None and is_mobile(number) else None
