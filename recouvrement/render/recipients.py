"""Who receives a patient's letters, as a letter's recipient or the agency's debtor: the guarantor when one
is recorded (a parent, a legal guardian), else the patient; never a minor. One rule for reminders, plan
proposals and e-mails, decided in core.recipients.

An e-mail goes only to one valid address (core.contact): an address that fails the rule (stored by an
older version, or edited in the database) counts as none, so the letter goes by post. Names and
postal lines are put on one line: a CR/LF from an input file can neither split a mail header nor stop
the night's run."""

from __future__ import annotations

from recouvrement.core.contact import one_line
from recouvrement.core.recipients import consented, has_guarantor, is_minor, recipient_email, recipient_mobile, text_of

__all__ = ["consented", "debtor_of", "has_guarantor", "is_minor", "line_of", "patient_name", "recipient_email",
           "recipient_mobile", "recipient_of", "text_of"]


def line_of(value) -> str:
    """A database value as one line of a letter or a mail header: no line break, no control character."""
    return one_line(text_of(value))


def patient_name(person) -> str:
    return f"{line_of(person['first_name'])} {line_of(person['last_name'])}".strip()


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
