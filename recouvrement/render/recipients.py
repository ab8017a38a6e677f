"""Who receives a patient's letters: the guarantor when one is recorded (a parent, a legal guardian),
else the patient; never a minor. One rule for reminders, plan proposals and e-mails.

An e-mail goes only to one valid address (core.contact): an address that fails the rule (stored by an
older version, or edited in the database) counts as none, so the letter goes by post. Names and
postal lines are put on one line: a CR/LF from an input file can neither split a mail header nor stop
the night's run."""

from __future__ import annotations

from datetime import date

import pandas as pd

from recouvrement.core.contact import e164, is_mobile, is_valid_email, one_line
from recouvrement.core.plans import add_months


def text_of(value) -> str:
    """A database value as letter text ("" when missing)."""
    return "" if value is None or pd.isna(value) else str(value).strip()


def line_of(value) -> str:
    """A database value as one line of a letter or a mail header: no line break, no control character."""
    return one_line(text_of(value))


def has_guarantor(person) -> bool:
    """A guarantor the post can reach: a name and an address."""
    return bool(text_of(person["guarantor_last_name"]) and text_of(person["guarantor_address"]))


def is_minor(birth_date, as_of: date) -> bool:
    if not text_of(birth_date):
        return False
    born = date.fromisoformat(str(birth_date)[:10])
    return add_months(born, 18 * 12) > as_of


def patient_name(person) -> str:
    return f"{line_of(person['first_name'])} {line_of(person['last_name'])}".strip()


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


def recipient_of(person):
    """The whitelist Recipient of a patient row (mapping with the patient table's columns)."""
    from recouvrement.render.views import Recipient
    if has_guarantor(person):
        name = f"{line_of(person['guarantor_first_name'])} {line_of(person['guarantor_last_name'])}".strip()
        return Recipient(name, line_of(person["guarantor_address"]),
                         line_of(person["guarantor_postal_code"]) or line_of(person["postal_code"]),
                         line_of(person["guarantor_city"]) or line_of(person["city"]), recipient_email(person))
    return Recipient(patient_name(person), line_of(person["address"]), line_of(person["postal_code"]),
                     line_of(person["city"]), recipient_email(person))


def debtor_of(person) -> dict[str, str]:
    """Who answers for the debt, as the collection agency must know them: the guarantor who received the
    letters (a parent for a minor, a legal guardian), else the patient — never a child. The phone is the
    patient's own and is given only with the patient."""
    if has_guarantor(person):
        return {"last_name": line_of(person["guarantor_last_name"]),
                "first_name": line_of(person["guarantor_first_name"]),
                "address": line_of(person["guarantor_address"]),
                "postal_code": line_of(person["guarantor_postal_code"]) or line_of(person["postal_code"]),
                "city": line_of(person["guarantor_city"]) or line_of(person["city"]),
                "email": recipient_email(person) or "", "phone": ""}
    return {**{column: line_of(person[column]) for column in ("last_name", "first_name", "address", "postal_code",
                                                                "city", "phone")},
            "email": recipient_email(person) or ""}
