"""The matching cascade: payments to invoice shares, payer by payer, on whole tables at once.

Rules, in order, each allocation recording the rule that made it:
  explicit     the payment line names the invoice (insurer remittances);
  rf_letter    the RF reference of one of our letters (core.references.letter_reference): the payment
               settles the letter's invoices, oldest first (Code civil, art. 1342-10), a partial
               payment the oldest first too, and what is left over is a credit;
  rf           an ISO 11649 RF creditor reference of an invoice in the text (letters before 2026-12);
  text         invoice numbers found in the free text, whatever their case, spaces, dashes and
               prefixes; several numbers mean one payment for several invoices;
  name_amount  no usable reference: the payer's name is a patient's (or their guarantor's) and the
               amount equals exactly one open patient share among the patients of that name.
A payer settles its own share only: AMO the AMO share, AMC the AMC share, a patient (or an agency)
the patient share. A reference (explicit, rf or text) that names an invoice with nothing left to pay on
the patient's share is that patient's money (a credit) only when the payer's name is theirs or their
guarantor's: a payer of another name, or of no name at all, most likely mistyped the number (two digits
swapped), so the reference is ignored and the next rules try (name + amount), else the queue — never
a stranger's credit, which would chase the patient who paid. A share with something left is settled
whoever pays (a relative often pays for a patient). A rejected insurer line moves that insurer's outstanding share to the patient; an
insurer paying a share it had rejected takes it back, and what the patient paid meanwhile becomes a
credit. Whatever fits nothing, or more than one place, goes to the exceptions queue, never to a
guess. Payments are taken in (date, id) order, so the outcome does not depend on file order.
A clawback line (an insurer taking back money it paid for a share, e.g. a NOEMIE `retenue`) reverses
that insurer's allocations on that share: a negative allocation (rule `clawback`) of at most what
the insurer was allocated there, net; the share is then awaited from the insurer again. What it
cannot reverse (nothing recorded as paid by that insurer, or an unknown invoice) waits in the queue
as kind `clawback`, never dropped. Within one run, clawbacks come after the explicit payments.
A payment for several invoices settles them oldest first (Code civil, art. 1342-10).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recouvrement.core.names import compact_name, name_keys, name_keys_among
from recouvrement.core.references import is_valid_rf

SHARES = ("amo", "amc", "patient")
SHARE_OF_PAYER = {"amo": 0, "amc": 1, "patient": 2, "agency": 2}
INSURERS = ("amo", "amc")
MIN_TEXT_NUMBER = 6          # shorter tokens are too likely to be something else (a year, an amount)
PREFIXES = re.compile(r"^(?:FACTURE|FACT|FAC|FCT|INVOICE|INV|NUMERO|NUM|NO|N)(?=[0-9A-Z]{%d,}$)" % MIN_TEXT_NUMBER)
RF_PATTERN = r"(RF\d{2}(?: ?[0-9A-Z]){1,21})"

ALLOCATION_COLUMNS = ["payment_id", "invoice_number", "payer_type", "amount_cents", "rule"]
EXCEPTION_COLUMNS = ["payment_id", "kind", "remaining_cents", "reason", "patient_id"]
TRANSFER_COLUMNS = ["invoice_number", "from_payer", "amount_cents", "transfer_date", "payment_id", "reason",
                    "reversed_on", "reversed_by"]


@dataclass
class Ledger:
    """What is owed, as the database holds it before this run.

    invoices     invoice_number (unique), compact_number, patient_id, issue_date (ISO text)
    outstanding  int64 array (len(invoices), 3): what is still due on each AMO, AMC, patient share,
                 already net of earlier allocations and active transfers
    patients     patient_id, last_name, first_name, guarantor_last_name, guarantor_first_name
    transfers    active transfers: transfer_id, invoice_number, from_payer, amount_cents
    patient_allocations  earlier allocations to patient shares: payment_id, invoice_number,
                 amount_cents, payment_date (what a reversed transfer may turn into credit)
    insurer_allocated  net cents allocated so far to insurer shares: invoice_number, payer_type
                 (amo | amc), amount_cents (what a clawback may reverse); needed only with clawbacks
    """

    invoices: pd.DataFrame
    outstanding: np.ndarray
    patients: pd.DataFrame
    transfers: pd.DataFrame
    patient_allocations: pd.DataFrame
    insurer_allocated: pd.DataFrame | None = None


@dataclass
class Outcome:
    allocations: pd.DataFrame      # ALLOCATION_COLUMNS, amounts > 0 (< 0 for the rule clawback)
    exceptions: pd.DataFrame       # EXCEPTION_COLUMNS
    transfers: pd.DataFrame        # TRANSFER_COLUMNS: shares moved to the patient by rejections
    reversals: pd.DataFrame        # transfer_id, reversed_by (payment_id), reversed_on
    reductions: pd.DataFrame       # earlier patient allocations to shrink: payment_id, invoice_number, amount_cents
    outstanding: np.ndarray        # after this run

    def counts_by_rule(self) -> dict[str, int]:
        return self.allocations.groupby("rule")["payment_id"].nunique().to_dict()


class _Run:
    """State of one reconciliation: remaining amounts and outstanding shares, updated rule by rule."""

    def __init__(self, payments: pd.DataFrame, ledger: Ledger, rf: pd.Series | None = None) -> None:
        self.ledger = ledger
        self.out = ledger.outstanding.copy()
        self.index = pd.Index(ledger.invoices["invoice_number"])
        self.compact = pd.Index(ledger.invoices["compact_number"])
        self.patient_of = ledger.invoices["patient_id"].to_numpy()
        self.issue = ledger.invoices["issue_date"].to_numpy()
        payments = payments.take(_date_id_order(payments))
        # The RF reference of each payment (None: none), row by row, when the caller already found them.
        self.rf = None if rf is None else pd.Series(rf.reindex(payments.index).to_numpy(dtype=object), dtype=object)
        payments = payments.reset_index(drop=True)
        self.payments = payments
        self.remaining = payments["amount_cents"].to_numpy(dtype="int64").copy()
        self.remaining[np.isin(payments["status"].to_numpy(), ["rejected", "clawback"])] = 0
        self.col = payments["payer_type"].map(SHARE_OF_PAYER).to_numpy()
        self.matched = np.zeros(len(payments), dtype=bool)       # a rule found its invoice(s)
        self.patient = np.full(len(payments), None, dtype=object)
        self.reason = np.full(len(payments), None, dtype=object)
        self.kind = np.full(len(payments), None, dtype=object)
        self.allocations: list[pd.DataFrame] = []
        self.not_theirs: dict[int, str] = {}     # row -> an invoice its reference named, a stranger's, paid
        self.transfers: list[dict] = []
        self.reversals: list[dict] = []
        self.reductions: list[dict] = []
        self.reversed: list[dict] = []           # negative allocations made by clawbacks
        # Active transfers by (invoice, insurer): those in the database and those this run makes.
        self.active = {(t.invoice_number, t.from_payer): {"transfer_id": int(t.transfer_id), "amount": int(t.amount_cents)}
                       for t in ledger.transfers.itertuples()}

    def open_rows(self) -> np.ndarray:
        """Positions of payments still to match: paid lines that no rule has matched yet."""
        return np.flatnonzero(~self.matched & (self.remaining > 0))

    # -- rejections and resubmissions ------------------------------------------------------------

    def apply_rejections(self) -> None:
        rejected = np.flatnonzero(self.payments["status"].to_numpy() == "rejected")
        lines = self.payments.iloc[rejected]
        positions = self.index.get_indexer(lines["invoice_number"])
        self.matched[rejected] = True
        # The lines' cells as lists, column by column (to_dict("records") made a dict per line: 46k, 0.16 s).
        cells = zip(*(lines[c].tolist() for c in ("invoice_number", "payer_type", "payment_date", "payment_id",
                                                   "reject_reason")))
        for row, pos, (number, payer, on, payment_id, why) in zip(rejected, positions, cells):
            if pos < 0:
                self.kind[row], self.reason[row] = "rejection", f"rejection of unknown invoice {number}"
                continue
            col = self.col[row]
            amount = int(self.out[pos, col])
            if amount <= 0:
                continue                          # nothing left to reject: already shifted or paid
            self.out[pos, col] -= amount
            self.out[pos, 2] += amount
            self.transfers.append({"invoice_number": number, "from_payer": payer, "amount_cents": amount,
                                   "transfer_date": on, "payment_id": payment_id, "reason": why,
                                   "reversed_on": None, "reversed_by": None})
            self.active[(number, payer)] = {"new": len(self.transfers) - 1, "amount": amount}

    def take_back(self, rows: np.ndarray, positions: np.ndarray) -> None:
        """Insurer payments for a share moved to the patient: the insurer takes its share back."""
        if not self.active:
            return
        payers = self.payments["payer_type"].to_numpy()[rows]
        insurer = np.isin(payers, INSURERS)
        numbers = self.index.to_numpy()[positions[insurer]]
        moved = {number for number, _ in self.active}
        # A set's own lookup (pandas' isin on text asks pyarrow for a scalar per transfer), and the hit lines'
        # cells read at once (payments has a RangeIndex: rows are labels and positions alike; a .at per cell
        # cost 7 µs, a second at 1M).
        named = np.fromiter((number in moved for number in numbers), dtype=bool, count=len(numbers))
        hit = np.flatnonzero(insurer)[named]
        lines = self.payments[["payer_type", "payment_id", "payment_date"]].take(rows[hit])
        for number, pos, payer, by, on in zip(numbers[named], positions[hit], lines["payer_type"].tolist(),
                                              lines["payment_id"].tolist(), lines["payment_date"].tolist()):
            key = (number, payer)
            if key not in self.active:
                continue
            transfer = self.active.pop(key)
            amount = transfer["amount"]
            if "new" in transfer:                 # rejected and paid again within this run
                self.transfers[transfer["new"]].update(reversed_on=on, reversed_by=by)
            else:
                self.reversals.append({"transfer_id": transfer["transfer_id"], "reversed_by": by, "reversed_on": on})
            self.out[pos, SHARE_OF_PAYER[payer]] += amount
            self.out[pos, 2] -= amount
            if self.out[pos, 2] < 0:
                self._credit_patient_payments(key[0], int(-self.out[pos, 2]))
                self.out[pos, 2] = 0

    def _credit_patient_payments(self, invoice_number: str, excess: int) -> None:
        """The patient paid a share the insurer took back: their latest payments become credits."""
        earlier = self.ledger.patient_allocations
        earlier = earlier[earlier["invoice_number"] == invoice_number]
        now = pd.concat(self.allocations) if self.allocations else pd.DataFrame(columns=ALLOCATION_COLUMNS)
        now = now[(now["invoice_number"] == invoice_number) & (now["payer_type"] == "patient")]
        now = now.assign(payment_date=now["payment_id"].map(self.payments.set_index("payment_id")["payment_date"]))
        candidates = pd.concat([earlier, now[["payment_id", "invoice_number", "amount_cents", "payment_date"]]])
        for _, allocation in candidates.sort_values(["payment_date", "payment_id"], ascending=False).iterrows():
            cut = min(excess, int(allocation["amount_cents"]))
            if cut <= 0:
                break
            self.reductions.append({"payment_id": allocation["payment_id"], "invoice_number": invoice_number,
                                    "amount_cents": cut})
            excess -= cut

    def apply_clawbacks(self) -> None:
        """Each clawback reverses its insurer's net allocations on the share, up to its amount."""
        rows = np.flatnonzero(self.payments["status"].to_numpy() == "clawback")
        if len(rows) == 0:
            return
        allocated = self._insurer_allocated()
        for row in rows:
            line = self.payments.iloc[row]
            taken = -int(line["amount_cents"])
            number, payer = line["invoice_number"], line["payer_type"]
            pos = self.index.get_indexer([number])[0] if pd.notna(number) else -1
            self.matched[row] = True
            cut = min(taken, max(allocated.get((number, payer), 0), 0)) if pos >= 0 else 0
            if cut > 0:
                allocated[(number, payer)] -= cut
                self.out[pos, SHARE_OF_PAYER[payer]] += cut
                self.patient[row] = self.patient_of[pos]
                self.reversed.append({"payment_id": line["payment_id"], "invoice_number": number,
                                      "payer_type": payer, "amount_cents": -cut, "rule": "clawback"})
            if taken - cut > 0:
                self.remaining[row] = taken - cut
                self.kind[row] = "clawback"
                self.reason[row] = (f"invoice {number} unknown: the insurer's clawback reverses nothing" if pos < 0
                                    else f"invoice {number}: the insurer took back more than it is recorded as having "
                                    f"paid on the {payer} share; to check")

    def _insurer_allocated(self) -> dict[tuple[str, str], int]:
        """Net cents allocated to each insurer share: before this run, and by this run's payments."""
        frames = [self.ledger.insurer_allocated] if self.ledger.insurer_allocated is not None else []
        frames += [a[a["payer_type"].isin(INSURERS)] for a in self.allocations]
        if not frames:
            return {}
        allocated = pd.concat(frames).groupby(["invoice_number", "payer_type"])["amount_cents"].sum()
        return {key: int(cents) for key, cents in allocated.items()}

    # -- allocation ---------------------------------------------------------------------------

    def allocate(self, rows: np.ndarray, positions: np.ndarray, rule: str) -> None:
        """Settle each payment (rows) on the share of its payer on the invoice (positions); several
        candidates per payment mean one payment for several invoices, settled oldest first."""
        if len(rows) == 0:
            return
        frame = pd.DataFrame({"row": rows, "pos": positions}).drop_duplicates()
        frame = frame[~self._strangers(frame["row"].to_numpy(), frame["pos"].to_numpy(),
                                       self.out[frame["pos"].to_numpy(), self.col[frame["row"].to_numpy()]] <= 0)]
        if frame.empty:
            return
        self.take_back(frame["row"].to_numpy(), frame["pos"].to_numpy())
        patients = pd.Series(self.patient_of[frame["pos"].to_numpy()], index=frame.index)
        spread = patients.groupby(frame["row"]).transform("nunique")
        several = frame[spread > 1]
        numbers = pd.Series(self.index.to_numpy()[several["pos"].to_numpy()], index=several["row"].to_numpy())
        for row, named in numbers.groupby(level=0):
            self._queue(row, "ambiguous", f"names invoices of different patients: {' '.join(sorted(named))}")
        frame = frame[spread <= 1]
        count = frame.groupby("row")["pos"].transform("size")
        self._allocate_single(frame[count == 1], rule)
        self._allocate_grouped(frame[count > 1], rule)

    def _allocate_single(self, frame: pd.DataFrame, rule: str) -> None:
        if frame.empty:
            return
        rows, pos = frame["row"].to_numpy(), frame["pos"].to_numpy()
        col = self.col[rows]
        order = np.lexsort((rows, col, pos))                     # rows are already in (date, id) order
        rows, pos, col = rows[order], pos[order], col[order]
        amount = self.remaining[rows]
        share = pos * 3 + col
        starts = np.r_[True, share[1:] != share[:-1]]
        running = np.cumsum(amount)
        group_start = np.maximum.accumulate(np.where(starts, np.arange(len(rows)), 0))
        before = running - amount - (running[group_start] - amount[group_start])
        paid = np.clip(self.out[pos, col] - before, 0, amount)
        # An earlier payment of this batch may have emptied the share: the same stranger rule applies.
        theirs = ~self._strangers(rows, pos, paid == 0)
        rows, pos, paid = rows[theirs], pos[theirs], paid[theirs]
        np.subtract.at(self.out, (pos, col[theirs]), paid)
        self._record(rows, pos, paid, rule)

    def _strangers(self, rows: np.ndarray, pos: np.ndarray, nothing_left: np.ndarray) -> np.ndarray:
        """Mask of (payment, invoice) pairs where a patient's payment names an invoice with nothing left to
        pay whose patient (or guarantor) does not bear the payer's name: not that patient's money."""
        mask = np.zeros(len(rows), dtype=bool)
        candidates = np.flatnonzero(nothing_left & (self.payments["payer_type"].to_numpy()[rows] == "patient"))
        for k in candidates:
            row, p = int(rows[k]), int(pos[k])
            if not self._payer_is_patient(row, self.patient_of[p]):
                mask[k] = True
                self.not_theirs.setdefault(row, self.index[p])
        return mask

    def _payer_is_patient(self, row: int, patient_id: str) -> bool:
        """The payer's name is the patient's or their guarantor's (accents, order, initials aside)."""
        payer = name_keys(self.payments.at[row, "payer_name"] or "")
        return bool(payer) and not payer.isdisjoint(self._person_keys(patient_id))

    def _person_keys(self, patient_id: str) -> set[tuple[str, str]]:
        if not hasattr(self, "_people"):
            self._people = self.ledger.patients.set_index("patient_id")
        if patient_id not in self._people.index:
            return set()
        person = self._people.loc[patient_id]
        keys = set()
        for last_col, first_col in (("last_name", "first_name"), ("guarantor_last_name", "guarantor_first_name")):
            last, first = (compact_name(_text(person[c])) for c in (last_col, first_col))
            if len(last) >= 2 and first:
                keys.update({(last, first), (last, first[0])})
        return keys

    def _allocate_grouped(self, frame: pd.DataFrame, rule: str) -> None:
        for row, group in frame.groupby("row", sort=True):
            positions = sorted(group["pos"], key=lambda p: (self.issue[p], self.index[p]))
            col = self.col[row]
            nothing = np.array([self.out[p, col] <= 0 for p in positions])
            positions = [p for p, stranger in zip(positions, self._strangers(np.full(len(positions), row),
                                                                             np.array(positions), nothing))
                         if not stranger]
            if not positions:
                continue
            paid: list[int] = []
            for pos in positions:
                amount = int(min(self.remaining[row] - sum(paid), self.out[pos, col]))
                paid.append(max(amount, 0))
                self.out[pos, col] -= paid[-1]
            self._record(np.full(len(positions), row), np.array(positions), np.array(paid, dtype="int64"), rule)

    def _record(self, rows: np.ndarray, pos: np.ndarray, paid: np.ndarray, rule: str) -> None:
        self.matched[rows] = True
        self.patient[rows] = self.patient_of[pos]
        np.subtract.at(self.remaining, rows, paid)
        keep = paid > 0
        payer = self.payments["payer_type"].to_numpy()[rows[keep]]
        self.allocations.append(pd.DataFrame({
            "payment_id": self.payments["payment_id"].to_numpy()[rows[keep]],
            "invoice_number": self.index.to_numpy()[pos[keep]],
            "payer_type": np.where(payer == "agency", "patient", payer),
            "amount_cents": paid[keep], "rule": rule}))
        nothing = rows[~keep]
        for row, p in zip(nothing, pos[~keep]):
            if self.kind[row] is None:
                self.reason[row] = f"invoice {self.index[p]}: nothing left to pay on the {self._share(row)} share"

    def _share(self, row: int) -> str:
        return SHARES[self.col[row]]

    def _queue(self, row: int, kind: str, reason: str, patient: str | None = None) -> None:
        self.matched[row] = True
        self.kind[row], self.reason[row] = kind, reason
        if patient is not None:
            self.patient[row] = patient

    # -- rules --------------------------------------------------------------------------------

    def rule_explicit(self) -> None:
        rows = self.open_rows()
        numbers = self.payments["invoice_number"].to_numpy()[rows]
        given = pd.notna(numbers)
        rows, numbers = rows[given], numbers[given]
        pos = self.index.get_indexer(numbers)
        for row, number in zip(rows[pos < 0], numbers[pos < 0]):
            self.reason[row] = f"invoice {number} unknown"
        self.allocate(rows[pos >= 0], pos[pos >= 0], "explicit")

    def rule_rf(self, letters: pd.DataFrame) -> None:
        rows = self.open_rows()
        references = (_rf_found(self.payments["reference"].iloc[rows]) if self.rf is None
                      else self.rf.iloc[rows].dropna())
        if references.empty:
            return
        on_letter = references.isin(letters["reference"])
        self._settle_letters(references[on_letter], letters)
        references = references[~on_letter]
        pos = self.compact.get_indexer(references.str.slice(4))
        hit = pos >= 0
        for row in references.index[~hit]:
            self.reason[row] = f"RF reference {references[row]} matches no invoice"
        self.allocate(references.index[hit].to_numpy(), pos[hit], "rf")

    def _settle_letters(self, references: pd.Series, letters: pd.DataFrame) -> None:
        """Payments quoting a letter's reference: that letter's invoices, oldest first (allocate sorts them)."""
        if references.empty:
            return
        pairs = (pd.DataFrame({"row": references.index, "reference": references.to_numpy()})
                 .merge(letters[["reference", "invoice_number"]], on="reference"))
        pos = self.index.get_indexer(pairs["invoice_number"])
        known = pos >= 0
        self.allocate(pairs["row"].to_numpy()[known], pos[known], "rf_letter")
        for row in np.setdiff1d(references.index.to_numpy(), pairs["row"].to_numpy()[known]):
            self.reason[row] = f"RF reference {references[row]} is a letter's whose invoices are unknown"

    def rule_text(self) -> None:
        rows = self.open_rows()
        if len(rows) == 0:
            return
        candidates = _text_candidates(self.payments["reference"].iloc[rows])
        pos = self.compact.get_indexer(candidates.to_numpy())
        hit = pos >= 0
        self.allocate(candidates.index[hit].to_numpy(), pos[hit], "text")

    def rule_name_amount(self) -> None:
        rows = self.open_rows()
        rows = rows[self.payments["payer_type"].to_numpy()[rows] == "patient"]
        if len(rows) == 0:
            return
        names = self.payments["payer_name"].iloc[rows].fillna("")
        keys = _payer_keys(names.unique())
        # Name by name first (a name fits the same patients whichever payment bears it), then payment by payment:
        # each (payment, patient) once without a deduplication of every payment's every key.
        bearers = (keys.merge(patient_name_keys(self.ledger.patients, keys), on=["last", "first"])
                   [["payer_name", "patient_id"]].drop_duplicates())
        # Each name's distinct patients counted once (a common name is borne by a hundred patients: its payments
        # times its bearers made 2.5 million pairs at 1M invoices, the run's memory peak), then given to its rows.
        by_name = bearers.groupby("payer_name", sort=False)["patient_id"].agg(["size", "first"])
        people = (pd.DataFrame({"row": rows, "payer_name": names.to_numpy()})
                  .merge(by_name, left_on="payer_name", right_index=True).sort_values("row").set_index("row"))
        for row in rows[~np.isin(rows, people.index.to_numpy())]:
            self.reason[row] = "no usable reference, and the payer's name is no patient's"
        self._settle_by_amount(people[["size", "first"]].rename(columns={"size": "patients", "first": "patient_id"}))

    def _settle_by_amount(self, people: pd.DataFrame) -> None:
        """Rows whose payer name is one or more patients' (indexed by row: how many patients bear the name, and the
        first of them): when the name is exactly one patient's, settle the one open share of theirs, issued by the
        payment date, that equals the amount. A name that several patients share goes to the queue even if only one
        of them has a share of that amount: a namesake's coincidence would chase a patient who paid."""
        if people.empty:
            return
        for row in people.index[people["patients"] > 1]:
            self._queue(row, "ambiguous", "no reference, and the payer's name fits several patients")
        people = people[people["patients"] == 1]
        matches = pd.DataFrame({"row": people.index.to_numpy(), "patient_id": people["patient_id"].to_numpy()})
        open_shares = pd.DataFrame({"pos": np.flatnonzero(self.out[:, 2] > 0)})
        open_shares["patient_id"] = self.patient_of[open_shares["pos"]]
        open_shares["amount"] = self.out[open_shares["pos"], 2]
        wanted = matches.assign(amount=self.remaining[matches["row"].to_numpy()])
        fits = wanted.merge(open_shares, on=["patient_id", "amount"], how="inner")
        paid_on = self.payments["payment_date"].to_numpy()[fits["row"].to_numpy()]
        fits = fits[self.issue[fits["pos"].to_numpy()] <= paid_on]
        count = fits.groupby("row")["pos"].count()
        for row, patient in people["patient_id"].items():
            fitting = count.get(row, 0)
            self.patient[row] = patient
            if fitting == 0:
                self.reason[row] = "the payer is a patient, but the amount matches none of their open shares"
            elif fitting > 1:
                self._queue(row, "ambiguous", "the amount matches several open shares of the patient", patient)
        one = fits[fits["row"].map(count) == 1].sort_values("row")
        one = one[~one.duplicated("pos", keep="first")]          # two payments for one share: the first wins
        self.allocate(one["row"].to_numpy(), one["pos"].to_numpy().astype("int64"), "name_amount")

    # -- outcome ------------------------------------------------------------------------------

    def outcome(self) -> Outcome:
        allocations = (pd.concat(self.allocations, ignore_index=True) if self.allocations
                       else pd.DataFrame(columns=ALLOCATION_COLUMNS))
        allocations = allocations[allocations["amount_cents"] > 0]
        if self.reversed:
            allocations = pd.concat([allocations, pd.DataFrame(self.reversed, columns=ALLOCATION_COLUMNS)])
        allocations = allocations.reset_index(drop=True)
        return Outcome(allocations, self._exceptions(), pd.DataFrame(self.transfers, columns=TRANSFER_COLUMNS),
                       pd.DataFrame(self.reversals, columns=["transfer_id", "reversed_by", "reversed_on"]),
                       pd.DataFrame(self.reductions, columns=["payment_id", "invoice_number", "amount_cents"]),
                       self.out)

    def _exceptions(self) -> pd.DataFrame:
        kind = self.kind.copy()
        leftover = (self.remaining > 0) & pd.isna(kind)
        kind[leftover & self.matched] = "credit"
        kind[leftover & ~self.matched] = "unmatched"
        reason = self.reason.copy()
        credit = leftover & self.matched & pd.isna(reason)
        reason[credit] = "paid more than was due: the excess is a credit to refund or use"
        reason[pd.isna(reason) & (kind == "unmatched")] = "no rule found its invoice"
        for row, number in self.not_theirs.items():
            if kind[row] in ("unmatched", "ambiguous"):
                reason[row] = (f"its reference names invoice {number}, another patient's with nothing left to pay: "
                               f"not taken as that patient's money; {reason[row]}")
        keep = pd.notna(kind)
        is_patient = np.isin(self.payments["payer_type"].to_numpy(), ["patient", "agency"])
        # None fills the others' cells of an object column; numpy's stubs refuse None there.
        patient_ids = np.where(is_patient, self.patient, None)  # type: ignore[call-overload]
        return pd.DataFrame({"payment_id": self.payments["payment_id"].to_numpy()[keep], "kind": kind[keep],
                             "remaining_cents": self.remaining[keep], "reason": reason[keep],
                             "patient_id": patient_ids[keep]})


def _date_id_order(payments: pd.DataFrame) -> np.ndarray:
    """The positions of the payments in (payment_date, payment_id) order, ties kept in place: sorted by Arrow
    (stable, text compared by code point as Python does; 500k payments 0.9 -> 0.2 s), by pandas when the dates
    or ids are not text."""
    try:
        table = pa.table({"date": pa.array(payments["payment_date"].to_numpy(dtype=object), type=pa.large_string()),
                          "id": pa.array(payments["payment_id"].to_numpy(dtype=object), type=pa.large_string())})
    except (pa.ArrowException, UnicodeError):
        ordered = payments.reset_index(drop=True).sort_values(["payment_date", "payment_id"], kind="stable")
        return ordered.index.to_numpy()
    return pc.sort_indices(table, sort_keys=[("date", "ascending"), ("id", "ascending")]).to_numpy()


def _text(value) -> str:
    return "" if value is None or pd.isna(value) else str(value)


def _rf_found(references: pd.Series) -> pd.Series:
    """The valid RF reference in each text (compact, upper case), indexed like the texts; none: no row.
    ASCII texts are upper-cased, searched and checked in Arrow and numpy (_rf_found_ascii), the others by Python
    (its upper case and digits differ from Arrow's outside ASCII)."""
    references = references[_may_quote_rf(references)]
    try:
        texts = pa.array(references.to_numpy(dtype=object), type=pa.large_string(), from_pandas=True)
    except (pa.ArrowException, TypeError):
        return _rf_found_python(references)
    ascii = pc.fill_null(pc.string_is_ascii(texts), True).to_numpy(zero_copy_only=False)     # null: no match
    at = np.arange(len(references))
    found = _rf_found_ascii(texts.filter(pa.array(ascii)), at[ascii])
    if not ascii.all():
        found = pd.concat([found, _rf_found_python(references[~ascii].set_axis(at[~ascii]))]).sort_index()
    return found.set_axis(references.index[found.index.to_numpy(dtype=np.int64)])


def _rf_found_python(references: pd.Series) -> pd.Series:
    found = references.fillna("").str.upper().str.extract(RF_PATTERN, expand=False).dropna()
    return found.map(_valid_rf).dropna() if not found.empty else found


_RF_GROUP = "(?P<rf>%s)" % RF_PATTERN[1:-1]     # RE2 (Arrow): \d is ASCII, as it is on ASCII text in Python


def _rf_found_ascii(texts: pa.Array, index: np.ndarray) -> pd.Series:
    """_rf_found on ASCII texts: Arrow's upper case and search, the mod-97 checks of every prefix of each match at
    once (_longest_valid_rf)."""
    matched = pc.struct_field(pc.extract_regex(pc.ascii_upper(texts), _RF_GROUP), [0])
    kept = pc.is_valid(matched).to_numpy(zero_copy_only=False)
    compact = pc.replace_substring(matched.filter(pa.array(kept)), " ", "")
    ends = _longest_valid_rf(compact)
    valid = ends > 0
    values = [text[:end] for text, end in zip(compact.filter(pa.array(valid)).to_pylist(), ends[valid])]
    return pd.Series(values, index=index[kept][valid])


# Each character code's value in ISO 11649's number (digits 0-9, letters 10-35) and what it shifts the number by (10
# or 100); past a text's end (code 0) the remainder is carried as it is: times 1, plus 0.
_RF_DIGIT = np.zeros(256, dtype=np.int32)
_RF_DIGIT[48:58], _RF_DIGIT[65:91] = np.arange(10), np.arange(10, 36)
_RF_FACTOR = np.full(256, 100, dtype=np.int32)
_RF_FACTOR[0], _RF_FACTOR[48:58] = 1, 10


def _longest_valid_rf(compact: pa.Array) -> np.ndarray:
    """For each compact match of RF_PATTERN (ASCII: RF, two digits, 1 to 21 digits or capitals), the length of its
    longest prefix that is a valid RF reference, 0 if none: _valid_rf's answer, every prefix checked in one pass
    over the columns of the texts' characters (ISO 11649: the body, then RF and the check digits, letters as
    10..35, mod 97 is 1) where _valid_rf runs is_valid_rf's big-integer check on each prefix in turn."""
    compact = compact.cast(pa.large_string())
    count = len(compact)
    offsets = np.frombuffer(compact.buffers()[1], dtype=np.int64)[compact.offset:compact.offset + count + 1]
    lengths = np.diff(offsets)
    data = np.frombuffer(compact.buffers()[2], dtype=np.uint8) if count else np.zeros(0, dtype=np.uint8)
    chars = np.zeros((count, 25), dtype=np.uint8)
    rows = np.repeat(np.arange(count), lengths)
    chars[rows, np.arange(len(rows)) - np.repeat(offsets[:-1] - offsets[0], lengths)] = data[offsets[0]:offsets[-1]]
    chars = np.ascontiguousarray(chars.T)        # a row per position: each step reads one
    check = _RF_DIGIT[chars[2]] * 10 + _RF_DIGIT[chars[3]]
    factor, digits = _RF_FACTOR[chars], _RF_DIGIT[chars]
    remainders = np.empty((21, count), dtype=np.int32)
    remainder = np.zeros(count, dtype=np.int32)
    for step in range(21):
        remainder = (remainder * factor[4 + step] + digits[4 + step]) % 97
        remainders[step] = remainder
    # The body's remainder, then "RF" (27 15) and the check digits: times 10^6 (27 mod 97) plus 2715cc.
    valid = ((remainders * 27 + 271_500 + check) % 97 == 1) & (np.arange(5, 26)[:, None] <= lengths)
    last = 20 - np.argmax(valid[::-1], axis=0)
    return np.where(valid.any(axis=0), last + 5, 0)


def _may_quote_rf(references: pd.Series) -> np.ndarray:
    """Mask of the texts that may hold an RF reference once upper-cased: those with "rf" in any case, and every
    text that is not ASCII (Python's upper case makes ASCII letters of some other letters: ﬀ, ı…). The others
    cannot (upper case of ASCII is ASCII), and Python's regular expression need not read them: in Arrow, a
    first run's 540k texts in 0.05 s where upper-casing and searching them all took 0.4 s."""
    try:
        texts = pa.array(references.to_numpy(dtype=object), type=pa.large_string(), from_pandas=True)
    except (pa.ArrowException, TypeError):
        return np.ones(len(references), dtype=bool)        # not all text: every one read by Python
    maybe = pc.or_(pc.match_substring(texts, "rf", ignore_case=True), pc.invert(pc.string_is_ascii(texts)))
    return pc.fill_null(maybe, True).to_numpy(zero_copy_only=False)


def rf_references(payments: pd.DataFrame) -> pd.Series:
    """The valid RF reference each payment quotes (compact, upper case), indexed like the payments; none: no row.
    Found once, it serves both the letters' lookup (rf_references_in) and the engine (reconcile's `rf`).

    >>> rf_references(pd.DataFrame({"reference": ["Vir. RF54 LDDK BMSF 7312 YKQY merci", "RF00 X", None]})).to_dict()
    {0: 'RF54LDDKBMSF7312YKQY'}
    """
    return _rf_found(payments["reference"])


def rf_references_in(payments: pd.DataFrame, found: pd.Series | None = None) -> list[str]:
    """The valid RF references the payments quote, each once, in the payments' order: the letters the store must
    look up (and only those). `found`: rf_references(payments), when already found.

    >>> rf_references_in(pd.DataFrame({"reference": ["Vir. RF54 LDDK BMSF 7312 YKQY merci", "RF00 X", None]}))
    ['RF54LDDKBMSF7312YKQY']
    """
    return list(dict.fromkeys(rf_references(payments) if found is None else found))    # the store sorts them


LETTER_COLUMNS = ["reference", "invoice_number"]


def _valid_rf(text: str) -> str | None:
    """The longest prefix of the match that is a valid RF reference (the text may run on after it)."""
    compact = text.replace(" ", "")
    for end in range(len(compact), 4, -1):
        if is_valid_rf(compact[:end]):
            return compact[:end]
    return None


_NOT_WORD = r"[^0-9A-Z]+"
# PREFIXES for Arrow's regular expressions (RE2: no lookahead): the same alternatives tried in the same order, the
# rest of the token (letters and digits only, once split) kept as the group.
_PREFIXED = r"^(?:FACTURE|FACT|FAC|FCT|INVOICE|INV|NUMERO|NUM|NO|N)([0-9A-Z]{%d,})$" % MIN_TEXT_NUMBER


def _text_candidates(references: pd.Series) -> pd.Series:
    """Possible invoice numbers in free texts, indexed like the texts: each text's words of letters and digits in
    upper case, each word with a prefix (FACT, N...) stripped, and runs of 2 or 3 of them joined; those of
    MIN_TEXT_NUMBER characters or more, once per text. Order: the texts' single words, text by text, then their
    pairs, then their triples (the rules' reasons follow it).

    Cut by Arrow in C (1M: 450k texts 2.7 -> 0.6 s), but for the texts holding a character whose upper case
    Arrow writes otherwise than Python (ß -> SS, ﬁ -> FI: Arrow maps one character to one), cut word by word in
    Python (_row_candidates): the same result (tests/core/test_reconcile_text.py holds the two equal).

    >>> found = _text_candidates(pd.Series(["Fact. F2025-000123", None, "Straße 123456"], index=[4, 5, 6]))
    >>> list(zip(found.index.tolist(), found))     # doctest: +NORMALIZE_WHITESPACE
    [(4, '000123'), (6, 'STRASSE'), (6, '123456'), (4, 'FACTF2025'), (4, 'F2025000123'), (6, 'STRASSE123456'),
     (4, 'FACTF2025000123')]
    >>> _text_candidates(pd.Series(["ref N 001234 567890"])).tolist()
    ['001234', '567890', 'N001234', '001234567890', 'REFN001234', 'N001234567890']
    """
    text = references.to_numpy(dtype=object)
    try:
        array = pa.array(text, type=pa.large_string(), from_pandas=True)
    except (pa.ArrowException, UnicodeError):      # not text, or not UTF-8 (a lone surrogate): Python alone
        array, plain = pa.array([None] * len(text), type=pa.large_string()), np.zeros(len(text), dtype=bool)
    else:
        plain = pc.fill_null(pc.string_is_ascii(array), True).to_numpy(zero_copy_only=False)
        other = np.flatnonzero(~plain)
        if len(other):
            differ = _upper_cased_otherwise(set().union(*(set(t) for t in text[other])))
            plain[other] = [differ.isdisjoint(t) for t in text[other]] if differ else True
    kinds, rows, words, values = _ascii_candidates(pc.filter(array, pa.array(plain)), np.flatnonzero(plain))
    others = np.flatnonzero(~plain)
    if len(others):
        found = [(kind, row, word, value) for row in others for kind, word, value in _row_candidates(text[row])]
        if found:
            kinds = np.concatenate([kinds, np.array([f[0] for f in found], dtype="int64")])
            rows = np.concatenate([rows, np.array([f[1] for f in found], dtype="int64")])
            words = np.concatenate([words, np.array([f[2] for f in found], dtype="int64")])
            values = np.concatenate([values, np.array([f[3] for f in found], dtype=object)])
            order = np.lexsort((words, rows, kinds))
            kinds, rows, words, values = kinds[order], rows[order], words[order], values[order]
    first = ~pd.DataFrame({"row": rows, "value": pd.Series(values, dtype=object)}).duplicated().to_numpy()
    return pd.Series(values[first], index=references.index[rows[first]], dtype=object)


_NOTHING = pa.scalar("", type=pa.large_string())     # what joins a run's words


def _upper_cased_otherwise(characters: set[str]) -> set[str]:
    """The characters whose upper case Arrow (one character for one) writes otherwise than Python."""
    chars = sorted(c for c in characters if not c.isascii())
    arrow = pc.utf8_upper(pa.array(chars, type=pa.large_string())).to_pylist() if chars else []
    return {c for c, upper in zip(chars, arrow) if c.upper() != upper}


def _ascii_candidates(array: pa.Array, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """_text_candidates of the texts Arrow upper-cases as Python does (`rows` their positions), as (kind: 1, 2 or
    3 words, row, first word, value) in that order, duplicates kept."""
    words = pc.split_pattern(pc.replace_substring_regex(pc.utf8_upper(array), _NOT_WORD, " "), " ")
    flat = pc.list_flatten(words)
    parent = pc.list_parent_indices(words).to_numpy(zero_copy_only=False)
    kept = pc.greater(pc.utf8_length(flat), 0)          # the empty cuts around a text's ends
    flat, parent = pc.filter(flat, kept), parent[kept.to_numpy(zero_copy_only=False)]
    flat = pc.replace_substring_regex(flat, _PREFIXED, r"\1")
    count = len(flat)
    # Each word's position in its text (what orders the runs within a text).
    starts = np.flatnonzero(np.r_[True, parent[1:] != parent[:-1]]) if count else np.zeros(0, dtype="int64")
    word = np.arange(count, dtype="int64") - np.repeat(starts, np.diff(np.r_[starts, count]))
    kinds, places, firsts, values = [], [], [], []
    run = flat
    for size in (1, 2, 3):
        if size > 1:
            if count < size:
                break
            run = pc.binary_join_element_wise(run.slice(0, count - size + 1), flat.slice(size - 1), _NOTHING)
        take = np.arange(count - size + 1)
        if size > 1:
            take = take[parent[size - 1:] == parent[:count - size + 1]]
        long = pc.greater_equal(pc.utf8_length(run), MIN_TEXT_NUMBER).to_numpy(zero_copy_only=False)
        take = take[long[take]]
        kinds.append(np.full(len(take), size, dtype="int64"))
        places.append(rows[parent[take]])
        firsts.append(word[take])
        values.append(run.take(pa.array(take)).to_numpy(zero_copy_only=False))
    if not kinds:
        empty = np.zeros(0, dtype="int64")
        return empty, empty, empty, np.zeros(0, dtype=object)
    return (np.concatenate(kinds), np.concatenate(places), np.concatenate(firsts),
            np.concatenate(values).astype(object))


def _row_candidates(text) -> list[tuple[int, int, str]]:
    """One text's candidates, (kind, first word, value), duplicates kept: Python's own upper case (any text)."""
    if not isinstance(text, str):
        return []
    one = [PREFIXES.sub("", word) for word in re.sub(_NOT_WORD, " ", text.upper()).split()]
    found = [(1, k, w) for k, w in enumerate(one)]
    found += [(2, k, a + b) for k, (a, b) in enumerate(zip(one, one[1:]))]
    found += [(3, k, a + b + c) for k, (a, b, c) in enumerate(zip(one, one[1:], one[2:]))]
    return [f for f in found if len(f[2]) >= MIN_TEXT_NUMBER]


def referenced_numbers(payments: pd.DataFrame, letters: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(invoice numbers, compact numbers) the payments' lines and references may designate, whichever rule
    reads them: the invoice named on the line, the invoices of the letters quoted (`letters`, LETTER_COLUMNS),
    the invoice of an RF reference, the numbers found in the free text. What the store must read, and all
    of it: an invoice they cannot designate is one no reference rule can touch.

    >>> referenced_numbers(pd.DataFrame({"invoice_number": ["F1", None], "reference": [None, "fact f2025-000123"]}),
    ...                    pd.DataFrame(columns=LETTER_COLUMNS))
    (['F1'], ['000123', 'F2025000123', 'FACTF2025', 'FACTF2025000123'])
    """
    numbers = set(payments["invoice_number"].dropna()) | set(letters["invoice_number"])
    references = _rf_found(payments["reference"])
    compacts = set(references[~references.isin(letters["reference"])].str.slice(4))
    compacts |= set(_text_candidates(payments["reference"])) if len(payments) else set()
    return sorted(numbers), sorted(compacts)


def payer_name_keys(payments: pd.DataFrame) -> pd.DataFrame:
    """(payer_name, last, first): the keys of the patients' payers' names (name_keys), what the name + amount
    rule compares with patient_name_keys: what the store's name index is asked."""
    names = payments.loc[payments["payer_type"] == "patient", "payer_name"].fillna("")
    return _payer_keys(names.unique())


def name_scope(keys: pd.DataFrame, named: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Which patients the name + amount rule must be given, from the payer names' keys (payer_name_keys) and
    the patients bearing them (last, first, patient_id): (patients to know by name, patients whose open shares
    it must know). A name fitting several patients goes to the queue whoever they are, so two of them are
    enough to keep the outcome; a name fitting one patient needs that patient's shares.

    >>> keys = pd.DataFrame({"payer_name": ["A B", "C D"], "last": ["A", "C"], "first": ["B", "D"]})
    >>> named = pd.DataFrame({"last": ["A", "C", "C", "C"], "first": ["B", "D", "D", "D"],
    ...                       "patient_id": ["P1", "P2", "P3", "P4"]})
    >>> name_scope(keys, named)
    (['P1', 'P2', 'P3'], ['P1'])
    """
    hits = (keys.merge(named, on=["last", "first"])[["payer_name", "patient_id"]].drop_duplicates()
            .sort_values(["payer_name", "patient_id"]))
    people = hits.groupby("payer_name")["patient_id"].transform("size")
    known = sorted(set(hits.groupby("payer_name").head(2)["patient_id"]))
    return known, sorted(set(hits.loc[people == 1, "patient_id"]))


def payment_reach(payments: pd.DataFrame, letters: pd.DataFrame) -> pd.DataFrame:
    """What each payment's outcome may depend on that a later day can change, as (payment_id, key) rows:
    `n:` an invoice number it names (on the line, or on a letter it quotes), `c:` a compact number its
    references may designate (core.reconcile.referenced_numbers, row by row), `r:` an RF reference of no
    known letter (`letters`, LETTER_COLUMNS), `k:` a name key of a patient payer (last and first, letters
    only, a space between). The store adds the patients these reach (db.retries.resolve).

    >>> payment_reach(pd.DataFrame({"payment_id": ["A", "B"], "invoice_number": ["F1", None],
    ...                             "reference": [None, "fact 000123"], "payer_type": ["amo", "patient"],
    ...                             "payer_name": ["CPAM", "Marie Dupont"]}),
    ...               pd.DataFrame(columns=LETTER_COLUMNS))["key"].tolist()
    ['n:F1', 'c:000123', 'c:FACT000123', 'k:DUPONT MARIE', 'k:MARIE DUPONT']
    """
    payments = payments.reset_index(drop=True)
    ids = payments["payment_id"].to_numpy()
    frames = [pd.DataFrame({"payment_id": ids, "key": "n:" + payments["invoice_number"]}).dropna()]
    references = _rf_found(payments["reference"])
    on_letter = references.isin(letters["reference"])
    quoted = pd.DataFrame({"payment_id": ids[references.index[on_letter]], "reference": references[on_letter].to_numpy()})
    quoted = quoted.merge(letters[["reference", "invoice_number"]], on="reference")
    frames.append(pd.DataFrame({"payment_id": quoted["payment_id"], "key": "n:" + quoted["invoice_number"]}))
    loose = references[~on_letter]
    frames.append(pd.DataFrame({"payment_id": ids[loose.index], "key": "r:" + loose.to_numpy()}))
    frames.append(pd.DataFrame({"payment_id": ids[loose.index], "key": "c:" + loose.str.slice(4).to_numpy()}))
    if len(payments):
        candidates = _text_candidates(payments["reference"])
        frames.append(pd.DataFrame({"payment_id": ids[candidates.index.to_numpy(dtype="int64")],
                                    "key": "c:" + candidates.to_numpy()}))
    patients = payments[payments["payer_type"] == "patient"]
    keys = _payer_keys(patients["payer_name"].fillna("").unique())
    named = pd.DataFrame({"payment_id": patients["payment_id"].to_numpy(),
                          "payer_name": patients["payer_name"].fillna("").to_numpy()}).merge(keys, on="payer_name")
    frames.append(pd.DataFrame({"payment_id": named["payment_id"], "key": "k:" + named["last"] + " " + named["first"]}))
    reach = pd.concat(frames, ignore_index=True).astype(object)
    return reach.drop_duplicates().reset_index(drop=True)


def name_reach(bearers: pd.DataFrame) -> pd.DataFrame:
    """The patients a payment's name reaches (bearers: payment_id, patient_id, every patient bearing one of its
    name keys), as (payment_id, key): `p:` the one bearer, whose open shares the name + amount rule reads and
    may settle; `b:` two of several bearers (the fewest ids), whose names only count: the rule queues the
    payment as ambiguous while two patients bear the name, and for that to change one of any two must go.

    >>> name_reach(pd.DataFrame({"payment_id": ["A", "B", "B", "B"], "patient_id": ["P1", "P4", "P3", "P2"]}))
    ...                                                                         # doctest: +NORMALIZE_WHITESPACE
      payment_id   key
    0          A  p:P1
    1          B  b:P2
    2          B  b:P3
    """
    bearers = bearers[["payment_id", "patient_id"]].drop_duplicates().sort_values(["payment_id", "patient_id"])
    count = bearers.groupby("payment_id")["patient_id"].transform("size")
    kept = bearers[bearers.groupby("payment_id").cumcount() < 2]
    prefix = np.where(count[kept.index] == 1, "p:", "b:")
    return pd.DataFrame({"payment_id": kept["payment_id"].to_numpy(),
                         "key": prefix + kept["patient_id"].to_numpy().astype(str)}).astype(object)


def touched_invoices(outcome: Outcome, transfers: pd.DataFrame) -> set[str]:
    """The invoices whose shares a run changed (allocations, rejections, reversed transfers and the patient
    allocations they cut; `transfers` the ledger's active ones, transfer_id and invoice_number): a queue entry
    that read one of them before the run wrote it may decide otherwise on the next night."""
    reversed_ = transfers.loc[transfers["transfer_id"].isin(outcome.reversals["transfer_id"]), "invoice_number"]
    return (set(outcome.allocations["invoice_number"]) | set(outcome.transfers["invoice_number"])
            | set(reversed_) | set(outcome.reductions["invoice_number"]))


@lru_cache(maxsize=200_000)
def _name_keys(name: str) -> tuple[tuple[str, str], ...]:
    """name_keys, remembered: a night asks the keys of the queue's payer names twice (store, then engine)."""
    return tuple(sorted(name_keys(name)))


def _payer_keys(names) -> pd.DataFrame:
    records = [(name, last, first) for name in names for last, first in _name_keys(name)]
    return pd.DataFrame(records, columns=["payer_name", "last", "first"])


def _compact(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Each name as its ASCII capital letters (accents dropped, compact_name's rule), worked out once per distinct
    name: a million patients bear a few thousand last and first names, and the Unicode steps go value by value.
    Returns (the code of each value, the distinct compact names): two names compacting alike share a code."""
    codes, distinct = pd.factorize(values.fillna("").astype(object))
    compacted = (pd.Series(distinct, dtype="string[pyarrow]").str.normalize("NFKD").str.encode("ascii", "ignore")
                 .str.decode("ascii").str.upper().str.replace(r"[^A-Z]", "", regex=True))
    again, names = pd.factorize(compacted.to_numpy(dtype=object))
    return again[codes], names.astype(object)


@dataclass(frozen=True)
class _NameKeys:
    """patient_name_keys' rows as arrays: the texts, and each row's codes (last and first: their places among
    the sorted distinct `last_names` and `first_names`; owner: its patient's place in `owner_ids`)."""
    last: np.ndarray
    first: np.ndarray
    owner_ids: np.ndarray
    owner: np.ndarray
    last_code: np.ndarray
    first_code: np.ndarray
    last_names: np.ndarray
    first_names: np.ndarray


def _name_key_arrays(patients: pd.DataFrame, among: pd.DataFrame | None) -> _NameKeys:
    """patient_name_keys' rows, as arrays.
    Worked on codes (each distinct name and key once; the duplicates found on integers), the text made for the
    rows kept only: half a million patients' four keys as Python strings held 300 MB and took a second."""
    owners, owner_ids = pd.factorize(patients["patient_id"].to_numpy(dtype=object))
    lasts, firsts, rows = [], [], []
    for last_col, first_col in (("last_name", "first_name"), ("guarantor_last_name", "guarantor_first_name")):
        (last, last_names), (first, first_names) = _compact(patients[last_col]), _compact(patients[first_col])
        usable = (_lengths(last_names) >= 2)[last] & (_lengths(first_names) >= 1)[first]
        initial, initials = pd.factorize(np.array([name[:1] for name in first_names], dtype=object))
        for given, given_names in ((first, first_names), (initial[first], initials.astype(object))):
            keep = usable
            if among is not None:      # the pairs asked, as codes: each row's pair looked up as an integer
                size = len(given_names) + 1
                asked = (pd.Index(last_names).get_indexer(among["last"]).astype("int64") * size
                         + pd.Index(given_names).get_indexer(among["first"]))
                asked = asked[(asked >= 0) & (asked % size != size - 1)]
                keep = usable & np.isin(last.astype("int64") * size + given, asked)
            kept = np.flatnonzero(keep)
            lasts.append(last_names[last[kept]])
            firsts.append(given_names[given[kept]])
            rows.append(kept)
    kept = np.concatenate(rows)
    last_text, first_text = np.concatenate(lasts), np.concatenate(firsts)
    # (last, first, patient) as one integer each: the first of equal triples kept, as drop_duplicates keeps it.
    # The names' codes follow their text's order (sort=True: a few thousand distinct names sorted), which
    # patient_name_keys_in_order sorts on.
    last_code, last_names = pd.factorize(last_text, sort=True)
    first_code, first_names = pd.factorize(first_text, sort=True)
    pair, _ = pd.factorize(last_code.astype("int64") * (int(first_code.max(initial=0)) + 1) + first_code)
    triple = pair.astype("int64") * (len(owner_ids) + 1) + owners[kept]
    first_seen = ~pd.Series(triple).duplicated().to_numpy()
    return _NameKeys(last_text[first_seen], first_text[first_seen], owner_ids, owners[kept[first_seen]],
                     last_code[first_seen], first_code[first_seen], last_names, first_names)


def patient_name_keys(patients: pd.DataFrame, among: pd.DataFrame | None = None) -> pd.DataFrame:
    """(last, first) and (last, first initial) of each patient and of their guarantor: patient_id, last,
    first (what the store's name index holds). `among` (last, first): only the keys among those (the same rows,
    in the same order, as the whole result filtered after): the engine wants its payers' keys only."""
    keys = _name_key_arrays(patients, among)
    return pd.DataFrame({"last": keys.last, "first": keys.first, "patient_id": keys.owner_ids[keys.owner]})


def patient_name_keys_in_order(patients: pd.DataFrame) -> pd.DataFrame:
    """patient_name_keys' rows (same index labels) sorted by (last, first, patient_id), the order the store's
    name index keeps: sorted on the codes the keys were found with (integers; the patients' ids ranked once), and
    the text taken by Arrow from the distinct names and ids, where sorting the frame's text factorized its three
    columns again (a first file's 410,079 patients, 963,305 keys: 1.2-2.0 -> 0.9-1.1 s CPU, alternated)."""
    keys = _name_key_arrays(patients, None)
    if not len(keys.owner):       # no keys: the empty frame patient_name_keys gives
        return pd.DataFrame({"last": keys.last, "first": keys.first, "patient_id": keys.owner_ids[keys.owner]})
    ids = keys.owner_ids
    rank = np.arange(len(ids))
    if not pd.Index(ids, dtype=object).is_monotonic_increasing:   # a first file's come sorted (db.loads.newest_details)
        rank[np.argsort(ids, kind="stable")] = np.arange(len(ids))
    order = np.lexsort((rank[keys.owner], keys.first_code, keys.last_code))

    def text(distinct: np.ndarray, codes: np.ndarray) -> pd.Series:
        return pd.Series(pa.array(distinct, type=pa.string()).take(pa.array(codes[order])), dtype="str")

    return pd.DataFrame({"last": text(keys.last_names, keys.last_code),
                         "first": text(keys.first_names, keys.first_code),
                         "patient_id": text(ids, keys.owner)}).set_axis(order)


def _lengths(names: np.ndarray) -> np.ndarray:
    return np.fromiter((len(name) for name in names), dtype="int64", count=len(names))


def payer_candidates(payments: pd.DataFrame, patients: pd.DataFrame, shares: pd.DataFrame) -> pd.DataFrame:
    """Whom payments waiting in the queue may belong to: (payment_id, patient_id) where the payer's name is
    the patient's or their guarantor's (as `name_amount` compares them) and one of the patient's open shares,
    issued by the payment date, equals the amount. Several patients per payment is the point: a namesake
    keeps the payment in the queue, and each of them must wait for the person who decides.

    payments  payment_id, payer_name, amount_cents, payment_date
    patients  patient_id, last_name, first_name, guarantor_last_name, guarantor_first_name
    shares    patient_id, amount_cents, issue_date (dates of the same type as the payment dates)
    """
    empty = pd.DataFrame(columns=["payment_id", "patient_id"])
    if payments.empty or shares.empty:
        return empty
    # Names first, then amounts: a common amount (25,00 €) is owed by tens of thousands of patients and paid by
    # thousands of queued payments, a join on the amount alone grows with their product; a name is selective.
    shares = shares[shares["amount_cents"].isin(payments["amount_cents"])]
    people = patients[patients["patient_id"].isin(shares["patient_id"].unique())]
    if people.empty:
        return empty
    names = payments["payer_name"].fillna("")
    # The patients as codes (their places among the keys' owner_ids) from here on: the rows named below are
    # hundreds of thousands, and a patient's id looked up on each of them cost more than the rule (see _owed_by_then).
    theirs = _name_key_arrays(people, None)
    # Only the payer names' keys whose last name is one of theirs (what the merge keeps): remind asks each part
    # of its patients for the whole queue's names in a fresh process, where every name's pairs were made.
    lasts = frozenset(theirs.last.tolist())
    keys = pd.DataFrame([(name, last, first) for name in names.unique()
                         for last, first in sorted(name_keys_among(name, lasts))],
                        columns=["payer_name", "last", "first"]).merge(
        pd.DataFrame({"last": theirs.last, "first": theirs.first, "owner": theirs.owner}), on=["last", "first"])
    named = (pd.DataFrame({"payment_id": payments["payment_id"], "payer_name": names,
                           "amount_cents": payments["amount_cents"], "payment_date": payments["payment_date"]})
             .merge(keys[["payer_name", "owner"]].drop_duplicates(), on="payer_name"))
    owed = _owed_by_then(named, pd.Index(theirs.owner_ids).get_indexer(shares["patient_id"]), shares)
    if not owed.any():
        return empty
    found = pd.DataFrame({"payment_id": named["payment_id"].to_numpy()[owed],
                          "patient_id": theirs.owner_ids[named["owner"].to_numpy()[owed]]}).drop_duplicates()
    return found.sort_values(["payment_id", "patient_id"]).reset_index(drop=True)


def _owed_by_then(named: pd.DataFrame, owners: np.ndarray, shares: pd.DataFrame) -> np.ndarray:
    """For each row of `named` (owner: a patient's code, amount_cents, payment_date): whether one of the `shares`
    (amount_cents, issue_date) of that patient (`owners`: each share's patient as such a code, -1 for none) and of
    that amount was issued by that date (a missing date on either side: no). Looked up on integers (the patient and
    the amount as one number, each date as its rank among them all), where merging the rows with the shares on the
    patient's id and the amount, then comparing the dates, hashed every row's id again (1M, remind's larger part:
    288,049 rows named against 60,789 shares, 0.31 s of the 0.71-0.80 s of payer_candidates)."""
    amounts = pd.Index(pd.unique(shares["amount_cents"].to_numpy(dtype="int64")))
    issued, paid = _date_ranks(shares["issue_date"], named["payment_date"])
    by_share = owners.astype("int64") * len(amounts) + amounts.get_indexer(shares["amount_cents"])
    kept = owners >= 0
    earliest = (pd.Series(np.where(issued < 0, np.iinfo("int64").max, issued)[kept])
                .groupby(by_share[kept]).min())
    if earliest.empty:      # no share of a patient named: nothing owed (and no minimum to look up below)
        return np.zeros(len(named), dtype=bool)
    amount = amounts.get_indexer(named["amount_cents"])
    found = earliest.index.get_indexer(named["owner"].to_numpy(dtype="int64") * len(amounts) + amount)
    found[amount < 0] = -1
    return (found >= 0) & (paid >= 0) & (earliest.to_numpy()[found] <= paid)


def _date_ranks(*columns: pd.Series) -> list[np.ndarray]:
    """Each column's dates as their rank among the distinct dates of all of them (-1 where missing): compared as
    the dates are, each distinct date sorted once (a few hundred, where the rows are hundreds of thousands)."""
    codes, distinct = pd.factorize(np.concatenate([column.to_numpy(dtype=object) for column in columns]))
    rank = np.empty(len(distinct) + 1, dtype="int64")
    rank[sorted(range(len(distinct)), key=distinct.__getitem__)] = np.arange(len(distinct))
    rank[-1] = -1
    return np.split(rank[codes], np.cumsum([len(column) for column in columns])[:-1])


def reconcile(payments: pd.DataFrame, ledger: Ledger, letters: pd.DataFrame | None = None,
              rf: pd.Series | None = None) -> Outcome:
    """Match payments (PAYMENT_COLUMNS, not yet reconciled) against the ledger; pure.

    `letters` (LETTER_COLUMNS: a letter's RF reference and each invoice it lists) are the letters whose
    reference the payments quote (rf_references_in); without it, no reference is a letter's. `rf`: the
    payments' rf_references, when the caller already found them (not validated a second time)."""
    run = _Run(payments, ledger, rf)
    run.apply_rejections()
    run.rule_explicit()
    run.apply_clawbacks()
    run.rule_rf(letters if letters is not None else pd.DataFrame(columns=LETTER_COLUMNS))
    run.rule_text()
    run.rule_name_amount()
    return run.outcome()
