"""Write NOEMIE PS returns (RSP) from a Remittance: for tests and the sample clinic, never for production.

The layout is the one recouvrement.importers.noemie reads (positions in its docstring): a 128-byte
`000` header block, data blocks of a segment indicator (`0`, then `1` on the last) and 127
characters, and a `999` end-of-file block. Identity (`110`, `120`) and act (`210`) entities are
written for the invoices given an identity, so that the reader's job of dropping them is tested.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from recouvrement.importers.noemie import (BLOCK, LENGTHS, SEGMENT, Batch, Clawback, Invoice, Rejection, Remittance,
                                           Share, Transfer)


@dataclass(frozen=True)
class Identity:
    """Who an invoice was for, as a NOEMIE return repeats it (fictional data in tests)."""

    nir: str                         # 15 characters: 13 and the key
    last_name: str = "DUPONT"
    first_name: str = "MARIE"
    birth: date = date(1970, 1, 1)
    act_code: str = "C"


def yymmdd(on: date | None) -> str:
    return on.strftime("%y%m%d") if on else "      "


def signed(cents: int, width: int) -> tuple[str, str]:
    return str(abs(cents)).zfill(width), "N" if cents < 0 else "P"


def _entity(kind: str, level: str, body: str) -> str:
    text = f"{kind}{level}{body}@"
    assert len(text) == LENGTHS[kind], (kind, len(text), LENGTHS[kind])
    return text


def transfer_entity(transfer: Transfer) -> str:
    first, second = transfer.label
    return _entity("071", "02", yymmdd(transfer.on) + first.ljust(32)[:32] + second.ljust(32)[:32]
                   + transfer.payer.ljust(10)[:10])


def batch_entity(batch: Batch) -> str:
    return _entity("080", "03", yymmdd(batch.created) + batch.number.rjust(3, "0"))


def invoice_entity(invoice: Invoice, batch: Batch) -> str:
    return _entity("102", "04", invoice.number.ljust(9)[:9] + " " * 6 + batch.number.rjust(3, "0")
                   + yymmdd(batch.created) + invoice.invoice_type[:1].ljust(1) + yymmdd(batch.created) + " " + "AS")


def identity_entities(identity: Identity) -> list[str]:
    nir = identity.nir.replace(" ", "")
    insured = _entity("110", "05", nir[:13].ljust(13) + nir[13:15].rjust(2, "0") + "P"
                      + identity.last_name.ljust(25)[:25] + " " * 26 + identity.first_name.ljust(15)[:15])
    patient = _entity("120", "05", yymmdd(identity.birth) + "1" + identity.last_name.ljust(25)[:25]
                      + identity.first_name.ljust(15)[:15] + "0001")
    return [insured, patient]


def act_entity(identity: Identity, on: date) -> str:
    body = ("01" + "00" + " " + "00" + "001" + yymmdd(on) + yymmdd(on) + yymmdd(on) + "00002500" + "00002500"
            + "070" + "00001750" + "P" + identity.act_code.ljust(3)[:3] + "  " + "001" + "00001" + "001"
            + "00002500" + "  " + "000" + "00000000" + "030" + "00000750" + "00002500")
    return _entity("210", "05", body)


def share_entity(share: Share) -> str:
    paid, sign = signed(share.paid_cents, 8)
    body = str(share.asked_cents).zfill(8) + share.state + paid + sign
    if share.payer == "amc":
        return _entity("199", "05", body + share.amc_number.ljust(10)[:10] + " " * 15)
    return _entity("198", "05", body)


def clawback_entity(clawback: Clawback, line: int) -> str:
    amount, sign = signed(clawback.cents, 8)
    return _entity("250", "05", str(line).zfill(2) + clawback.debt_reference.ljust(10)[:10]
                   + yymmdd(clawback.debt_date) + clawback.nature.ljust(3)[:3] + clawback.operation.ljust(3)[:3]
                   + amount + sign + "0" * 8)


def rejection_entity(rejection: Rejection, line: int) -> str:
    if not rejection.detailed:
        return _entity("290", "05", str(line).zfill(2) + rejection.code.ljust(10)[:10] + rejection.label.ljust(80)[:80])
    return _entity("294", "05", rejection.code.ljust(4)[:4] + rejection.label.ljust(86)[:86] + rejection.level[:1].ljust(1)
                   + rejection.share[:1].ljust(1) + " " * 5 + " " * 6 + " " * 9 + "001" + "01" + " " * 30)


def control_entity(ident: str, count: int, cents: int) -> str:
    total, sign = signed(cents, 11)
    return _entity("990", "99", ident.ljust(17)[:17] + str(count).zfill(8) + total + sign)


def entities(remittance: Remittance, identities: dict[str, Identity] | None = None) -> list[str]:
    """Every entity between header and end of file, in order."""
    identities = identities or {}
    out: list[str] = []
    for transfer in remittance.transfers:
        if transfer.on is not None:
            out.append(transfer_entity(transfer))
        for batch in transfer.batches:
            out.append(batch_entity(batch))
            for invoice in batch.invoices:
                out.append(invoice_entity(invoice, batch))
                identity = identities.get(invoice.number)
                if identity is not None:
                    out += identity_entities(identity)
                out += [share_entity(s) for s in invoice.shares]
                if identity is not None:
                    out.append(act_entity(identity, batch.created))
                out += [clawback_entity(c, n) for n, c in enumerate(invoice.clawbacks, start=1)]
                out += [rejection_entity(r, n) for n, r in enumerate(invoice.rejections, start=1)]
            out.append(control_entity("080" + batch.number.rjust(3, "0"), len(batch.invoices), batch.cents))
        if transfer.on is not None:
            out.append(control_entity("071", len(transfer.batches), transfer.cents))
    return out


def header(remittance: Remittance) -> str:
    text = ("000" + remittance.sender_type + remittance.sender_number.rjust(14, "0") + " " * 6 + "TE"
            + "12345678901234" + " " * 6 + "  " + remittance.file_id.ljust(6)[:6] + yymmdd(remittance.created)
            + remittance.norm.ljust(4)[:4] + "01" + " " + "N" + "U" + remittance.flow[:1].ljust(1) + " " * 11
            + "128" + " " * 6)
    return text.ljust(BLOCK)


def trailer(remittance: Remittance, count: int, batches: int, cents: int) -> str:
    total, sign = signed(cents, 11)
    text = ("999" + remittance.sender_type + remittance.sender_number.rjust(14, "0") + " " * 6 + "TE"
            + "12345678901234" + " " * 6 + "  " + remittance.file_id.ljust(6)[:6] + str(count).zfill(8)
            + remittance.flow[:1].ljust(1) + " " * 18 + str(batches).zfill(3) + total + sign)
    return text.ljust(BLOCK)


def blocks(stream: str) -> list[str]:
    """The data stream cut into blocks: indicator 0, then 1 on the last, 127 characters each."""
    chunks = [stream[i:i + SEGMENT] for i in range(0, len(stream), SEGMENT)] or [""]
    return [("1" if n == len(chunks) - 1 else "0") + chunk.ljust(SEGMENT) for n, chunk in enumerate(chunks)]


def write(remittance: Remittance, identities: dict[str, Identity] | None = None) -> bytes:
    """The NOEMIE file of a remittance; its totals are the remittance's own."""
    return assemble(remittance, entities(remittance, identities))


def assemble(remittance: Remittance, body: list[str], totals: tuple[int, int, int] | None = None) -> bytes:
    """Header, the entities cut into blocks, end of file; `totals` (entities, batches, cents) overrides the
    end of file's figures (to write a file whose totals disagree)."""
    batches = sum(1 for e in body if e.startswith("080"))
    count, batches, cents = totals or (len(body), batches, remittance.cents)
    text = header(remittance) + "".join(blocks("".join(body))) + trailer(remittance, count, batches, cents)
    return text.encode("latin-1")
