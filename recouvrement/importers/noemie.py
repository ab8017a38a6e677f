"""Read NOEMIE PS returns (RSP, "Rejet Signalement Paiement"): what an insurer paid, rejected or took back.

A NOEMIE file is read in 128-byte blocks. The first block is the `000` header; every block after it
starts with a segment indicator (`1` on the last data segment, whose trailing spaces are padding)
followed by 127 characters of data; one block after the last segment holds the `999` end of file.
The data segments, glued together, are a run of logical entities, each ending with `@`; positions
1-3 give the entity type, 4-5 its hierarchy level. Positions below are 1-based and inclusive.

Checked against the open-source viewer sesamviewer (GPL, data/noemie-ps.xml and src/noemie.c): the
block assembly, and the layouts of 000, 071, 080, 102, 103, 110, 120, 198, 199, 210, 250, 290, 294,
990 and 999 (each entity's length, hence where its `@` must be). Taken from the issue and decided
here, because no public sample file nor the CNAM's cahier des charges was at hand:
  - dates are AAMMJJ (YYMMDD, as in SESAM-Vitale), years 00-99 read as 2000-2099;
  - amounts are cents without a decimal point; a sign field says P (positive) or N (negative);
  - the hierarchy is read from the order of the entities: `071` transfer > `080` batch > `102`
    invoice > what follows the invoice (`198`/`199` shares, `250` clawbacks, `290`/`294`
    rejections, `103`/`110`/`120` identity, `210` acts). Batches outside any `071` (before the
    first, or after a transfer's closing `990`: a return with rejections only moves no money, so
    has no transfer) are dated by the file's date;
  - a `990` closes the innermost open group (the batch, else the transfer): each batch and each
    transfer must be closed by one. Its count is the invoices of the batch (the batches of the
    transfer), its amount the signed sum of the amounts paid (198/199 positions 15-23) and of the
    clawbacks (250) in the group. The `999` counts the entities between header and end of file and
    the batches, and sums the whole file. Any total that disagrees refuses the whole file.

What becomes of each entity (the payer type comes from the entity: 198 AMO, 199 AMC; a 250 has no
share of its own and takes the sender's: an AMC sender, OC/CS/SM, means AMC, any other AMO):
  - a share paid (state P, sign P, amount > 0): a payment of that share of the invoice named in the
    102 (explicit rule), dated by the 071 transfer, referenced by the transfer's label;
  - a share rejected (state R): a rejection line (amount 0) naming the invoice, so reconciliation
    moves the share to the patient. Its reason is the rejection's label (the 294 lines about that
    share, O for AMO, C for AMC, else the 290 lines of the invoice), passed through the privacy
    scanner: a label that names care (an ALD, an act) is stored as its masked description;
  - a share deferred (D): nothing is stored (the share stays awaited from the insurer, which will pay
    or reject it in a later return); counted in a warning. A share with state blank: nothing;
  - a negative amount (a share paid with sign N, or a 250 with sign N): a clawback line (status
    `clawback`, negative amount) that reconciliation turns into reversals of the insurer's earlier
    allocations on that share; a 250 with sign P gives the money back: a payment.
The NIR read from 103/110 is hashed at once (the installation's HMAC key, as for invoices) so the
application can check the patient of the invoice; names, birth dates and act codes (103, 110, 120,
210) are never kept. Error messages name the entity (type, block, invoice number), never its content.
Invoice numbers are 9 characters: `[noemie]` in rules/insurers.toml maps them to the practice
software's numbers (a prefix and a suffix; the application then finds the invoice by its compact
number, so punctuation does not matter).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date
from typing import NoReturn
from pathlib import Path

import pandas as pd

from recouvrement.core.privacy import redact
from recouvrement.errors import RecouvrementError
from recouvrement.importers.base import PAYMENT_COLUMNS, Parsed, empty_payments
from recouvrement.importers.insurers import NoemieNumbers, load_noemie_numbers

KIND = "payments"
BLOCK = 128
SEGMENT = BLOCK - 1                 # data characters in a block after its segment indicator
LAST_SEGMENT = "1"

# Length of each entity, its closing `@` included (sesamviewer's layouts).
LENGTHS = {
    "020": 21, "040": 21, "070": 12, "071": 86, "080": 15, "081": 22, "100": 15, "102": 40, "103": 152,
    "110": 88, "120": 57, "150": 8, "160": 23, "198": 24, "199": 49, "210": 118, "250": 47, "261": 19,
    "262": 134, "290": 98, "294": 153, "295": 135, "990": 43,
}
ENTITY_NAMES = {"071": "virement", "080": "lot", "102": "facture", "198": "part AMO", "199": "part AMC",
                "250": "retenue", "290": "rejet", "294": "ligne de rejet", "990": "contrôle",
                "103": "assuré", "110": "assuré", "120": "malade", "210": "acte"}
IDENTITY = ("103", "110", "120")
DROPPED = IDENTITY + ("210",)       # personal and medical data: read for the NIR check only, then dropped
AMC_SENDERS = ("OC", "CS", "SM")
SENDER_NAMES = {"CP": "CPAM", "MA": "MSA", "OC": "ORGANISME COMPLEMENTAIRE", "CS": "ORGANISME COMPLEMENTAIRE",
                "SM": "SECTION MUTUALISTE", "CM": "CNMSS", "EN": "ENIM", "CE": "CRPCEN", "CT": "ASSURANCE MALADIE"}
STATES = ("P", "R", "D", " ")


# --- the remittance as the file says it (what the test writer writes and the reader gives back) ----

@dataclass(frozen=True)
class Share:
    """A 198 (AMO) or 199 (AMC) entity: one insurer's share of the invoice and what became of it."""

    payer: str                      # amo | amc
    asked_cents: int
    state: str                      # P paid | R rejected | D deferred | " " not processed
    paid_cents: int = 0             # signed (a negative amount takes money back)
    amc_number: str = ""            # 199 only


@dataclass(frozen=True)
class Rejection:
    """A 290 (rejection or notice of the invoice) or 294 (rejection line) entity."""

    code: str
    label: str
    level: str = ""                 # 294: F invoice | L line | A refined code
    share: str = ""                 # 294: O compulsory | C complementary
    detailed: bool = True           # True for a 294, False for a 290


@dataclass(frozen=True)
class Clawback:
    """A 250 entity (retenue): money an insurer takes back (negative) or gives back (positive)."""

    cents: int                      # signed
    nature: str = "IND"             # 24-26, e.g. IND indu sur prestations
    operation: str = "RPR"          # 27-29, e.g. RPR retenue sur prestation
    debt_reference: str = ""
    debt_date: date | None = None


@dataclass(frozen=True)
class Invoice:
    number: str                     # the 9 characters of the 102, spaces stripped
    invoice_type: str = "F"
    shares: tuple[Share, ...] = ()
    rejections: tuple[Rejection, ...] = ()
    clawbacks: tuple[Clawback, ...] = ()
    nir_hashes: tuple[str, ...] = ()  # keyed hashes of the NIRs of 103/110 (insured, beneficiary); never the NIRs

    @property
    def cents(self) -> int:
        """What the invoice weighs in the control totals: amounts paid and clawbacks, signed."""
        return sum(s.paid_cents for s in self.shares) + sum(c.cents for c in self.clawbacks)


@dataclass(frozen=True)
class Batch:
    number: str
    created: date
    invoices: tuple[Invoice, ...] = ()

    @property
    def cents(self) -> int:
        return sum(i.cents for i in self.invoices)


@dataclass(frozen=True)
class Transfer:
    """A 071 bank transfer and its batches; `on` is None for the batches that come before any 071."""

    on: date | None
    label: tuple[str, str] = ("", "")
    payer: str = ""
    batches: tuple[Batch, ...] = ()

    @property
    def cents(self) -> int:
        return sum(b.cents for b in self.batches)

    @property
    def reference(self) -> str:
        return " ".join(" ".join(self.label).split())


@dataclass(frozen=True)
class Remittance:
    sender_type: str                # CP CPAM, MA MSA, OC complementary insurer, ...
    sender_number: str              # 14 digits
    created: date
    file_id: str = "000001"
    norm: str = "0580"
    flow: str = "R"                 # R real, T test
    transfers: tuple[Transfer, ...] = ()

    @property
    def cents(self) -> int:
        return sum(t.cents for t in self.transfers)


# --- sniff and read ----------------------------------------------------------------------------------

def sniff(head: bytes, name: str) -> bool:
    """True when the file starts with a NOEMIE header (000, sender type, euros), whatever it is called."""
    text = head[:BLOCK].decode("latin-1")
    return (len(text) == BLOCK and text.startswith("000") and text[3:5].isalpha() and text[3:5].isupper()
            and text[5:19].strip().isdigit() and text[55:61].isdigit() and text[69] == "U")


def read(path: Path, *, nir_key: bytes = b"", numbers: NoemieNumbers | None = None) -> Parsed:
    """Payments, rejections and clawbacks of one NOEMIE return; RecouvrementError (the whole file refused)
    when it cannot be read whole or its control totals disagree."""
    path = Path(path)
    numbers = numbers if numbers is not None else load_noemie_numbers()
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RecouvrementError(f"lecture impossible : {exc.strerror}", file=path.name) from None
    remittance, located = parse(data, path.name, nir_key=nir_key)
    return _parsed(remittance, located, path.name, numbers)


def parse(data: bytes, file: str = "", *, nir_key: bytes = b"") -> tuple[Remittance, dict]:
    """(the remittance, the block where each share/clawback entity starts, by id()) of a NOEMIE file."""
    header, stream, trailer = _assemble(data, file)
    reader = _Reader(file, header, nir_key)
    for kind, text, block in _entities(stream, file):
        reader.add(kind, text, block)
    return reader.finish(trailer, len(data) // BLOCK), reader.blocks


# --- blocks → entities -------------------------------------------------------------------------------

def _assemble(data: bytes, file: str) -> tuple[str, str, str]:
    """(header, the data segments glued together, end of file) from the 128-byte blocks."""
    text = data.decode("latin-1")                    # one byte, one character: positions stay exact
    if not text:
        raise RecouvrementError("le fichier est vide", file=file)
    if len(text) % BLOCK:
        raise RecouvrementError(f"fichier tronqué : {len(text)} octets, pas un multiple de {BLOCK} "
                                f"(le bloc {len(text) // BLOCK + 1} est incomplet)", file=file,
                                line=len(text) // BLOCK + 1)
    blocks = [text[i:i + BLOCK] for i in range(0, len(text), BLOCK)]
    if not blocks[0].startswith("000"):
        raise RecouvrementError("pas un retour NOEMIE : le premier bloc n'est pas un en-tête 000", file=file, line=1)
    pieces, last = [], None
    for number, block in enumerate(blocks[1:], start=2):
        if block[0] == LAST_SEGMENT:
            pieces.append(block[1:].rstrip(" "))
            last = number
            break
        pieces.append(block[1:])
    if last is None:
        raise RecouvrementError("fichier tronqué : aucun bloc ne porte l'indicateur de dernier segment (1) et la fin "
                                "de fichier 999 manque", file=file, line=len(blocks))
    rest = blocks[last:]
    if not rest or not rest[0].startswith("999"):
        raise RecouvrementError("fichier tronqué : la fin de fichier 999 manque après le dernier segment",
                                file=file, line=last + 1)
    if len(rest) > 1:
        raise RecouvrementError(f"{len(rest) - 1} bloc(s) après la fin de fichier 999", file=file, line=last + 2)
    return blocks[0], "".join(pieces), rest[0]


def _block_of(offset: int) -> int:
    """The 1-based block where a character of the glued data segments was written."""
    return 2 + offset // SEGMENT


def _entities(stream: str, file: str):
    """(type, text, block) of each entity, its `@` checked where its layout puts it."""
    position, count = 0, 0
    while position < len(stream):
        count += 1
        block = _block_of(position)
        kind = stream[position:position + 3]
        if len(kind) < 3 or not kind.isdigit():
            raise RecouvrementError(f"entité n° {count} illisible : son type n'est pas 3 chiffres", file=file,
                                    line=block, field="type d'entité")
        length = LENGTHS.get(kind)
        if length is None:
            end = stream.find("@", position)
            if end < 0:
                raise RecouvrementError(f"entité {kind} (n° {count}) : fin d'entité « @ » absente (fichier tronqué ?)",
                                        file=file, line=block, field=kind)
            length = end - position + 1
        elif position + length > len(stream):
            raise RecouvrementError(f"fichier tronqué : l'entité {kind} ({_name(kind)}, n° {count}) s'arrête avant sa "
                                    f"fin ({len(stream) - position} caractères sur {length})", file=file, line=block,
                                    field=kind)
        elif stream[position + length - 1] != "@":
            raise RecouvrementError(f"entité {kind} ({_name(kind)}, n° {count}) : fin d'entité « @ » absente en "
                                    f"position {length}", file=file, line=block, field=kind)
        yield kind, stream[position:position + length], block
        position += length


def _name(kind: str) -> str:
    return ENTITY_NAMES.get(kind, "entité inconnue")


# --- entities → remittance ---------------------------------------------------------------------------

def field_(text: str, start: int, end: int) -> str:
    """Positions start..end, 1-based and inclusive, as the layouts give them."""
    return text[start - 1:end]


def _yymmdd(text: str) -> date | None:
    if len(text) != 6 or not text.isdigit():
        return None
    try:
        return date(2000 + int(text[:2]), int(text[2:4]), int(text[4:6]))
    except ValueError:
        return None


@dataclass
class _Open:
    """A group being read (transfer or batch): its entity fields and children so far."""

    block: int
    values: dict
    children: list = field(default_factory=list)


@dataclass
class _Reader:
    file: str
    header: str
    nir_key: bytes
    transfers: list[_Open] = field(default_factory=list)
    transfer: _Open | None = None
    batch: _Open | None = None
    invoice: dict | None = None
    entities: int = 0
    batches: int = 0
    blocks: dict = field(default_factory=dict)   # (transfer, batch, invoice, kind, rank) -> block
    unknown: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.sender_type = field_(self.header, 4, 5)
        created = _yymmdd(field_(self.header, 56, 61))
        if created is None:
            self._fail("date de création du fichier illisible (AAMMJJ attendu)", 1, "000")
        if field_(self.header, 70, 70) != "U":
            self._fail("unité monétaire autre que l'euro (U attendu en position 70)", 1, "000")
        self.created = created

    def _fail(self, message: str, block: int, kind: str) -> NoReturn:
        raise RecouvrementError(message, file=self.file, line=block, field=kind)

    def _where(self, kind: str, block: int) -> str:
        what = f"entité {kind} ({_name(kind)}"
        if self.invoice is not None and kind not in ("071", "080", "990"):
            what += f", facture {self.invoice['number']}"
        return what + ")"

    def add(self, kind: str, text: str, block: int) -> None:
        self.entities += 1
        handler = getattr(self, f"_e{kind}", None)
        if handler is not None:
            handler(text, block)
        elif kind in DROPPED:
            return
        else:
            self.unknown[kind] += 1

    # groups
    def _e071(self, text: str, block: int) -> None:
        self._require_closed(block)
        on = _yymmdd(field_(text, 6, 11))
        if on is None:
            self._fail(f"{self._where('071', block)} : date du virement illisible (AAMMJJ attendu)", block, "071")
        self.transfer = _Open(block, {"on": on, "label": (field_(text, 12, 43).rstrip(), field_(text, 44, 75).rstrip()),
                                      "payer": field_(text, 76, 85).strip()})
        self.transfers.append(self.transfer)

    def _e080(self, text: str, block: int) -> None:
        self._close_invoice()
        if self.batch is not None:
            self._fail(f"lot {self.batch.values['number']} : entité de contrôle 990 manquante avant le lot suivant",
                       block, "990")
        if self.transfer is None or self.transfer.values.get("closed"):   # outside any 071: no money moved
            self.transfer = _Open(block, {"on": None, "label": ("", ""), "payer": ""}, [])
            self.transfers.append(self.transfer)
            self.transfer.values["implicit"] = True
        created = _yymmdd(field_(text, 6, 11))
        if created is None:
            self._fail(f"{self._where('080', block)} : date du lot illisible (AAMMJJ attendu)", block, "080")
        self.batch = _Open(block, {"number": field_(text, 12, 14), "created": created})
        self.batches += 1

    def _e102(self, text: str, block: int) -> None:
        self._close_invoice()
        if self.batch is None:
            self._fail("entité 102 (facture) hors de tout lot 080", block, "102")
        number = field_(text, 6, 14).strip()
        if not number:
            self._fail("entité 102 (facture) : numéro de facture vide", block, "102")
        self.invoice = {"number": number, "invoice_type": field_(text, 30, 30), "shares": [], "rejections": [],
                        "clawbacks": [], "nir_hashes": set(), "block": block}

    def _in_invoice(self, kind: str, block: int) -> dict:
        if self.invoice is None:
            self._fail(f"entité {kind} ({_name(kind)}) hors de toute facture 102", block, kind)
        return self.invoice

    def _amount(self, text: str, start: int, end: int, sign_at: int, kind: str, block: int, what: str) -> int:
        digits, sign = field_(text, start, end), field_(text, sign_at, sign_at)
        if not digits.isdigit():
            if not digits.strip() and sign in ("P", " "):
                return 0
            self._fail(f"{self._where(kind, block)} : {what} illisible (des chiffres attendus)", block, kind)
        if sign not in ("P", "N"):
            self._fail(f"{self._where(kind, block)} : signe {sign!r} inconnu (P ou N attendu)", block, kind)
        return int(digits) * (-1 if sign == "N" else 1)

    def _share(self, text: str, block: int, kind: str) -> None:
        invoice = self._in_invoice(kind, block)
        asked = field_(text, 6, 13)
        if not asked.isdigit():
            self._fail(f"{self._where(kind, block)} : montant demandé illisible (des chiffres attendus)", block, kind)
        state = field_(text, 14, 14)
        if state not in STATES:
            self._fail(f"{self._where(kind, block)} : état de paiement {state!r} inconnu (P, R, D ou blanc attendu)",
                       block, kind)
        paid = self._amount(text, 15, 22, 23, kind, block, "montant payé")
        share = Share("amo" if kind == "198" else "amc", int(asked), state, paid,
                      field_(text, 24, 33).strip() if kind == "199" else "")
        self._locate(kind, len(invoice["shares"]), block)
        invoice["shares"].append(share)

    def _e198(self, text: str, block: int) -> None:
        self._share(text, block, "198")

    def _e199(self, text: str, block: int) -> None:
        self._share(text, block, "199")

    def _e250(self, text: str, block: int) -> None:
        invoice = self._in_invoice("250", block)
        cents = self._amount(text, 30, 37, 38, "250", block, "montant de la retenue")
        self._locate("250", len(invoice["clawbacks"]), block)
        invoice["clawbacks"].append(Clawback(cents, field_(text, 24, 26), field_(text, 27, 29),
                                             field_(text, 8, 17).strip(), _yymmdd(field_(text, 18, 23))))

    def _e290(self, text: str, block: int) -> None:
        self._in_invoice("290", block)["rejections"].append(
            Rejection(field_(text, 8, 17).strip(), field_(text, 18, 97).strip(), detailed=False))

    def _e294(self, text: str, block: int) -> None:
        self._in_invoice("294", block)["rejections"].append(
            Rejection(field_(text, 6, 9).strip(), field_(text, 10, 95).strip(), field_(text, 96, 96).strip(),
                      field_(text, 97, 97).strip()))

    def _identity(self, text: str, block: int, kind: str, *places: tuple[int, int]) -> None:
        """Each NIR (13 characters and a 2-digit key) is hashed here and only its hash goes on: the
        insured's, and in a 103 the beneficiary's own (a child is often billed on a parent's NIR)."""
        from recouvrement.importers.invoices_csv import nir_hash
        invoice = self._in_invoice(kind, block)
        for start, end in places:
            nir = field_(text, start, end).replace(" ", "").upper()
            if len(nir) == 15:
                invoice["nir_hashes"].add(nir_hash(nir, self.nir_key))

    def _e103(self, text: str, block: int) -> None:
        self._identity(text, block, "103", (6, 20), (86, 100))

    def _e110(self, text: str, block: int) -> None:
        self._identity(text, block, "110", (6, 20))

    def _e990(self, text: str, block: int) -> None:
        self._close_invoice()
        count, total = field_(text, 23, 30), field_(text, 31, 41)
        sign, ident = field_(text, 42, 42), field_(text, 6, 22).strip()
        if not (count.isdigit() and total.isdigit()) or sign not in ("P", "N"):
            self._fail("entité 990 (contrôle) illisible : compteur, cumul ou signe", block, "990")
        declared = int(total) * (-1 if sign == "N" else 1)
        if self.batch is not None:
            group, name = self.batch, f"lot {self.batch.values['number']}"
            actual_count, actual = len(group.children), sum(i.cents for i in group.children)
            if ident[:3] not in ("", "080") or (ident[:3] == "080" and ident[3:6].strip()
                                                 and ident[3:6] != group.values["number"]):
                self._fail(f"entité 990 (contrôle) : elle désigne {ident!r}, mais le groupe ouvert est le {name}",
                           block, "990")
            assert self.transfer is not None, "a batch opens inside a transfer (an implicit one at worst)"
            self.transfer.children.append(Batch(group.values["number"], group.values["created"], tuple(group.children)))
            self.batch = None
        elif self.transfer is not None and not self.transfer.values.get("closed"):
            group, name = self.transfer, f"virement du {_french(self.transfer.values['on'])}"
            actual_count, actual = len(group.children), sum(b.cents for b in group.children)
            if ident[:3] not in ("", "071"):
                self._fail(f"entité 990 (contrôle) : elle désigne {ident!r}, mais le groupe ouvert est le {name}",
                           block, "990")
            self.transfer.values["closed"] = True
        else:
            self._fail("entité 990 (contrôle) sans lot ni virement ouvert", block, "990")
        if int(count) != actual_count or declared != actual:
            self._fail(f"totaux de contrôle en désaccord (entité 990, {name}) : le fichier annonce {int(count)} "
                       f"élément(s) pour {_euros(declared)}, il en contient {actual_count} pour {_euros(actual)} ; "
                       "fichier refusé en entier", block, "990")

    def _close_invoice(self) -> None:
        if self.invoice is None:
            return
        values = self.invoice
        assert self.batch is not None, "an invoice opens inside a batch (_e102)"
        self.batch.children.append(Invoice(values["number"], values["invoice_type"], tuple(values["shares"]),
                                           tuple(values["rejections"]), tuple(values["clawbacks"]),
                                           tuple(sorted(values["nir_hashes"]))))
        self.invoice = None

    def _require_closed(self, block: int) -> None:
        self._close_invoice()
        if self.batch is not None:
            self._fail(f"lot {self.batch.values['number']} : entité de contrôle 990 manquante", block, "990")
        if self.transfer is not None and not self.transfer.values.get("closed") \
                and not self.transfer.values.get("implicit"):
            self._fail(f"virement du {_french(self.transfer.values['on'])} : entité de contrôle 990 manquante",
                       block, "990")
        self.transfer = None

    def _locate(self, kind: str, rank: int, block: int) -> None:
        assert self.transfer is not None and self.batch is not None, "located inside an invoice, so a batch"
        key = (len(self.transfers) - 1, len(self.transfer.children), len(self.batch.children), kind, rank)
        self.blocks[key] = block

    def finish(self, trailer: str, block: int) -> Remittance:
        self._require_closed(block)
        transfers = tuple(Transfer(t.values["on"], t.values["label"], t.values["payer"], tuple(t.children))
                          for t in self.transfers)
        remittance = Remittance(self.sender_type, field_(self.header, 6, 19), self.created,
                                field_(self.header, 50, 55), field_(self.header, 62, 65), field_(self.header, 71, 71),
                                transfers)
        count, batches, total, sign = (field_(trailer, 56, 63), field_(trailer, 83, 85), field_(trailer, 86, 96),
                                       field_(trailer, 97, 97))
        if not (count.isdigit() and batches.isdigit() and total.isdigit()) or sign not in ("P", "N"):
            self._fail("fin de fichier 999 illisible : nombre d'entités, de lots ou cumul", block, "999")
        declared = int(total) * (-1 if sign == "N" else 1)
        if (int(count), int(batches), declared) != (self.entities, self.batches, remittance.cents):
            raise RecouvrementError(
                f"totaux de contrôle en désaccord (fin de fichier 999) : le fichier annonce {int(count)} entité(s), "
                f"{int(batches)} lot(s) pour {_euros(declared)}, il contient {self.entities} entité(s), {self.batches} "
                f"lot(s) pour {_euros(remittance.cents)} ; fichier refusé en entier", file=self.file, line=block,
                field="999")
        return remittance


def _euros(cents: int) -> str:
    from recouvrement.money import format_eur
    return format_eur(cents)


def _french(on: date | None) -> str:
    return on.strftime("%d/%m/%Y") if on else "?"


# --- remittance → payment rows ----------------------------------------------------------------------

def _parsed(remittance: Remittance, located: dict, file: str, numbers: NoemieNumbers) -> Parsed:
    rows, deferred, nothing = [], 0, 0
    clawback_payer = "amc" if remittance.sender_type in AMC_SENDERS else "amo"
    sender = SENDER_NAMES.get(remittance.sender_type, remittance.sender_type)
    for t, transfer in enumerate(remittance.transfers):
        on = (transfer.on or remittance.created).isoformat()
        payer_name = transfer.payer or sender
        for b, batch in enumerate(transfer.batches):
            for i, invoice in enumerate(batch.invoices):
                base = {"payment_date": on, "reference": transfer.reference,
                        "invoice_number": numbers.invoice_number(invoice.number), "_nir_hashes": invoice.nir_hashes,
                        "_key": (remittance.sender_type, remittance.sender_number, on, transfer.reference,
                                 batch.number, invoice.number)}
                for rank, share in enumerate(invoice.shares):
                    line = located.get((t, b, i, "198" if share.payer == "amo" else "199", rank), 0)
                    name = f"AMC {share.amc_number}" if share.payer == "amc" and share.amc_number else payer_name
                    row = dict(base, payer_type=share.payer, payer_name=name, source_line=line)
                    if share.state == "D":
                        deferred += 1
                    elif share.state == "R":
                        rows.append(dict(row, amount_cents=0, status="rejected",
                                         reject_reason=_reason(invoice, share.payer)))
                    elif share.state == "P" and share.paid_cents:
                        status = "paid" if share.paid_cents > 0 else "clawback"
                        rows.append(dict(row, amount_cents=share.paid_cents, status=status, reject_reason=None))
                    else:
                        nothing += 1
                for rank, clawback in enumerate(invoice.clawbacks):
                    line = located.get((t, b, i, "250", rank), 0)
                    if clawback.cents == 0:
                        nothing += 1
                        continue
                    rows.append(dict(base, payer_type=clawback_payer, payer_name=payer_name, source_line=line,
                                     amount_cents=clawback.cents,
                                     status="paid" if clawback.cents > 0 else "clawback", reject_reason=None))
    kept = rows                        # 8 digits: never above the 10 000 000,00 € bound of a line
    warnings = []
    if deferred:
        warnings.append(f"{file}: {deferred} part(s) différée(s) : rien n'est enregistré, la part reste attendue de "
                        "l'assureur")
    if nothing:
        warnings.append(f"{file}: {nothing} part(s) sans paiement ni rejet ignorée(s)")
    frame = _frame(kept) if kept else empty_payments().assign(_nir_hashes=pd.Series(dtype="object"))
    parsed = Parsed(KIND, frame[PAYMENT_COLUMNS].reset_index(drop=True), [], warnings,
                    rows_read=len(rows) + deferred)
    # What the application checks against the patient of each row's invoice, then drops: never stored.
    # payment_id, nir_hash: one row per NIR hash read for the invoice of the payment line.
    hashes = frame[["payment_id", "_nir_hashes"]].explode("_nir_hashes").dropna()
    parsed.nir_hashes = hashes.rename(columns={"_nir_hashes": "nir_hash"}).reset_index(drop=True)  # type: ignore
    return parsed


def _reason(invoice: Invoice, payer: str) -> str | None:
    """The rejection's labels about this share (294 O or C), else the invoice's (290, 294 without share),
    privacy-scanned: a label naming care is stored as its masked description."""
    share = "O" if payer == "amo" else "C"
    own = [r for r in invoice.rejections if r.detailed and r.share == share]
    chosen = own or [r for r in invoice.rejections if not r.detailed or not r.share]
    if not chosen:
        return None
    text = " ; ".join(" ".join(p for p in (f"rejet {r.code}" if r.code else "", r.label) if p) for r in chosen)
    return redact(text)


def _frame(rows: list[dict]) -> pd.DataFrame:
    seen: Counter = Counter()
    for row in rows:
        key = (*row["_key"], row["payer_type"], row["status"], str(row["amount_cents"]))
        seen[key] += 1
        digest = hashlib.sha256("|".join([*key, str(seen[key])]).encode("utf-8")).hexdigest()
        row["payment_id"] = "noemie-" + digest[:16]
    frame = pd.DataFrame(rows)
    frame["reject_reason"] = frame["reject_reason"].astype("object")
    return frame.astype({"amount_cents": "int64", "source_line": "int64"})


def with_invoices(remittance: Remittance, invoices: dict[str, Invoice]) -> Remittance:
    """The remittance with some invoices replaced (by number): a helper for tests and tools."""
    return replace(remittance, transfers=tuple(
        replace(t, batches=tuple(replace(b, invoices=tuple(invoices.get(i.number, i) for i in b.invoices))
                                 for b in t.batches)) for t in remittance.transfers))
