"""The matching cascade on small hand-built worlds with known answers."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
from hypothesis import example, given, settings
from hypothesis import strategies as st

from recouvrement.core.names import TITLES, name_keys, name_keys_among, normalise_name
from recouvrement.core.reconcile import (Ledger, patient_name_keys, patient_name_keys_in_order, payer_candidates,
                                         reconcile, rf_references, rf_references_in)
from recouvrement.core.references import compact_invoice_number, format_rf, letter_reference, rf_reference
from recouvrement.importers.base import PAYMENT_COLUMNS

INVOICES = [
    # number, patient, issue date, amo, amc, patient share
    ("F2025-000101", "P1", "2025-01-10", 7000, 2000, 1000),
    ("F2025-000102", "P1", "2025-02-10", 0, 0, 4500),
    ("F2025-000103", "P2", "2025-03-10", 2100, 600, 2300),
    ("F2025-000104", "P3", "2025-03-12", 0, 0, 2300),
    ("F2025-000105", "P3", "2025-03-20", 0, 0, 2300),
]
PATIENTS = [
    ("P1", "Lefèvre", "Éloïse", None, None),
    ("P2", "De La Fontaine", "Jean-François", None, None),
    ("P3", "N'Diaye", "Maëlle", "N'Diaye", "Awa"),
    ("P4", "Martin", "Jean", None, None),
    ("P5", "Martin", "Julie", None, None),
]


def ledger(invoices=INVOICES, transfers=None, patient_allocations=None) -> Ledger:
    frame = pd.DataFrame(invoices, columns=["invoice_number", "patient_id", "issue_date", "amo", "amc", "patient"])
    frame["compact_number"] = frame["invoice_number"].map(compact_invoice_number)
    return Ledger(
        invoices=frame[["invoice_number", "compact_number", "patient_id", "issue_date"]],
        outstanding=frame[["amo", "amc", "patient"]].to_numpy(dtype="int64").copy(),
        patients=pd.DataFrame(PATIENTS, columns=["patient_id", "last_name", "first_name",
                                                 "guarantor_last_name", "guarantor_first_name"]),
        transfers=transfers if transfers is not None else
        pd.DataFrame(columns=["transfer_id", "invoice_number", "from_payer", "amount_cents"]),
        patient_allocations=patient_allocations if patient_allocations is not None else
        pd.DataFrame(columns=["payment_id", "invoice_number", "amount_cents", "payment_date"]))


def payments(*rows) -> pd.DataFrame:
    records = []
    for i, row in enumerate(rows):
        record = {"payment_id": f"X{i:03d}", "payment_date": "2025-04-01", "payer_type": "patient",
                  "payer_name": "", "amount_cents": 0, "reference": "", "invoice_number": None,
                  "status": "paid", "reject_reason": None, "source_line": i + 2}
        record.update(row)
        records.append(record)
    return pd.DataFrame(records, columns=PAYMENT_COLUMNS)


def allocations(outcome) -> list[tuple]:
    frame = outcome.allocations.sort_values(["payment_id", "invoice_number"])
    return [tuple(r) for r in frame[["payment_id", "invoice_number", "payer_type", "amount_cents", "rule"]]
            .itertuples(index=False, name=None)]


def exceptions(outcome) -> dict[str, tuple]:
    return {r.payment_id: (r.kind, r.remaining_cents, r.patient_id) for r in outcome.exceptions.itertuples()}


def test_an_insurer_line_naming_its_invoice_settles_that_insurers_share():
    outcome = reconcile(payments({"payer_type": "amo", "amount_cents": 7000, "invoice_number": "F2025-000101"},
                                 {"payer_type": "amc", "amount_cents": 2000, "invoice_number": "F2025-000101"}),
                        ledger())
    assert allocations(outcome) == [("X000", "F2025-000101", "amo", 7000, "explicit"),
                                    ("X001", "F2025-000101", "amc", 2000, "explicit")]
    assert outcome.exceptions.empty


def test_an_rf_reference_settles_the_patient_share_of_its_invoice():
    outcome = reconcile(payments({"amount_cents": 1000, "reference": f"Paiement {rf_reference('F2025-000101')}"}),
                        ledger())
    assert allocations(outcome) == [("X000", "F2025-000101", "patient", 1000, "rf")]


def test_an_rf_reference_printed_in_groups_of_four_is_read():
    outcome = reconcile(payments({"amount_cents": 1000, "reference": "RF51 F202 5000 101 merci"}), ledger())
    assert rf_reference("F2025-000101") == "RF51F2025000101"
    assert allocations(outcome) == [("X000", "F2025-000101", "patient", 1000, "rf")]


def test_an_rf_reference_with_a_wrong_check_never_matches_by_rf():
    outcome = reconcile(payments({"amount_cents": 1000, "reference": "RF53F2025000101"}), ledger())
    assert [a[4] for a in allocations(outcome)] != ["rf"]


def test_invoice_numbers_are_found_in_messy_text():
    for text in ("Facture F2025-000102", "f2025 000102", "FACT F2025000102 LEFEVRE", "FACTF2025000102",
                 "fac.f2025-000102"):
        outcome = reconcile(payments({"amount_cents": 4500, "reference": text}), ledger())
        assert allocations(outcome) == [("X000", "F2025-000102", "patient", 4500, "text")], text


def test_two_numbers_in_one_text_settle_both_invoices_oldest_first():
    outcome = reconcile(payments({"amount_cents": 3000, "reference": "F2025-000105 et F2025-000104"}), ledger())
    assert allocations(outcome) == [("X000", "F2025-000104", "patient", 2300, "text"),
                                    ("X000", "F2025-000105", "patient", 700, "text")]


def test_a_name_and_an_exact_amount_settle_the_one_matching_share():
    outcome = reconcile(payments({"amount_cents": 4500, "payer_name": "MME LEFEVRE ELOISE"}), ledger())
    assert allocations(outcome) == [("X000", "F2025-000102", "patient", 4500, "name_amount")]


def test_initials_and_compound_names_match_the_patient():
    outcome = reconcile(payments({"amount_cents": 2300, "payer_name": "J F DE LA FONTAINE"},
                                 {"amount_cents": 2300, "payer_name": "DELAFONTAINE JEAN-FRANCOIS"}), ledger())
    assert allocations(outcome)[0] == ("X000", "F2025-000103", "patient", 2300, "name_amount") or \
        allocations(outcome)[0][1] == "F2025-000103"


def test_a_name_alone_never_settles_an_invoice_of_another_amount():
    outcome = reconcile(payments({"amount_cents": 4400, "payer_name": "Eloise Lefevre"}), ledger())
    assert allocations(outcome) == []
    assert exceptions(outcome) == {"X000": ("unmatched", 4400, "P1")}


def test_a_name_that_fits_two_patients_goes_to_the_queue():
    outcome = reconcile(payments({"amount_cents": 2300, "payer_name": "MARTIN J"}), ledger())
    assert allocations(outcome) == []
    assert exceptions(outcome)["X000"][0] == "ambiguous"


def test_an_amount_that_fits_two_shares_of_the_patient_goes_to_the_queue():
    outcome = reconcile(payments({"amount_cents": 2300, "payer_name": "NDIAYE MAELLE"}), ledger())
    assert allocations(outcome) == []
    assert exceptions(outcome)["X000"][:2] == ("ambiguous", 2300)


def test_a_guarantor_paying_for_a_child_is_recognised_by_name():
    invoices = INVOICES[:4]
    outcome = reconcile(payments({"amount_cents": 2300, "payer_name": "M NDIAYE AWA"}), ledger(invoices))
    assert allocations(outcome) == [("X000", "F2025-000104", "patient", 2300, "name_amount")]


def test_a_partial_payment_leaves_the_rest_open():
    outcome = reconcile(payments({"amount_cents": 2000, "reference": "F2025-000102"}), ledger())
    assert allocations(outcome) == [("X000", "F2025-000102", "patient", 2000, "text")]
    assert outcome.outstanding[1, 2] == 2500
    assert outcome.exceptions.empty


def test_an_overpayment_settles_what_is_due_and_keeps_a_credit():
    outcome = reconcile(payments({"amount_cents": 5000, "reference": "F2025-000102"}), ledger())
    assert allocations(outcome) == [("X000", "F2025-000102", "patient", 4500, "text")]
    assert exceptions(outcome) == {"X000": ("credit", 500, "P1")}


def test_noise_stays_unmatched():
    outcome = reconcile(payments({"amount_cents": 12345, "payer_name": "URSSAF", "reference": "REMBT 2025 T1"},
                                 {"amount_cents": 4500, "payer_name": "SARL DUPUIS FOURNITURES"}), ledger())
    assert allocations(outcome) == []
    assert set(exceptions(outcome)) == {"X000", "X001"}
    assert {v[0] for v in exceptions(outcome).values()} == {"unmatched"}


def test_a_payment_for_invoices_of_two_patients_goes_to_the_queue():
    outcome = reconcile(payments({"amount_cents": 5500, "reference": "F2025-000101 F2025-000102 F2025-000103"}),
                        ledger())
    assert allocations(outcome) == []
    assert exceptions(outcome)["X000"][0] == "ambiguous"


def test_a_patient_payment_never_settles_an_insurer_share():
    outcome = reconcile(payments({"amount_cents": 7000, "reference": "F2025-000101"}), ledger())
    assert allocations(outcome) == [("X000", "F2025-000101", "patient", 1000, "text")]
    assert exceptions(outcome)["X000"] == ("credit", 6000, "P1")


def test_a_rejection_moves_the_insurer_share_to_the_patient():
    outcome = reconcile(payments({"payer_type": "amc", "amount_cents": 2000, "invoice_number": "F2025-000101",
                                  "status": "rejected", "reject_reason": "Droits fermés"}), ledger())
    assert outcome.transfers[["invoice_number", "from_payer", "amount_cents"]].values.tolist() == \
        [["F2025-000101", "amc", 2000]]
    assert outcome.outstanding[0].tolist() == [7000, 0, 3000]


def test_an_insurer_paying_a_share_it_rejected_takes_it_back_and_the_patient_gets_a_credit():
    transfers = pd.DataFrame([(9, "F2025-000101", "amc", 2000)],
                             columns=["transfer_id", "invoice_number", "from_payer", "amount_cents"])
    earlier = pd.DataFrame([("OLD1", "F2025-000101", 3000, "2025-03-01")],
                           columns=["payment_id", "invoice_number", "amount_cents", "payment_date"])
    base = ledger(transfers=transfers, patient_allocations=earlier)
    base.outstanding[0] = [7000, 0, 0]        # the patient paid 30 € after the shift
    outcome = reconcile(payments({"payer_type": "amc", "amount_cents": 2000, "invoice_number": "F2025-000101"}), base)
    assert allocations(outcome) == [("X000", "F2025-000101", "amc", 2000, "explicit")]
    assert outcome.reversals["transfer_id"].tolist() == [9]
    assert outcome.reductions.values.tolist() == [["OLD1", "F2025-000101", 2000]]
    assert outcome.outstanding[0].tolist() == [7000, 0, 0]


def test_two_payments_for_one_share_are_settled_in_date_order():
    outcome = reconcile(payments({"payment_id": "B", "payment_date": "2025-04-02", "amount_cents": 4500,
                                  "reference": "F2025-000102", "payer_name": "ELOISE LEFEVRE"},
                                 {"payment_id": "A", "payment_date": "2025-04-01", "amount_cents": 4500,
                                  "reference": "F2025-000102", "payer_name": "ELOISE LEFEVRE"}), ledger())
    assert allocations(outcome) == [("A", "F2025-000102", "patient", 4500, "text")]
    assert exceptions(outcome)["B"][:2] == ("credit", 4500)


amounts = st.integers(min_value=1, max_value=10000)
kinds = st.sampled_from(["ref", "rf", "name", "noise", "amo", "group"])


@st.composite
def payment_sets(draw):
    rows = []
    for i in range(draw(st.integers(0, 12))):
        kind = draw(kinds)
        inv = draw(st.sampled_from(INVOICES))
        row = {"payment_id": f"H{i:02d}", "payment_date": f"2025-04-{draw(st.integers(1, 28)):02d}",
               "amount_cents": draw(amounts)}
        if kind == "ref":
            row["reference"] = inv[0]
        elif kind == "rf":
            row["reference"] = rf_reference(inv[0])
        elif kind == "name":
            patient = next(p for p in PATIENTS if p[0] == inv[1])
            row["payer_name"] = f"{patient[2]} {patient[1]}"
            row["amount_cents"] = draw(st.sampled_from([inv[5], row["amount_cents"]]))
        elif kind == "amo":
            row.update(payer_type="amo", invoice_number=inv[0])
        elif kind == "group":
            row["reference"] = f"{INVOICES[3][0]} {INVOICES[4][0]}"
        rows.append(row)
    return payments(*rows)


@settings(max_examples=150, deadline=None)
@given(payment_sets())
def test_money_is_conserved(frame):
    outcome = reconcile(frame, ledger())
    paid = outcome.allocations.groupby("payment_id")["amount_cents"].sum()
    amounts = frame.set_index("payment_id")["amount_cents"]
    assert (paid <= amounts.reindex(paid.index)).all()
    received = outcome.allocations.groupby(["invoice_number", "payer_type"])["amount_cents"].sum()
    expected = {(i[0], s): v for i in INVOICES for s, v in zip(("amo", "amc", "patient"), i[3:])}
    assert all(received[k] <= expected[k] for k in received.index)
    assert (outcome.outstanding >= 0).all()
    left = outcome.exceptions.set_index("payment_id")["remaining_cents"]
    for pid, amount in amounts.items():
        assert paid.get(pid, 0) + left.get(pid, 0) == amount


@settings(max_examples=100, deadline=None)
@given(payment_sets())
def test_the_rf_references_found_beforehand_give_the_same_outcome(frame):
    frame = frame.set_axis(range(len(frame) * 3, 0, -3))              # any labels, as the caller's
    found = rf_references(frame)
    alone, given_found = reconcile(frame, ledger()), reconcile(frame, ledger(), rf=found)
    assert allocations(alone) == allocations(given_found) and exceptions(alone) == exceptions(given_found)
    assert alone.exceptions["reason"].tolist() == given_found.exceptions["reason"].tolist()


@settings(max_examples=100, deadline=None)
@given(payment_sets(), st.randoms())
def test_the_outcome_does_not_depend_on_the_order_of_the_payments(frame, rnd):
    shuffled = frame.sample(frac=1, random_state=rnd.randint(0, 10**6)).reset_index(drop=True)
    assert allocations(reconcile(frame, ledger())) == allocations(reconcile(shuffled, ledger()))
    assert exceptions(reconcile(frame, ledger())) == exceptions(reconcile(shuffled, ledger()))


def test_a_namesake_with_a_share_of_that_amount_is_never_settled_by_name():
    invoices = INVOICES + [("F2025-000106", "P6", "2025-03-01", 0, 0, 9900)]
    patients = PATIENTS + [("P6", "Lefèvre", "Éloïse", None, None)]
    world = ledger(invoices)
    world.patients = pd.DataFrame(patients, columns=world.patients.columns)
    outcome = reconcile(payments({"amount_cents": 9900, "payer_name": "ELOISE LEFEVRE"}), world)
    assert allocations(outcome) == []
    assert exceptions(outcome)["X000"][0] == "ambiguous"


def test_a_name_and_amount_never_settle_an_invoice_issued_after_the_payment():
    outcome = reconcile(payments({"amount_cents": 4500, "payer_name": "ELOISE LEFEVRE", "payment_date": "2025-02-01"}),
                        ledger())
    assert allocations(outcome) == []
    assert exceptions(outcome)["X000"] == ("unmatched", 4500, "P1")


def test_a_share_rejected_then_paid_within_one_run_goes_back_to_the_insurer():
    outcome = reconcile(payments({"payer_type": "amc", "amount_cents": 2000, "invoice_number": "F2025-000101",
                                  "status": "rejected", "payment_date": "2025-03-01"},
                                 {"payer_type": "amc", "amount_cents": 2000, "invoice_number": "F2025-000101",
                                  "payment_date": "2025-04-01"}), ledger())
    assert allocations(outcome) == [("X001", "F2025-000101", "amc", 2000, "explicit")]
    assert outcome.transfers[["reversed_by", "reversed_on"]].values.tolist() == [["X001", "2025-04-01"]]
    assert outcome.outstanding[0].tolist() == [7000, 0, 1000]


@settings(max_examples=300, deadline=None)
@given(st.text("RF0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=0, max_size=26))
@example("RFZV3B")        # letters where the check digits stand: stdnum takes them (its mod 97 holds), ISO 11649 not
def test_the_fast_rf_check_agrees_with_stdnum(text):
    """Our check is stdnum's, plus ISO 11649's shape: the two characters after "RF" are digits (stdnum computes the
    mod 97 on letters there too: "RFZV3B" passes it, yet no creditor reference carries letters as check digits)."""
    from stdnum import iso11649
    from recouvrement.core.references import is_valid_rf
    candidate = "RF" + text[2:] if len(text) > 2 and text[0] == "R" else text
    assert is_valid_rf(candidate) == (iso11649.is_valid(candidate) and candidate[2:4].isdigit())
    assert is_valid_rf(rf_reference(text or "0")) if 1 <= len(compact_invoice_number(text or "0")) <= 21 else True


# -- a reference naming a stranger's invoice that has nothing left to pay --------------------------

PAID_BY_P1 = ("F2025-000310", "P1", "2025-03-01", 0, 0, 0)          # P1's share, already settled
OPEN_FOR_P2 = ("F2025-000301", "P2", "2025-03-01", 0, 0, 3100)


def test_a_reference_with_two_digits_swapped_is_not_credited_to_the_stranger_it_names():
    world = ledger(INVOICES + [PAID_BY_P1, OPEN_FOR_P2])
    outcome = reconcile(payments({"amount_cents": 3100, "payer_name": "J F DE LA FONTAINE",
                                  "reference": "VIR Facture F2025-000310"}), world)
    assert allocations(outcome) == [("X000", "F2025-000301", "patient", 3100, "name_amount")]
    assert outcome.exceptions.empty


def test_a_swapped_reference_whose_payer_is_no_patient_waits_in_the_queue_in_nobodys_name():
    outcome = reconcile(payments({"amount_cents": 2300, "payer_name": "DUBOIS PAUL", "reference": "F2025-000310"}),
                        ledger(INVOICES + [PAID_BY_P1]))
    assert allocations(outcome) == []
    assert exceptions(outcome) == {"X000": ("unmatched", 2300, None)}
    assert "F2025-000310" in outcome.exceptions["reason"].iloc[0]


def test_an_explicit_line_naming_a_strangers_settled_invoice_falls_through_too():
    outcome = reconcile(payments({"amount_cents": 3100, "payer_name": "DE LA FONTAINE JEAN FRANCOIS",
                                  "invoice_number": "F2025-000310"}), ledger(INVOICES + [PAID_BY_P1, OPEN_FOR_P2]))
    assert allocations(outcome) == [("X000", "F2025-000301", "patient", 3100, "name_amount")]


def test_a_patient_paying_their_own_settled_invoice_twice_gets_a_credit():
    outcome = reconcile(payments({"amount_cents": 1500, "payer_name": "LEFEVRE E", "reference": "F2025-000310"}),
                        ledger(INVOICES + [PAID_BY_P1]))
    assert exceptions(outcome) == {"X000": ("credit", 1500, "P1")}


def test_the_guarantor_paying_a_childs_settled_invoice_again_gets_the_childs_credit():
    settled = ("F2025-000330", "P3", "2025-03-01", 0, 0, 0)
    outcome = reconcile(payments({"amount_cents": 1500, "payer_name": "AWA NDIAYE", "reference": "F2025-000330"}),
                        ledger(INVOICES + [settled]))
    assert exceptions(outcome) == {"X000": ("credit", 1500, "P3")}


def test_a_nameless_payment_naming_a_settled_invoice_is_queued_rather_than_credited():
    outcome = reconcile(payments({"amount_cents": 1500, "reference": "F2025-000310"}), ledger(INVOICES + [PAID_BY_P1]))
    assert exceptions(outcome) == {"X000": ("unmatched", 1500, None)}


def test_a_stranger_paying_an_invoice_with_something_left_settles_it():
    outcome = reconcile(payments({"amount_cents": 4500, "payer_name": "DUBOIS PAUL", "reference": "F2025-000102"}),
                        ledger())
    assert allocations(outcome) == [("X000", "F2025-000102", "patient", 4500, "text")]


def test_a_second_payment_of_a_stranger_on_a_share_settled_in_the_same_run_is_not_credited_to_the_patient():
    outcome = reconcile(payments({"payment_id": "A", "amount_cents": 4500, "payer_name": "ELOISE LEFEVRE",
                                  "reference": "F2025-000102"},
                                 {"payment_id": "B", "payment_date": "2025-04-02", "amount_cents": 4500,
                                  "payer_name": "DUBOIS PAUL", "reference": "F2025-000102"}), ledger())
    assert allocations(outcome) == [("A", "F2025-000102", "patient", 4500, "text")]
    assert exceptions(outcome) == {"B": ("unmatched", 4500, None)}


# -- one reference per letter -------------------------------------------------------------------

LETTER = letter_reference("L20250602-P3-1")


def letters(*invoice_numbers, reference=LETTER) -> pd.DataFrame:
    return pd.DataFrame({"reference": reference, "invoice_number": list(invoice_numbers)},
                        columns=["reference", "invoice_number"])


def test_a_payment_quoting_a_letters_reference_settles_exactly_its_invoices_oldest_first():
    # P3 owes 23,00 on 104 (12/03) and 23,00 on 105 (20/03); the letter lists both, newest first on purpose.
    outcome = reconcile(payments({"amount_cents": 4600, "payer_name": "N'DIAYE AWA",
                                  "reference": f"Virement {format_rf(LETTER)}"}),
                        ledger(), letters("F2025-000105", "F2025-000104"))
    assert allocations(outcome) == [("X000", "F2025-000104", "patient", 2300, "rf_letter"),
                                    ("X000", "F2025-000105", "patient", 2300, "rf_letter")]
    assert outcome.allocations["invoice_number"].tolist() == ["F2025-000104", "F2025-000105"]
    assert outcome.exceptions.empty


def test_a_partial_payment_quoting_a_letters_reference_settles_the_oldest_invoice_first():
    outcome = reconcile(payments({"amount_cents": 3000, "reference": LETTER}), ledger(),
                        letters("F2025-000105", "F2025-000104"))
    assert allocations(outcome) == [("X000", "F2025-000104", "patient", 2300, "rf_letter"),
                                    ("X000", "F2025-000105", "patient", 700, "rf_letter")]
    assert outcome.outstanding[4, 2] == 1600 and outcome.outstanding[3, 2] == 0


def test_a_letters_reference_never_settles_an_invoice_the_letter_does_not_list():
    outcome = reconcile(payments({"amount_cents": 4600, "payer_name": "N'DIAYE MAELLE", "reference": LETTER}),
                        ledger(), letters("F2025-000105"))
    assert allocations(outcome) == [("X000", "F2025-000105", "patient", 2300, "rf_letter")]
    assert exceptions(outcome) == {"X000": ("credit", 2300, "P3")}


def test_per_invoice_references_still_work_beside_letter_references():
    outcome = reconcile(payments({"amount_cents": 2300, "reference": rf_reference("F2025-000105")},
                                 {"amount_cents": 1000, "reference": LETTER}),
                        ledger(), letters("F2025-000101", "F2025-000102", reference=LETTER))
    assert allocations(outcome) == [("X000", "F2025-000105", "patient", 2300, "rf"),
                                    ("X001", "F2025-000101", "patient", 1000, "rf_letter")]


def test_a_letters_reference_the_store_does_not_know_goes_to_the_queue():
    outcome = reconcile(payments({"amount_cents": 1000, "reference": LETTER}), ledger(), letters())
    assert exceptions(outcome) == {"X000": ("unmatched", 1000, None)}


def test_the_references_to_look_up_are_the_valid_ones_quoted():
    quoted = payments({"reference": f"merci {format_rf(LETTER)}"}, {"reference": "RF00 1234"},
                      {"reference": rf_reference("F2025-000101")})
    assert rf_references_in(quoted) == [LETTER, rf_reference("F2025-000101")]          # once each, as quoted
    again = pd.concat([quoted, quoted.iloc[::-1]], ignore_index=True)
    assert rf_references_in(again) == [LETTER, rf_reference("F2025-000101")]


# --- clawbacks: an insurer taking back what it paid ------------------------------------------------------

def paid_before(*rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["invoice_number", "payer_type", "amount_cents"])


def test_a_clawback_reverses_the_insurers_allocation_and_reopens_its_share():
    book = ledger()
    book.outstanding[0, 0] = 0                                   # the AMO share of F2025-000101 was paid
    book.insurer_allocated = paid_before(("F2025-000101", "amo", 7000))
    outcome = reconcile(payments({"payer_type": "amo", "amount_cents": -3000, "invoice_number": "F2025-000101",
                                  "status": "clawback"}), book)
    assert allocations(outcome) == [("X000", "F2025-000101", "amo", -3000, "clawback")]
    assert outcome.outstanding[0, 0] == 3000 and exceptions(outcome) == {}


def test_a_clawback_in_the_same_run_as_the_payment_reverses_it():
    outcome = reconcile(payments({"payer_type": "amo", "amount_cents": 7000, "invoice_number": "F2025-000101"},
                                 {"payer_type": "amo", "amount_cents": -7000, "invoice_number": "F2025-000101",
                                  "status": "clawback"}), ledger())
    assert allocations(outcome) == [("X000", "F2025-000101", "amo", 7000, "explicit"),
                                    ("X001", "F2025-000101", "amo", -7000, "clawback")]
    assert outcome.outstanding[0, 0] == 7000


def test_what_a_clawback_cannot_reverse_waits_in_the_queue():
    outcome = reconcile(payments({"payer_type": "amc", "amount_cents": -900, "invoice_number": "F2025-000103",
                                  "status": "clawback"},
                                 {"payer_type": "amo", "amount_cents": -100, "invoice_number": "F9999-999999",
                                  "status": "clawback"}), ledger())
    assert allocations(outcome) == []
    assert exceptions(outcome) == {"X000": ("clawback", 900, None), "X001": ("clawback", 100, None)}


def _candidates_one_by_one(payments: pd.DataFrame, patients: pd.DataFrame, shares: pd.DataFrame) -> set:
    """The rule as written: the payer's name is the patient's or the guarantor's, and one of the patient's
    shares issued by the payment date equals the amount — every (payment, patient) pair looked at."""
    keys = patient_name_keys(patients)
    theirs = {pid: set(zip(group["last"], group["first"])) for pid, group in keys.groupby("patient_id")}
    found = set()
    for pay in payments.itertuples():
        wanted = set(name_keys(pay.payer_name or ""))
        for share in shares.itertuples():
            if (share.amount_cents == pay.amount_cents and share.issue_date <= pay.payment_date
                    and wanted & theirs.get(share.patient_id, set())):
                found.add((pay.payment_id, share.patient_id))
    return found


_NAMES = ["MARTIN", "DURAND", "LEFEVRE", "NGUYEN"]
_FIRSTS = ["CLAIRE", "PAUL", "CHLOE"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_NAMES), st.sampled_from(_FIRSTS), st.sampled_from(_NAMES + [None])),
                min_size=1, max_size=6),
       st.lists(st.tuples(st.integers(0, 5), st.sampled_from([1000, 2500, 4000]), st.integers(1, 20)), max_size=12),
       st.lists(st.tuples(st.sampled_from(_NAMES), st.sampled_from(_FIRSTS + ["C", ""]),
                          st.sampled_from([1000, 2500, 4000, 999]), st.integers(1, 20)), max_size=8))
def test_the_queued_payments_candidates_are_every_pair_whose_name_and_amount_and_date_fit(people, owed, paid):
    patients = pd.DataFrame({"patient_id": [f"P{i}" for i in range(len(people))],
                             "last_name": [p[0] for p in people], "first_name": [p[1] for p in people],
                             "guarantor_last_name": [p[2] for p in people],
                             "guarantor_first_name": ["PAUL" if p[2] else None for p in people]})
    shares = pd.DataFrame({"patient_id": [f"P{i % len(people)}" for i, _, _ in owed],
                           "amount_cents": pd.Series([a for _, a, _ in owed], dtype="int64"),
                           "issue_date": [date(2026, 3, d) for _, _, d in owed]})
    payments = pd.DataFrame({"payment_id": [f"Q{i}" for i in range(len(paid))],
                             "payer_name": [f"MME {first} {last}".replace("  ", " ") for last, first, _, _ in paid],
                             "amount_cents": pd.Series([a for _, _, a, _ in paid], dtype="int64"),
                             "payment_date": [date(2026, 3, d) for _, _, _, d in paid]})
    found = payer_candidates(payments, patients, shares)
    assert set(zip(found["payment_id"], found["patient_id"])) == _candidates_one_by_one(payments, patients, shares)
    assert list(found.columns) == ["payment_id", "patient_id"] and not found.duplicated().any()


def _name_keys_one_by_one(payer_name: str, max_tokens: int = 6) -> set[tuple[str, str]]:
    """name_keys as it was written first: every run of words, every other run not overlapping it."""
    tokens = [t for t in normalise_name(payer_name).split() if t not in TITLES][:max_tokens]
    spans = [(i, j) for i in range(len(tokens)) for j in range(i + 1, len(tokens) + 1)]
    keys = set()
    for i, j in spans:
        last = "".join(tokens[i:j])
        if len(last) >= 2:
            keys.update((last, "".join(tokens[k:m])) for k, m in spans if m <= i or k >= j)
    return keys


_WORDS = st.sampled_from(["MME", "M.", "ET", "DE", "LA", "Éloïse", "MARTIN", "Le", "Gall", "J", "B", "van", "DAM"])


@settings(max_examples=300, deadline=None)
@given(st.lists(_WORDS, max_size=9).map(" ".join) | st.text(max_size=30), st.integers(1, 8),
       st.sets(st.sampled_from(["MARTIN", "LEGALL", "GALL", "DE", "DELA", "ELOISE", "J", "VANDAM", "DAM", "LA"])))
def test_a_payer_names_keys_are_its_runs_of_words_paired_and_those_among_some_last_names_the_same_filtered(
        payer_name, max_tokens, lasts):
    assert name_keys(payer_name, max_tokens) == _name_keys_one_by_one(payer_name, max_tokens)
    assert name_keys_among(payer_name, lasts, max_tokens) == {
        key for key in _name_keys_one_by_one(payer_name, max_tokens) if key[0] in lasts}


def test_the_queued_payments_keys_are_made_only_for_the_last_names_of_the_patients_owed(monkeypatch):
    """payer_candidates pairs the payer names' runs of words only where a run is one of the patients' last names
    (fails without it: every key of every name made, then merged)."""
    import recouvrement.core.reconcile as reconcile
    asked = []
    monkeypatch.setattr(reconcile, "name_keys_among",
                        lambda name, lasts: asked.append((name, set(lasts))) or name_keys_among(name, lasts))
    monkeypatch.setattr(reconcile, "name_keys", None)      # never every key of a name
    reconcile._name_keys.cache_clear()
    patients = pd.DataFrame({"patient_id": ["P1", "P2"], "last_name": ["Martin", "Le Gall"], "first_name": ["Anne", "Luc"],
                             "guarantor_last_name": [None, "Durand"], "guarantor_first_name": [None, "Marc"]})
    shares = pd.DataFrame({"patient_id": ["P1", "P2"], "amount_cents": pd.Series([1000, 2500], dtype="int64"),
                           "issue_date": [date(2026, 3, 1), date(2026, 3, 1)]})
    payments = pd.DataFrame({"payment_id": ["Q1", "Q2", "Q3"], "payer_name": ["MME ANNE MARTIN", "DURAND MARC", None],
                             "amount_cents": pd.Series([1000, 2500, 2500], dtype="int64"),
                             "payment_date": [date(2026, 3, 2)] * 3})
    found = payer_candidates(payments, patients, shares)
    assert list(zip(found["payment_id"], found["patient_id"])) == [("Q1", "P1"), ("Q2", "P2")]
    assert asked == [(name, {"MARTIN", "LEGALL", "DURAND"}) for name in ["MME ANNE MARTIN", "DURAND MARC", ""]]


def test_a_queued_payment_or_a_share_without_a_date_makes_no_candidate_but_a_dated_share_of_the_amount_does():
    patients = pd.DataFrame({"patient_id": ["P1", "P2", "P3"], "last_name": ["MARTIN", "DURAND", "NGUYEN"],
                             "first_name": ["ANNE", "LUC", "ANNE"], "guarantor_last_name": [None, None, None],
                             "guarantor_first_name": [None, None, None]})
    shares = pd.DataFrame({"patient_id": ["P1", "P2", "P2", "P3", "P3"],
                           "amount_cents": pd.Series([1000, 2500, 2500, 4000, 4000], dtype="int64"),
                           "issue_date": [date(2026, 3, 1), None, date(2026, 3, 5), None, date(2026, 3, 9)]})
    payments = pd.DataFrame({"payment_id": ["Q1", "Q2", "Q3", "Q4"],
                             "payer_name": ["ANNE MARTIN", "LUC DURAND", "ANNE NGUYEN", "LUC DURAND"],
                             "amount_cents": pd.Series([1000, 2500, 4000, 2500], dtype="int64"),
                             "payment_date": [None, date(2026, 3, 5), date(2026, 3, 8), date(2026, 3, 4)]})
    found = payer_candidates(payments, patients, shares)
    # Q1: no date; Q3: P3's dated share came after it, its undated one never counts; Q4: before P2's dated share.
    assert list(zip(found["payment_id"], found["patient_id"])) == [("Q2", "P2")]



@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.text("PQé0 ", min_size=1, max_size=4), st.sampled_from(_NAMES + ["Lé", "X", "Éa"]),
                          st.sampled_from(_FIRSTS + ["Émile", "", "C"]), st.sampled_from(_NAMES + [None, "Zoé"])),
                max_size=8, unique_by=lambda person: person[0]))
def test_the_name_keys_in_order_are_the_name_keys_sorted_by_last_first_and_patient(people):
    """Ids in any order (not sorted as a first file's patients come) and of any characters: the rows and labels
    that sorting patient_name_keys' frame by its text gives."""
    patients = pd.DataFrame({"patient_id": [p[0] for p in people], "last_name": [p[1] for p in people],
                             "first_name": [p[2] for p in people], "guarantor_last_name": [p[3] for p in people],
                             "guarantor_first_name": ["Paul" if p[3] else None for p in people]},
                            columns=["patient_id", "last_name", "first_name", "guarantor_last_name",
                                     "guarantor_first_name"])
    expected = patient_name_keys(patients).sort_values(["last", "first", "patient_id"])
    pd.testing.assert_frame_equal(patient_name_keys_in_order(patients), expected)


_BODY = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(
    st.builds(lambda body, tail: rf_reference(body) + tail, st.text(_BODY, min_size=1, max_size=21),
              st.text(_BODY + " ", max_size=8)),
    st.builds(lambda check, body: f"RF{check:02d}{body}", st.integers(0, 99), st.text(_BODY + " ", min_size=1,
                                                                                       max_size=24))), max_size=12))
@example(["RF18F123", "RF00" + "0" * 21, "RF" + "9" * 23, "RF54 LDDK BMSF 7312 YKQY MERCI"])
def test_the_rf_references_checked_in_numpy_are_the_longest_valid_prefixes_python_finds(texts):
    """Every check digit, body length up to 21 and letters in every place: the same prefix as _valid_rf's."""
    import re
    from recouvrement.core.reconcile import RF_PATTERN, _valid_rf
    expected = {}
    for row, value in enumerate(texts):
        match = re.search(RF_PATTERN, value)
        if match and _valid_rf(match.group(1)):
            expected[row] = _valid_rf(match.group(1))
    assert rf_references(pd.DataFrame({"reference": pd.Series(texts, dtype=object)})).to_dict() == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text("rfRF0123489 .xLéıﬀﬁß٣\n", max_size=30)), max_size=8))
@example([rf_reference("F1").lower(), "Vir. " + format_rf(rf_reference("F2025-000102")) + " merci",
          "ﬁ " + rf_reference("F7"), "r" + rf_reference("F9")[1:], None, "sans référence"])
def test_the_rf_references_are_those_python_finds_in_each_upper_cased_text(texts):
    """Texts without "rf" in any case are left out before the search (Arrow): never one that would hold a reference."""
    import re
    from recouvrement.core.reconcile import RF_PATTERN, _valid_rf
    expected = {}
    for row, value in enumerate(texts):
        match = re.search(RF_PATTERN, (value or "").upper())
        if match and _valid_rf(match.group(1)):
            expected[row] = _valid_rf(match.group(1))
    assert rf_references(pd.DataFrame({"reference": pd.Series(texts, dtype=object)})).to_dict() == expected


def test_rows_named_against_no_share_of_a_known_patient_are_owed_nothing():
    """_owed_by_then's guard: payer_candidates never calls it so (a named row's patient has a share), but an empty
    table of minima must answer 'no' for every row rather than look up a minimum that is not there."""
    from recouvrement.core.reconcile import _owed_by_then
    named = pd.DataFrame({"owner": pd.Series([0, 1], dtype="int64"),
                          "amount_cents": pd.Series([1000, 2500], dtype="int64"),
                          "payment_date": [date(2026, 3, 5), date(2026, 3, 6)]})
    shares = pd.DataFrame({"patient_id": ["P9"], "amount_cents": pd.Series([1000], dtype="int64"),
                           "issue_date": [date(2026, 3, 1)]})
    assert _owed_by_then(named, np.array([-1]), shares).tolist() == [False, False]
