"""The one `outstanding()` / `patient_money()` held equal to every path that computed the same figures before
them (kept verbatim in tests/ledger_reference.py once deleted from the app), and the app's readers equal to
both, on every night of the demo and on a small scale set. Where the old paths disagreed, the test says which
answer is kept (see core/ledger.py and the issue #12 note)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from recouvrement.app.reconcile import load_ledger, share_outstanding
from recouvrement.core.ledger import outstanding, patient_money
from recouvrement.db.bulk import read_frame
from recouvrement.db.ledger import load_snapshot, share_states
from recouvrement.rules import load_rules
from tests import ledger_reference as reference

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Night:
    as_of: date
    found: dict = field(default_factory=dict)     # path name -> list of differences (empty: equal)


def _old_vs_new(engine, as_of: date) -> dict[str, list]:
    """Each old path (tests/ledger_reference.py) against the new functions on one day; what differs, per path."""
    rules = load_rules()
    days = rules.ladder.rejection_notice.due_after_days
    found: dict[str, list] = {}
    with engine.connect() as conn:
        snapshot = load_snapshot(conn, as_of)
        table = outstanding(snapshot, rejection_due_after_days=days)
        money = patient_money(snapshot, table=table)

        # accounts.open_items_frame: the ladder's open items (patient money due) with awaited and shifted due dates
        old = reference.open_items_frame(conn, as_of, days).set_index("invoice_number").sort_index()
        new = table[(table["payer_type"] == "patient") & (table["due_cents"] > 0)].set_index("invoice_number")
        new = new.sort_index()
        found["accounts.open_items_frame"] = _differences(
            old[["patient_id", "amount", "awaited", "issue_date", "due_date", "shifted_from", "notified"]],
            new[["patient_id", "due_cents", "awaited_cents", "issue_date", "due_date", "shifted_from", "notified"]]
            .rename(columns={"due_cents": "amount", "awaited_cents": "awaited"}))

        # accounts._CREDITS: credits and pending money per patient, dated by the payment
        credits = read_frame(conn, reference.CREDITS, {"d": as_of}).set_index("patient_id").sort_index()
        found["accounts._CREDITS"] = _differences(
            credits[["credit", "pending"]].astype("int64"),
            money.loc[credits.index, ["credit_cents", "pending_cents"]].rename(
                columns={"credit_cents": "credit", "pending_cents": "pending"}))
        unknown = money[(money["credit_cents"] > 0) | (money["pending_cents"] > 0)].index.difference(credits.index)
        found["accounts._CREDITS"] += [("patient only in the new", p) for p in unknown]

        # plans.patient_credit_cents and the web account: every credit in the patient's name, whatever its date
        found["plans.patient_credit_cents"] = [
            (p, old_credit, new_credit) for p in _credited(conn)
            if (old_credit := reference.all_time_credit_cents(conn, p))
            != (new_credit := int(money.loc[p, "credit_cents"]) if p in money.index else 0)]

        # reconcile.load_ledger: the matching engine's outstanding (everything recorded, whatever its date)
        everything = load_snapshot(conn, None)
        undated = outstanding(everything)
        numbers, matrix = reference.ledger_outstanding(conn)
        ledger = load_ledger(conn)
        same = (numbers == list(everything.invoices["invoice_number"]) == list(ledger.invoices["invoice_number"])
                and (matrix == undated["due_cents"].to_numpy().reshape(3, -1).T).all()
                and (matrix == ledger.outstanding).all())
        found["reconcile.load_ledger"] = [] if same else ["outstanding differs"]

        # reconcile.share_outstanding: one share, now (a sample of invoices, every share)
        sample = list(everything.invoices["invoice_number"].iloc[::max(1, len(everything.invoices) // 150)])
        by_share = undated.set_index(["invoice_number", "payer_type"])["due_cents"]
        found["reconcile.share_outstanding"] = [
            (n, s, old_due, int(by_share.loc[(n, s)])) for n in sample for s in ("amo", "amc", "patient")
            if (old_due := reference.share_outstanding(conn, n, s)) != int(by_share.loc[(n, s)])
            or share_outstanding(conn, n, s) != old_due]

        # balance.share_states: every share on the day (the aged balance, plans, the agency, the web account)
        old = reference.share_states(conn, as_of).set_index(["invoice_number", "payer_type"]).sort_index()
        new = share_states(conn, as_of, rejection_due_after_days=days).set_index(["invoice_number", "payer_type"])
    new = new.sort_index()
    columns = ["patient_id", "expected", "paid", "moved_out", "moved_in", "due_cents", "issue_date"]
    found["balance.share_states"] = _differences(old[columns].assign(issue_date=old["issue_date"].map(_day)),
                                                 new[columns])
    # Its due date is the invoice's; the new one shifts a moved share's per the rejection notice (as the ladder did)
    found["balance.share_states due_date"] = _differences(old[["due_date"]].assign(due_date=old["due_date"].map(_day)),
                                                          new[["due_date"]])
    return found


def _credited(conn) -> list[str]:
    return list(read_frame(conn, "SELECT DISTINCT patient_id FROM payment_exception WHERE kind = 'credit' "
                                 "AND patient_id IS NOT NULL")["patient_id"])


def _day(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _differences(old: pd.DataFrame, new: pd.DataFrame) -> list:
    """Rows only in one side, and cells that differ: [(key, column, old, new)]."""
    out: list = [("only in the old", k) for k in old.index.difference(new.index)]
    out += [("only in the new", k) for k in new.index.difference(old.index)]
    both = old.index.intersection(new.index)
    for column in old.columns:
        a, b = old.loc[both, column], new.loc[both, column]
        for key in both[[not _same(x, y) for x, y in zip(a, b)]]:
            out.append((key, column, old.loc[key, column], new.loc[key, column]))
    return out


def _same(x, y) -> bool:
    if (x is None or x != x) and (y is None or y != y):
        return True
    return bool(x == y) if not isinstance(x, (bool,)) else bool(x) == bool(y)


# -- the demo, night by night ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo_nights(tmp_path_factory) -> list[Night]:
    from recouvrement.app.demo import NIGHTS, ORDER, demo_settings, prepare_folder, propose_a_plan
    from recouvrement.app.nightly import run_nightly
    from recouvrement.audit import AuditSeal, seal_engine
    from recouvrement.cli.demo_commands import SAMPLES
    from recouvrement.config import load_settings
    from recouvrement.db.session import open_engine
    folder = tmp_path_factory.mktemp("demo") / "demo"
    prepare_folder(folder, SAMPLES, own_database=True)
    settings = demo_settings(load_settings(folder / "recouvrement.toml"), folder)
    engine = seal_engine(open_engine(f"sqlite:///{folder / 'recouvrement.db'}"),
                         AuditSeal(b"test-audit-key-0123456789abcdef", folder / "audit.checkpoint"))
    settings.paths.inbox.mkdir(parents=True, exist_ok=True)
    for name in ORDER:
        shutil.copyfile(SAMPLES / name, settings.paths.inbox / name)
    nights = []

    class Quiet:
        def print(self, *args, **kwargs):
            pass

    for day in NIGHTS:
        run_nightly(engine, settings, day)
        if day == NIGHTS[0]:
            propose_a_plan(Quiet(), engine, settings, day)
        nights.append(Night(day, _old_vs_new(engine, day)))
    engine.dispose()
    return nights


SAME_ON_EVERY_NIGHT = ("accounts.open_items_frame", "accounts._CREDITS", "reconcile.load_ledger",
                       "reconcile.share_outstanding", "balance.share_states")


@pytest.mark.parametrize("path", SAME_ON_EVERY_NIGHT)
def test_outstanding_equals_the_old_path_on_every_night_of_the_demo(demo_nights, path):
    for night in demo_nights:
        assert night.found[path] == [], f"{path} on {night.as_of}"


def test_the_demo_nights_are_those_the_demo_runs(demo_nights):
    from recouvrement.app.demo import NIGHTS
    assert [n.as_of for n in demo_nights] == list(NIGHTS)


def test_the_old_paths_disagreements_on_the_demo_are_recorded(demo_nights):
    """Credits: plans (and the web account) counted every credit whatever its payment's date; the ladder only
    those of payments dated by the day. Due dates: the balance kept the invoice's due date on a share moved onto
    the patient; the ladder shifted it per the rejection notice. The ladder's answers are kept."""
    report = {str(n.as_of): {k: len(v) for k, v in n.found.items() if v} for n in demo_nights}
    print(report)
    for night in demo_nights:
        for _patient, old_credit, new_credit in night.found["plans.patient_credit_cents"]:
            assert old_credit > new_credit            # only later payments' credits were counted too
        for key, _column, old_due, new_due in night.found["balance.share_states due_date"]:
            assert key[1] == "patient" and new_due > old_due


# -- a scale set -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scale_engine(tmp_path_factory):
    from recouvrement.app.imports import import_file
    from recouvrement.app.reconcile import run_reconcile
    from recouvrement.audit import AuditSeal, seal_engine
    from recouvrement.config import Audit, Privacy, Settings
    from recouvrement.db.session import open_engine
    folder = tmp_path_factory.mktemp("scale")
    subprocess.run([sys.executable, "-m", "tools.samples", "--out", str(folder), "--invoices", "2000", "--scale"], check=True,
                   cwd=ROOT, capture_output=True)
    settings = Settings(privacy=Privacy(nir_key_file=folder / "nir.key"),
                        audit=Audit(folder / "audit.key", folder / "audit.checkpoint"))
    engine = seal_engine(open_engine(f"sqlite:///{folder / 'scale.db'}"),
                         AuditSeal(b"test-audit-key-0123456789abcdef", folder / "audit.checkpoint"))
    for name in ("invoices.csv", "remittance_amo.csv", "remittance_amc.csv", "payments_patient.csv"):
        import_file(engine, folder / name, settings)
    run_reconcile(engine)
    yield engine
    engine.dispose()


def _scale_days(engine) -> list[date]:
    with engine.connect() as conn:
        span = read_frame(conn, "SELECT MIN(payment_date) AS first, MAX(payment_date) AS last FROM payment")
    first, last = _day(span["first"][0]), _day(span["last"][0])
    return [first, first + (last - first) / 2, last]


@pytest.fixture(scope="module")
def scale_days(scale_engine) -> list[Night]:
    return [Night(day, _old_vs_new(scale_engine, day)) for day in _scale_days(scale_engine)]


@pytest.mark.parametrize("path", SAME_ON_EVERY_NIGHT)
def test_outstanding_equals_the_old_path_on_a_scale_set(scale_days, path):
    for day in scale_days:
        assert day.found[path] == [], f"{path} on {day.as_of}"


def test_the_old_paths_disagreements_on_the_scale_set_are_recorded(scale_days):
    print({str(n.as_of): {k: len(v) for k, v in n.found.items() if v} for n in scale_days})
