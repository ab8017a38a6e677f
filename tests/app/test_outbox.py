"""The e-mail outbox against a real SMTP server (aiosmtpd): 'sent' only once accepted, the rest queued for the
next run, a run SIGKILLed mid-send, a letter refused for good; and a print batch never made twice."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import text

import recouvrement.app.remind as remind_module
from recouvrement.app.nightly import remind_and_send
from recouvrement.app.report import report_data
from recouvrement.config import Smtp
from tests.app.test_remind import CREDITOR, MONDAY, invoice, load, with_creditor
from tests.app.test_remind_email import _free_port

PATIENTS = [f"P{k}" for k in range(1, 6)]
EMAIL_ROWS = [invoice(f"F2025-00030{k}", p, "01/04/2025", "15/04/2025", "45,00", email=f"patient{k}@example.org")
              for k, p in enumerate(PATIENTS, start=1)]
POSTAL_ROWS = [invoice(f"F2025-00040{k}", f"Q{k}", "01/04/2025", "15/04/2025", "45,00") for k in range(1, 4)]


class Server:
    """An aiosmtpd handler that accepts `accept` messages (all when None), then answers 421; refuses the
    recipients in `refuse` with 550; and can hold message number `hold` (1-based) until released."""

    def __init__(self, accept: int | None = None, refuse: tuple[str, ...] = (), hold: int | None = None) -> None:
        self.accept, self.refuse, self.hold = accept, refuse, hold
        self.received: list[str] = []          # recipients of the accepted messages
        self.seen = 0
        self.holding = threading.Event()
        self.release = threading.Event()

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.seen += 1
        if self.hold == self.seen:
            self.holding.set()
            while not self.release.is_set():
                await asyncio.sleep(0.05)
            return "451 4.3.0 try again later"
        if self.accept is not None and len(self.received) >= self.accept:
            return "421 4.3.2 service not available, closing"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert message["Message-ID"]
        self.received.extend(envelope.rcpt_tos)
        return "250 OK"


@pytest.fixture
def smtp():
    started = []

    def start(handler: Server) -> int:
        controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
        controller.start()
        started.append(controller)
        return controller.port
    yield start
    for controller in started:
        controller.stop()


def configured(settings, port: int):
    return replace(with_creditor(settings), smtp=Smtp(host="127.0.0.1", port=port, sender="relances@lilas.example"))


def statuses(engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {p: s for p, s in conn.execute(text("SELECT patient_id, status FROM letter ORDER BY patient_id"))}


def test_a_server_that_stops_after_two_messages_leaves_the_rest_queued_and_the_next_run_sends_them(
        engine, settings, tmp_path, smtp):
    load(engine, settings, tmp_path, EMAIL_ROWS)
    tired = Server(accept=2)
    first = remind_and_send(engine, configured(settings, smtp(tired)), MONDAY, tmp_path / "out")
    assert (first.emails_sent, first.emails_queued) == (2, 3)
    assert sorted(statuses(engine).values()) == ["queued"] * 3 + ["sent"] * 2
    assert (report_data(engine, MONDAY).emails_queued, report_data(engine, MONDAY).emails_failed) == (3, 0)
    fresh = Server()
    second = remind_and_send(engine, configured(settings, smtp(fresh)), MONDAY, tmp_path / "out")
    assert (second.emails_sent, second.emails_queued, second.letters) == (3, 0, [])
    assert sorted(tired.received + fresh.received) == [f"patient{k}@example.org" for k in range(1, 6)]
    assert set(statuses(engine).values()) == {"sent"}


def test_a_letter_the_server_refuses_for_good_is_failed_after_three_tries_and_the_others_are_sent(
        engine, settings, tmp_path, smtp):
    load(engine, settings, tmp_path, EMAIL_ROWS)
    server = Server(refuse=("patient2@example.org",))
    port = smtp(server)
    reports = [remind_and_send(engine, configured(settings, port), MONDAY, tmp_path / "out") for _ in range(3)]
    assert [r.emails_failed for r in reports] == [0, 0, 1]
    assert statuses(engine)["P2"] == "failed" and len(server.received) == 4
    with engine.connect() as conn:
        assert conn.execute(text("SELECT attempts FROM letter WHERE patient_id = 'P2'")).scalar_one() == 3
    assert remind_and_send(engine, configured(settings, port), MONDAY, tmp_path / "out").emails_failed == 1
    with engine.connect() as conn:
        assert conn.execute(text("SELECT attempts FROM letter WHERE patient_id = 'P2'")).scalar_one() == 3


def _config_file(folder: Path, port: int) -> Path:
    path = folder / "recouvrement.toml"
    c = CREDITOR
    path.write_text(f'[creditor]\nname = "{c.name}"\naddress = "{c.address}"\npostal_code = "{c.postal_code}"\n'
                    f'city = "{c.city}"\nphone = "{c.phone}"\nemail = "{c.email}"\nsiret = "{c.siret}"\n'
                    f'iban = "{c.iban}"\nbic = "{c.bic}"\n[smtp]\nhost = "127.0.0.1"\nport = {port}\n'
                    f'sender = "relances@lilas.example"\n[privacy]\nnir_key_file = "{folder / "nir.key"}"\n',
                    encoding="utf-8")
    return path


def cli(db_url: str, config: Path, *args: str) -> list[str]:
    return [sys.executable, "-c", "from recouvrement.cli import main; main()", "--db", db_url, "--config",
            str(config), *args]


def test_a_run_killed_while_sending_leaves_the_rest_queued_and_the_next_run_sends_each_once(
        engine, db_url, settings, tmp_path, smtp):
    load(engine, settings, tmp_path, EMAIL_ROWS)
    stuck = Server(hold=3)
    config = _config_file(tmp_path, smtp(stuck))
    run = subprocess.Popen(cli(db_url, config, "remind", "--as-of", MONDAY.isoformat(), "--out",
                               str(tmp_path / "out")), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert stuck.holding.wait(120), "the run never reached the third message"
        os.kill(run.pid, signal.SIGKILL)
        run.wait(30)
    finally:
        stuck.release.set()
        if run.poll() is None:
            run.kill()
    assert len(stuck.received) == 2
    assert sorted(statuses(engine).values()) == ["queued"] * 2 + ["sending"] + ["sent"] * 2
    fresh = Server()
    again = remind_and_send(engine, configured(settings, smtp(fresh)), MONDAY, tmp_path / "out")
    assert again.emails_sent == 3 and again.letters == []
    assert sorted(stuck.received + fresh.received) == [f"patient{k}@example.org" for k in range(1, 6)]
    assert set(statuses(engine).values()) == {"sent"}


def test_a_run_killed_just_after_writing_the_print_batch_never_makes_a_second_batch(
        engine, settings, tmp_path, monkeypatch):
    load(engine, settings, tmp_path, POSTAL_ROWS)
    write = remind_module.write_atomically

    def write_then_die(path, data):
        write(path, data)
        if Path(path).name.startswith("batch-"):
            raise KeyboardInterrupt("killed just after writing the batch")
    monkeypatch.setattr(remind_module, "write_atomically", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        remind_and_send(engine, with_creditor(settings), MONDAY, tmp_path / "out")
    monkeypatch.setattr(remind_module, "write_atomically", write)
    again = remind_and_send(engine, with_creditor(settings), MONDAY, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").glob("batch-*.pdf")) == ["batch-2025-06-02.pdf"]
    assert again.letters == [] and len(again.already_recorded) == 3
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM print_batch WHERE written_at IS NOT NULL")).scalar_one() == 1


def killed_laying_out_the_batch(engine, settings, out: Path, monkeypatch) -> None:
    """Monday's run on the postal rows, killed while it lays out its print batch: letters recorded, batch not."""
    def die(*args, **kwargs):
        raise KeyboardInterrupt("killed while laying out the batch")
    # The batch is joined from the parts laid out while the letters were composed (concatenate_pdfs), or laid out
    # from the letters' files (render_batch_pdf) when the parts do not hold exactly its letters: killed in either.
    monkeypatch.setattr("recouvrement.render.pdf.render_batch_pdf", die)
    monkeypatch.setattr("recouvrement.render.pdf.concatenate_pdfs", die)
    with pytest.raises(KeyboardInterrupt):
        remind_and_send(engine, with_creditor(settings), MONDAY, out)
    monkeypatch.undo()


def test_a_run_killed_before_writing_the_print_batch_leaves_it_to_the_next_run(engine, settings, tmp_path, monkeypatch):
    load(engine, settings, tmp_path, POSTAL_ROWS)
    killed_laying_out_the_batch(engine, settings, tmp_path / "out", monkeypatch)
    again = remind_and_send(engine, with_creditor(settings), MONDAY + timedelta(days=1),
                       tmp_path / "out2")
    assert (tmp_path / "out" / "batch-2025-06-02.pdf").exists()
    assert sorted(again.pages) == [f"L20250602-Q{k}-1" for k in range(1, 4)]


def test_a_print_batch_whose_run_is_alive_is_left_to_it_and_written_once_it_is_gone(
        engine, settings, tmp_path, monkeypatch):
    # Two runs of a day at once: the first records the batch and, until it has written it, holds its lock; the
    # second, seeing the batch recorded and not written, must not lay it out too (both wrote it, and one renamed
    # the other's half-written file: "No such file or directory", the run failed).
    from recouvrement.render.files import lock_beside
    load(engine, settings, tmp_path, POSTAL_ROWS)
    killed_laying_out_the_batch(engine, settings, tmp_path / "out", monkeypatch)
    batch = tmp_path / "out" / "batch-2025-06-02.pdf"
    alive = lock_beside(batch)                    # the first run, alive and about to write its batch
    try:
        other = remind_and_send(engine, with_creditor(settings), MONDAY, tmp_path / "out")
        assert other.errors == [] and other.letters == [] and not batch.exists()
    finally:
        os.close(alive)
    again = remind_and_send(engine, with_creditor(settings), MONDAY, tmp_path / "out")
    assert again.errors == [] and again.batch_pdf is None and batch.exists()
    assert not (tmp_path / "out" / ".batch-2025-06-02.pdf.lock").exists()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM print_batch WHERE written_at IS NOT NULL")).scalar_one() == 1
