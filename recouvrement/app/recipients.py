"""Who receives a patient's letters: the guarantor when one is recorded (a parent, a legal guardian),
else the patient; never a minor. One rule for reminders, plan proposals and e-mails."""

from __future__ import annotations

from datetime import date

import pandas as pd

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


def patient_name(person) -> str:
    return f"{text_of(person['first_name'])} {text_of(person['last_name'])}".strip()


def recipient_email(person) -> str | None:
    return text_of(person["guarantor_email"] if has_guarantor(person) else person["email"]) or None


def recipient_of(person):
    """The whitelist Recipient of a patient row (mapping with the patient table's columns)."""
    from recouvrement.render.views import Recipient
    if has_guarantor(person):
        name = f"{text_of(person['guarantor_first_name'])} {text_of(person['guarantor_last_name'])}".strip()
        return Recipient(name, text_of(person["guarantor_address"]),
                         text_of(person["guarantor_postal_code"]) or text_of(person["postal_code"]),
                         text_of(person["guarantor_city"]) or text_of(person["city"]), recipient_email(person))
    return Recipient(patient_name(person), text_of(person["address"]), text_of(person["postal_code"]),
                     text_of(person["city"]), recipient_email(person))
