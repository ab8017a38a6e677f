"""SEPA credit transfers as an ISO 20022 `pain.001.001.09` file, to upload to the clinic's bank.

One payment information block (the clinic's account, one execution date, service level SEPA, charges
shared `SLEV`) with one transaction per refund, each with its end-to-end id: the bank echoes it on the
statement (camt.053 `Refs/EndToEndId`), which is how a refund is known to be paid. Texts are written in
the SEPA character set (Latin letters without accents, digits, ``/ - ? : ( ) . , ' +`` and space).

>>> sepa_text("Lefèvre Éloïse & fils", 70)
'Lefevre Eloise fils'
>>> sepa_amount(123456)
'1234.56'
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from xml.etree import ElementTree as ET

NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"
_NOT_SEPA = re.compile(r"[^A-Za-z0-9/\-?:().,'+ ]+")


@dataclass(frozen=True)
class Debtor:
    """The clinic: who pays, from which account."""

    name: str
    iban: str
    bic: str


@dataclass(frozen=True)
class Transfer:
    end_to_end_id: str
    amount_cents: int
    beneficiary: str
    iban: str
    bic: str | None
    remittance: str


def sepa_text(value: str, limit: int) -> str:
    bare = "".join(c for c in unicodedata.normalize("NFKD", value or "") if not unicodedata.combining(c))
    return " ".join(_NOT_SEPA.sub(" ", bare).split())[:limit].strip()


def sepa_amount(cents: int) -> str:
    units, frac = divmod(int(cents), 100)
    return f"{units}.{frac:02d}"


def _add(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{NAMESPACE}}}{tag}", attributes)
    if text is not None:
        element.text = text
    return element


def _path(parent: ET.Element, tags: str, text: str) -> ET.Element:
    element = parent
    for tag in tags.split("/"):
        element = _add(element, tag)
    element.text = text
    return element


def _agent(parent: ET.Element, tag: str, bic: str | None) -> None:
    agent = _add(_add(parent, tag), "FinInstnId")
    if bic:
        _add(agent, "BICFI", bic)
    else:                                       # SEPA: the BIC may be left out, the IBAN names the bank
        _path(agent, "Othr/Id", "NOTPROVIDED")


def pain001_document(message_id: str, created_at: datetime, debtor: Debtor, execution_date: date,
                     transfers: list[Transfer]) -> bytes:
    """The pain.001.001.09 file's bytes (UTF-8 XML) for these transfers."""
    ET.register_namespace("", NAMESPACE)
    total = sepa_amount(sum(t.amount_cents for t in transfers))
    document = ET.Element(f"{{{NAMESPACE}}}Document")
    initiation = _add(document, "CstmrCdtTrfInitn")
    header = _add(initiation, "GrpHdr")
    _add(header, "MsgId", message_id)
    _add(header, "CreDtTm", created_at.replace(microsecond=0, tzinfo=None).isoformat())
    _add(header, "NbOfTxs", str(len(transfers)))
    _add(header, "CtrlSum", total)
    _path(header, "InitgPty/Nm", sepa_text(debtor.name, 140))
    payment = _add(initiation, "PmtInf")
    _add(payment, "PmtInfId", message_id)
    _add(payment, "PmtMtd", "TRF")
    _add(payment, "NbOfTxs", str(len(transfers)))
    _add(payment, "CtrlSum", total)
    _path(payment, "PmtTpInf/SvcLvl/Cd", "SEPA")
    _path(payment, "ReqdExctnDt/Dt", execution_date.isoformat())
    _path(payment, "Dbtr/Nm", sepa_text(debtor.name, 70))
    _path(payment, "DbtrAcct/Id/IBAN", debtor.iban)
    _agent(payment, "DbtrAgt", debtor.bic)
    _add(payment, "ChrgBr", "SLEV")
    for transfer in transfers:
        item = _add(payment, "CdtTrfTxInf")
        _path(item, "PmtId/EndToEndId", transfer.end_to_end_id)
        _add(_add(item, "Amt"), "InstdAmt", sepa_amount(transfer.amount_cents), Ccy="EUR")
        if transfer.bic:
            _agent(item, "CdtrAgt", transfer.bic)
        _path(item, "Cdtr/Nm", sepa_text(transfer.beneficiary, 70))
        _path(item, "CdtrAcct/Id/IBAN", transfer.iban)
        _path(item, "RmtInf/Ustrd", sepa_text(transfer.remittance, 140))
    ET.indent(document)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(document, encoding="utf-8", xml_declaration=False) + b"\n"
