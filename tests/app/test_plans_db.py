"""Instalment plans through the database: the debt a plan covers, its letter, acceptance, the nightly refresh."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from recouvrement.app.imports import import_file
from recouvrement.app.plans import accept, active_plan_invoices, cancel, propose, refresh_plans, show
from recouvrement.app.reconcile import run_reconcile
from recouvrement.audit import verify
from recouvrement.config import Creditor
from recouvrement.errors import RecouvrementError
from recouvrement.rules import Rules
from recouvrement.scanner import extract_text
from tests.app.world import INVOICE_HEADER, payments_file, write

RULES = Rules()
CREDITOR = Creditor(name="Centre de santé des Lilas", address="12 rue des Lilas", postal_code="75019", city="Paris",
                    phone="01 42 00 00 00", email="facturation@centre-lilas.example", siret="84512367800011",
                    iban="FR7630004019250001234567876", bic="BNPAFRPPXXX")


def invoice(number: str, issued: str, cents: int, patient: str = "P1") -> str:
    amount = f"{cents // 100},{cents % 100:02d}"
    return (f"{number};{issued};;{patient};Martin;Claire;5 rue Haute;75011;Paris;claire@example.org;;;"
            f"{amount};0;0;{amount};;none;Séance de kinésithérapie;AMK 8")


@pytest.fixture
def clinic(settings, tmp_path):
    return replace(settings, creditor=CREDITOR, paths=replace(settings.paths, output=tmp_path / "out"))


def world(engine, settings, tmp_path, rows=None):
    rows = rows or [invoice("F2025-000201", "2025-01-10", 10000), invoice("F2025-000202", "2025-02-10", 5000)]
    import_file(engine, write(tmp_path / "invoices.csv", INVOICE_HEADER, rows), settings)


def pay(engine, settings, tmp_path, payments: list[tuple[str, str, int, str]]):
    """Patient payments (id, ISO date, cents, invoice number), imported and reconciled."""
    rows = [f"{pid};{day};patient;MARTIN CLAIRE;{c // 100},{c % 100:02d};;{number};paid;"
            for pid, day, c, number in payments]
    import_file(engine, payments_file(tmp_path, rows, f"pay_{payments[0][0]}.csv"), settings)
    run_reconcile(engine)


def plan_row(engine, plan_id):
    with engine.connect() as conn:
        return conn.execute(text("SELECT status, accepted_on, ended_on, total_cents, invoice_numbers FROM plan "
                                 "WHERE id = :i"), {"i": plan_id}).one()


def test_a_proposal_stores_instalments_that_add_up_to_the_debt_to_the_cent(engine, clinic, tmp_path):
    world(engine, clinic, tmp_path)
    proposal = propose(engine, "P1", date(2025, 3, 31), clinic, months=4, rules=RULES)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT seq, due_date, amount_cents FROM plan_instalment WHERE plan_id = :p "
                                   "ORDER BY seq"), {"p": proposal.plan_id}).all()
    assert [(s, str(d), a) for s, d, a in stored] == [(1, "2025-04-30", 3750), (2, "2025-05-31", 3750),
                                                      (3, "2025-06-30", 3750), (4, "2025-07-31", 3750)]
    status, _, _, total, numbers = plan_row(engine, proposal.plan_id)
    assert (status, total, numbers) == ("proposed", 15000, "F2025-000201 F2025-000202")


def test_a_debt_that_does_not_divide_evenly_puts_the_extra_cents_first(engine, clinic, tmp_path):
    world(engine, clinic, tmp_path, [invoice("F2025-000201", "2025-01-10", 10000)])
    proposal = propose(engine, "P1", date(2025, 3, 31), clinic, months=3, rules=RULES)
    assert [i.amount_cents for i in proposal.instalments] == [3334, 3333, 3333]


def test_the_plan_covers_what_is_left_after_earlier_payments_and_credits(engine, clinic, tmp_path):
    world(engine, clinic, tmp_path)
    pay(engine, clinic, tmp_path, [("C1", "2025-03-01", 2000, "F2025-000202")])
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO payment_exception (payment_id, kind, remaining_cents, reason, patient_id) "
                          "VALUES ('X1', 'credit', 500, 'overpayment', 'P1')"))
    proposal = propose(engine, "P1", date(2025, 3, 31), clinic, rules=RULES)
    assert (proposal.credits_cents, proposal.total_cents) == (500, 15000 - 2000 - 500)
    assert sum(i.amount_cents for i in proposal.instalments) == proposal.total_cents


def test_disputed_and_time_barred_invoices_are_left_out_of_a_plan(engine, clinic, tmp_path):
    world(engine, clinic, tmp_path, [invoice("F2022-000001", "2022-06-01", 9000),
                                     invoice("F2025-000201", "2025-01-10", 10000),
                                     invoice("F2025-000202", "2025-02-10", 5000)])
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO dispute (invoice_number, received_on, channel, category, status, reason, "
                          "answer_due) VALUES ('F2025-000202', :d, 'desk', 'amount', 'open', 'montant', :d)"),
                     {"d": date(2025, 3, 1)})
    proposal = propose(engine, "P1", date(2025, 3, 31), clinic, rules=RULES)
    assert proposal.invoice_numbers == ("F2025-000201",) and proposal.total_cents == 10000


def test_a_patient_who_owes_nothing_gets_no_plan(engine, clinic, tmp_path):
    world(engine, clinic, tmp_path, [invoice("F2025-000201", "2025-01-10", 1000)])
    pay(engine, clinic, tmp_path, [("C1", "2025-02-01", 1000, "F2025-000201")])
    with pytest.raises(RecouvrementError, match="ne doit rien"):
        propose(engine, "P1", date(2025, 3, 31), clinic, rules=RULES)


def test_the_proposal_letter_lists_the_schedule_and_no_care_detail(engine, clinic, tmp_path):
    world(engine, clinic, tmp_path)
    proposal = propose(engine, "P1", date(2025, 3, 31), clinic, months=2, rules=RULES)
    html, pdf = proposal.files
    assert html.parent == tmp_path / "out" / "plans" and pdf.suffix == ".pdf"
    letter = extract_text(pdf)
    assert "75,00" in letter and "30 avril 2025" in letter and "RF" in letter
    assert "kinésithérapie" not in html.read_text() and "AMK" not in html.read_text()


def test_accepting_a_plan_takes_its_invoices_out_of_the_ladder(engine, clinic, tmp_path):
    world(engine, clinic, tmp_path)
    proposal = propose(engine, "P1", date(2025, 3, 31), clinic, rules=RULES)
    accept(engine, proposal.plan_id, date(2025, 4, 2))
    assert plan_row(engine, proposal.plan_id)[0] == "active"
    with engine.connect() as conn:
        assert active_plan_invoices(conn) == {"F2025-000201", "F2025-000202"}
        assert verify(conn).ok


def test_a_patient_has_only_one_active_plan(engine, clinic, tmp_path):
    world(engine, clinic, tmp_path)
    first = propose(engine, "P1", date(2025, 3, 31), clinic, rules=RULES)
    second = propose(engine, "P1", date(2025, 3, 31), clinic, rules=RULES)
    accept(engine, first.plan_id, date(2025, 4, 1))
    with pytest.raises(RecouvrementError, match="a déjà un échéancier actif"):
        accept(engine, second.plan_id, date(2025, 4, 1))


def test_a_cancelled_plan_gives_its_invoices_back_to_the_ladder(engine, clinic, tmp_path):
    world(engine, clinic, tmp_path)
    proposal = propose(engine, "P1", date(2025, 3, 31), clinic, rules=RULES)
    accept(engine, proposal.plan_id, date(2025, 4, 1))
    cancel(engine, proposal.plan_id, date(2025, 4, 10))
    assert plan_row(engine, proposal.plan_id)[0] == "cancelled"
    with engine.connect() as conn:
        assert active_plan_invoices(conn) == set()
        assert conn.execute(text("SELECT kind FROM audit_event ORDER BY seq DESC LIMIT 1")).scalar_one() == \
            "plan_cancelled"


def daily_statuses(engine, plan_id, start: date, end: date) -> dict[date, str]:
    """Run the nightly refresh every day from start to end: the plan's stored status each evening."""
    seen, day = {}, start
    while day <= end:
        refresh_plans(engine, day, RULES)
        seen[day] = plan_row(engine, plan_id)[0]
        day += timedelta(days=1)
    return seen


def test_a_plan_paid_on_time_is_completed_on_the_day_of_its_last_payment(engine, clinic, tmp_path):
    world(engine, clinic, tmp_path, [invoice("F2025-000201", "2025-01-10", 9000)])
    proposal = propose(engine, "P1", date(2025, 3, 31), clinic, months=3, rules=RULES)
    accept(engine, proposal.plan_id, date(2025, 4, 5))
    pay(engine, clinic, tmp_path, [(f"E{k}", i.due_date.isoformat(), i.amount_cents, "F2025-000201")
                                   for k, i in enumerate(proposal.instalments)])
    seen = daily_statuses(engine, proposal.plan_id, date(2025, 4, 5), date(2025, 7, 15))
    assert {s for d, s in seen.items() if d < date(2025, 6, 30)} == {"active"}
    assert seen[date(2025, 6, 30)] == "completed" and seen[date(2025, 7, 15)] == "completed"
    assert str(plan_row(engine, proposal.plan_id)[2]) == "2025-06-30"


def test_a_plan_breaks_the_day_after_an_instalment_is_fifteen_days_late(engine, clinic, tmp_path):
    world(engine, clinic, tmp_path, [invoice("F2025-000201", "2025-01-10", 9000)])
    proposal = propose(engine, "P1", date(2025, 3, 31), clinic, months=3, rules=RULES)
    accept(engine, proposal.plan_id, date(2025, 4, 5))
    pay(engine, clinic, tmp_path, [("E0", "2025-04-28", 3000, "F2025-000201")])   # the second never comes
    seen = daily_statuses(engine, proposal.plan_id, date(2025, 4, 5), date(2025, 6, 30))
    assert seen[date(2025, 6, 15)] == "active"          # 31 May + 15 days: still within the grace period
    assert seen[date(2025, 6, 16)] == "broken"
    status, _, ended_on, _, _ = plan_row(engine, proposal.plan_id)
    assert str(ended_on) == "2025-06-16"
    with engine.connect() as conn:
        assert active_plan_invoices(conn) == set()
        kinds = conn.execute(text("SELECT kind FROM audit_event WHERE kind = 'plan_broken'")).scalars().all()
    assert kinds == ["plan_broken"]


def test_a_late_instalment_paid_within_the_grace_period_keeps_the_plan(engine, clinic, tmp_path):
    world(engine, clinic, tmp_path, [invoice("F2025-000201", "2025-01-10", 9000)])
    proposal = propose(engine, "P1", date(2025, 3, 31), clinic, months=3, rules=RULES)
    accept(engine, proposal.plan_id, date(2025, 4, 5))
    pay(engine, clinic, tmp_path, [("E0", "2025-05-14", 3000, "F2025-000201")])   # 30 April + 14 days
    seen = daily_statuses(engine, proposal.plan_id, date(2025, 4, 5), date(2025, 6, 10))
    assert set(seen.values()) == {"active"}
    [summary] = show(engine, date(2025, 6, 10), plan_id=proposal.plan_id, rules=RULES)
    assert summary.standing.paid_cents == 3000 and summary.standing.next_due == date(2025, 5, 31)


def test_payments_before_the_proposal_do_not_count_toward_the_plan(engine, clinic, tmp_path):
    world(engine, clinic, tmp_path, [invoice("F2025-000201", "2025-01-10", 12000)])
    pay(engine, clinic, tmp_path, [("E0", "2025-03-01", 3000, "F2025-000201")])
    proposal = propose(engine, "P1", date(2025, 3, 31), clinic, months=3, rules=RULES)
    accept(engine, proposal.plan_id, date(2025, 4, 1))
    [summary] = show(engine, date(2025, 4, 1), plan_id=proposal.plan_id, rules=RULES)
    assert proposal.total_cents == 9000 and summary.standing.paid_cents == 0


def test_the_plan_commands_propose_accept_and_show(db_url, tmp_path):
    from recouvrement.cli import cli
    import recouvrement.cli.commands  # noqa: F401  (registers the commands)
    config = tmp_path / "recouvrement.toml"
    config.write_text("[creditor]\n" + "".join(f'{k} = "{v}"\n' for k, v in vars(CREDITOR).items())
                      + f'[privacy]\nnir_key_file = "{tmp_path / "nir.key"}"\n')
    runner = CliRunner()
    base = ["--db", db_url, "--config", str(config)]
    write(tmp_path / "invoices.csv", INVOICE_HEADER, [invoice("F2025-000201", "2025-01-10", 9000)])
    assert runner.invoke(cli, [*base, "import", "invoices", str(tmp_path / "invoices.csv")]).exit_code == 0
    proposed = runner.invoke(cli, [*base, "plan", "propose", "P1", "--as-of", "2025-03-31", "--months", "3",
                                   "--out", str(tmp_path / "letters")])
    assert proposed.exit_code == 0, proposed.output
    assert (tmp_path / "letters" / "echeancier_1.pdf").exists()
    assert runner.invoke(cli, [*base, "plan", "accept", "1", "--on", "2025-04-01"]).exit_code == 0
    shown = runner.invoke(cli, [*base, "plan", "show", "--patient", "P1", "--as-of", "2025-04-01"])
    assert shown.exit_code == 0 and "actif" in shown.output and "30/06/2025" in shown.output


def test_a_proposed_plan_pauses_the_ladder_for_its_answer_window(engine, clinic, tmp_path):
    from recouvrement.app.remind import run_remind
    world(engine, clinic, tmp_path)
    propose(engine, "P1", date(2025, 3, 31), clinic, rules=RULES)

    def reminded(day):
        report = run_remind(engine, clinic, day, tmp_path / "letters", dry_run=True, rules=RULES)
        return [d.level for d in report.decisions], {e.code for e in report.exclusions}
    assert reminded(date(2025, 4, 29)) == ([], {"plan_proposed"})   # the 30th day of the window
    assert reminded(date(2025, 4, 30)) == ([1], set())              # unanswered: the ladder resumes


def test_a_plan_never_accepted_is_proposed_then_lapsed_never_active_nor_broken(engine, clinic, tmp_path):
    world(engine, clinic, tmp_path, [invoice("F2025-000201", "2025-01-10", 9000)])
    proposal = propose(engine, "P1", date(2025, 3, 31), clinic, months=3, rules=RULES)
    seen = daily_statuses(engine, proposal.plan_id, date(2025, 3, 31), date(2025, 7, 31))
    assert {s for d, s in seen.items() if d < date(2025, 4, 30)} == {"proposed"}
    assert {s for d, s in seen.items() if d >= date(2025, 4, 30)} == {"lapsed"}
    [shown] = show(engine, date(2025, 7, 31), plan_id=proposal.plan_id, rules=RULES)
    assert (shown.status, shown.standing.state, shown.ended_on) == ("lapsed", "lapsed", date(2025, 4, 30))
    with pytest.raises(RecouvrementError, match="caduc|lapsed"):
        accept(engine, proposal.plan_id, date(2025, 4, 30), rules=RULES)


def test_an_unanswered_proposal_stands_as_proposed_whatever_its_schedule(engine, clinic, tmp_path):
    world(engine, clinic, tmp_path, [invoice("F2025-000201", "2025-01-10", 9000)])
    proposal = propose(engine, "P1", date(2025, 3, 31), clinic, months=3, rules=replace(
        RULES, plans=replace(RULES.plans, answer_window_days=90)))
    [shown] = show(engine, date(2025, 6, 20), plan_id=proposal.plan_id,
                   rules=replace(RULES, plans=replace(RULES.plans, answer_window_days=90)))
    assert shown.standing.state == "proposed"   # its first instalment is 51 days late: not "broken"


def test_no_plan_covers_an_invoice_whose_insurer_share_is_still_awaited(engine, clinic, tmp_path):
    awaited = ("F2025-000203;2025-02-10;;P1;Martin;Claire;5 rue Haute;75011;Paris;claire@example.org;;;"
               "100,00;70,00;0;30,00;;none;;")
    world(engine, clinic, tmp_path, [invoice("F2025-000201", "2025-01-10", 10000), awaited])
    proposal = propose(engine, "P1", date(2025, 3, 31), clinic, rules=RULES)
    assert proposal.invoice_numbers == ("F2025-000201",) and proposal.total_cents == 10000


def test_no_plan_is_proposed_to_a_patient_on_hold(engine, clinic, tmp_path):
    """Plans used to ignore holds: a patient whose letters were paused could be sent a plan proposal."""
    from recouvrement.app.holds import place_hold
    world(engine, clinic, tmp_path)
    place_hold(engine, "P1", "situation difficile", since=date(2025, 3, 1))
    with pytest.raises(RecouvrementError, match="relances suspendues"):
        propose(engine, "P1", date(2025, 3, 31), clinic, rules=RULES)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM plan")).scalar_one() == 0


def test_a_hold_that_starts_later_does_not_stop_a_proposal_today(engine, clinic, tmp_path):
    from recouvrement.app.holds import place_hold
    world(engine, clinic, tmp_path)
    place_hold(engine, "P1", "situation difficile", since=date(2025, 4, 15))
    assert propose(engine, "P1", date(2025, 3, 31), clinic, rules=RULES).total_cents == 15000


def test_no_plan_is_proposed_over_a_css_coverage(engine, clinic, tmp_path):
    """A patient share under CSS/AME/AT-MP is a billing anomaly the ladder never chases; plans proposed it."""
    world(engine, clinic, tmp_path, [invoice("F2025-000201", "2025-01-10", 10000).replace(";none;", ";css;")])
    with pytest.raises(RecouvrementError, match="CSS"):
        propose(engine, "P1", date(2025, 3, 31), clinic, rules=RULES)


def test_no_plan_is_proposed_while_a_payment_in_the_patients_name_awaits_matching(engine, clinic, tmp_path):
    world(engine, clinic, tmp_path)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO payment (payment_id, payment_date, payer_type, payer_name, amount_cents, "
                          "reference, status, source_file, reconciled) VALUES ('B1', :d, 'patient', 'C MARTIN', 5000, "
                          "'', 'paid', 'bank.csv', TRUE)"), {"d": date(2025, 3, 20)})
        conn.execute(text("INSERT INTO payment_exception (payment_id, kind, remaining_cents, reason, patient_id) "
                          "VALUES ('B1', 'unmatched', 5000, 'no reference', 'P1')"))
    with pytest.raises(RecouvrementError, match="attend le rapprochement"):
        propose(engine, "P1", date(2025, 3, 31), clinic, rules=RULES)


def test_a_dispute_received_after_the_proposal_day_does_not_take_its_invoice_out(engine, clinic, tmp_path):
    """Plans read every dispute not closed, whatever its date; the ladder only those received by the day."""
    world(engine, clinic, tmp_path)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO dispute (invoice_number, received_on, channel, category, status, reason, "
                          "answer_due) VALUES ('F2025-000202', :d, 'desk', 'amount', 'open', 'montant', :d)"),
                     {"d": date(2025, 4, 5)})
    proposal = propose(engine, "P1", date(2025, 3, 31), clinic, rules=RULES)
    assert proposal.invoice_numbers == ("F2025-000201", "F2025-000202")
