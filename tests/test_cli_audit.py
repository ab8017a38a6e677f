"""The audit, dispute, hold and segments commands run as a user runs them: a real process, exit codes, no traceback."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import subprocess

import pytest
from sqlalchemy import text

from tests.app.test_audit import build_trail
from tests.app.test_audit_history import history  # noqa: F401  (a fixture)


def run(db_url, *args, cwd):
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("RECOUVREMENT_CONFIG", None)
    result = subprocess.run([shutil.which("recouvrement"), "--db", db_url, *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=120)
    assert "Traceback" not in result.stderr + result.stdout
    return result


@pytest.fixture
def trail(engine, settings, tmp_path):
    count = build_trail(engine, settings, tmp_path)
    return engine, count


def test_verify_prints_the_event_count_and_head_and_exits_0(trail, db_url, tmp_path):
    _, count = trail
    result = run(db_url, "audit", "verify", cwd=tmp_path)
    assert result.returncode == 0
    assert f"{count} événement(s), chaîne intègre" in result.stdout


def test_verify_names_the_first_edited_event_and_exits_1(trail, db_url, tmp_path):
    engine, _ = trail
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_event SET payload = '{}' WHERE seq = 3"))
    result = run(db_url, "audit", "verify", cwd=tmp_path)
    assert result.returncode == 1
    assert "rompu à l'événement 3" in result.stderr


def test_verify_names_a_deleted_event_and_exits_1(trail, db_url, tmp_path):
    engine, _ = trail
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_event WHERE seq = 2"))
    result = run(db_url, "audit", "verify", cwd=tmp_path)
    assert result.returncode == 1 and "l'événement 2 manque" in result.stderr


def test_the_log_lists_a_patients_events_without_the_hold_reason(trail, db_url, tmp_path):
    result = run(db_url, "audit", "log", "--patient", "P3", cwd=tmp_path)
    assert result.returncode == 0
    assert "hold_release" in result.stdout and "2 événement(s) affiché(s)" in result.stdout
    assert "protection" not in result.stdout


def test_a_dispute_runs_its_course_from_the_command_line(trail, db_url, tmp_path):
    opened = run(db_url, "dispute", "open", "F2025-000101", "--reason", "Conteste l'échographie", "--channel",
                 "email", "--category", "amount", "--received", "2025-04-01", cwd=tmp_path)
    assert opened.returncode == 0 and "réponse due le 31/05/2025" in opened.stdout
    listing = run(db_url, "dispute", "list", "--as-of", "2025-05-25", cwd=tmp_path)
    assert "F2025-000101" in listing.stdout and "proche" in listing.stdout
    assert "chographie" not in listing.stdout
    assert run(db_url, "dispute", "answer", "2", "--note", "tarif expliqué", cwd=tmp_path).returncode == 0
    assert run(db_url, "dispute", "close", "2", cwd=tmp_path).returncode == 0
    assert "F2025-000101" not in run(db_url, "dispute", "list", cwd=tmp_path).stdout


def test_overdue_lists_only_disputes_past_their_deadline(trail, db_url, tmp_path):
    result = run(db_url, "dispute", "list", "--overdue", "--as-of", "2025-06-01", cwd=tmp_path)
    assert "F2025-000103" in result.stdout and "dépassée" in result.stdout
    assert "F2025-000103" not in run(db_url, "dispute", "list", "--overdue", "--as-of", "2025-05-30",
                                     cwd=tmp_path).stdout


def test_an_illegal_transition_is_one_line_and_exit_2(trail, db_url, tmp_path):
    result = run(db_url, "dispute", "forward", "1", cwd=tmp_path)     # dispute 1 is already forwarded
    assert result.returncode == 2
    assert "ne peut pas devenir transmise" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_dispute_on_an_unknown_invoice_exits_2(trail, db_url, tmp_path):
    result = run(db_url, "dispute", "open", "NOPE1", "--reason", "x", cwd=tmp_path)
    assert result.returncode == 2 and "facture inconnue 'NOPE1'" in result.stderr


def test_hold_and_release_from_the_command_line(trail, db_url, tmp_path):
    assert run(db_url, "hold", "P1", "--reason", "difficultés", cwd=tmp_path).returncode == 0
    again = run(db_url, "hold", "P1", "--reason", "encore", cwd=tmp_path)
    assert again.returncode == 2 and "déjà suspendu" in again.stderr
    assert run(db_url, "hold", "P1", "--release", cwd=tmp_path).returncode == 0
    assert run(db_url, "hold", "P1", "--release", cwd=tmp_path).returncode == 2


def test_a_hold_from_the_command_line_takes_its_review_date_in_the_same_write_or_nothing(trail, db_url, tmp_path):
    engine, _ = trail
    refused = run(db_url, "hold", "P1", "--reason", "difficultés", "--on", "2025-04-15", "--review-on", "2025-04-10",
                  cwd=tmp_path)
    assert refused.returncode == 2 and "[--review-on]" in refused.stderr and "date de revue" in refused.stderr
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM hold WHERE patient_id = 'P1' AND released_on IS NULL")).scalar_one() == 0
    done = run(db_url, "hold", "P1", "--reason", "difficultés", "--on", "2025-04-15", "--review-on", "15/05/2025",
               cwd=tmp_path)
    assert done.returncode == 0 and "à revoir le 15/05/2025" in done.stdout
    with engine.connect() as conn:
        assert str(conn.execute(text("SELECT r.review_on FROM hold_review r JOIN hold h ON h.id = r.hold_id "
                                     "WHERE h.patient_id = 'P1'")).scalar_one())[:10] == "2025-05-15"


def test_hold_needs_a_reason_or_release(trail, db_url, tmp_path):
    result = run(db_url, "hold", "P1", cwd=tmp_path)
    assert result.returncode == 2 and "--reason" in result.stderr


def test_segments_counts_patients_and_explains_one(trail, db_url, tmp_path):
    table = run(db_url, "segments", "--as-of", "2025-04-15", cwd=tmp_path)
    assert table.returncode == 0 and "on_hold" in table.stdout
    one = run(db_url, "segments", "--as-of", "2025-04-15", "--patient", "P3", cwd=tmp_path)
    assert "patient P3 au 15/04/2025 : on_hold" in one.stdout
    assert run(db_url, "segments", "--patient", "P9", cwd=tmp_path).returncode == 2


def test_scan_of_a_clean_folder_exits_0(db_url, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "lettre.txt").write_text("Madame, votre facture F2025-000101 reste due : 10,00 €.\n", encoding="utf-8")
    result = run(db_url, "audit", "scan", str(folder), cwd=tmp_path)
    assert result.returncode == 0 and "aucune donnée médicale trouvée" in result.stdout


def test_scan_prints_each_finding_masked_and_exits_1(db_url, tmp_path):
    leak = tmp_path / "export.csv"
    leak.write_text("invoice;note\nF1;suivi échographie abdominale\nF2;acte DEQP003\n", encoding="utf-8")
    clean = tmp_path / "clean.txt"
    clean.write_text("rien\n", encoding="utf-8")
    result = run(db_url, "audit", "scan", str(leak), str(clean), cwd=tmp_path)
    assert result.returncode == 1
    assert f"{leak}:2: lexicon: " in result.stdout and f"{leak}:3: ccam: " in result.stdout
    assert "chographie" not in result.stdout and "DEQP003" not in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "2 constat(s) dans 1 fichier(s)"


def test_scan_of_a_missing_path_exits_2(db_url, tmp_path):
    result = run(db_url, "audit", "scan", str(tmp_path / "absent"), cwd=tmp_path)
    assert result.returncode == 2 and "fichier ou dossier introuvable" in result.stderr


# -- the sealed trail from the command line ------------------------------------------------------------------

def events(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT COUNT(*) FROM audit_event")).scalar_one()


def test_a_writing_command_anchors_the_head_in_the_checkpoint_file(trail, db_url, tmp_path, checkpoint_file):
    engine, _ = trail
    assert run(db_url, "hold", "P1", "--reason", "difficultés", cwd=tmp_path).returncode == 0
    assert json.loads(checkpoint_file.read_text())["seq"] == events(engine)
    result = run(db_url, "audit", "verify", cwd=tmp_path)
    assert result.returncode == 0 and "point de contrôle du " in result.stdout and "avertissement" not in result.stderr


def test_verify_names_the_last_events_deleted_after_the_checkpoint(trail, db_url, tmp_path):
    engine, _ = trail
    assert run(db_url, "hold", "P1", "--reason", "difficultés", cwd=tmp_path).returncode == 0
    count = events(engine)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_event WHERE seq >= :s"), {"s": count - 1})
    result = run(db_url, "audit", "verify", cwd=tmp_path)
    assert result.returncode == 1
    assert f"rompu après l'événement {count - 2}" in result.stderr
    assert f"les événements {count - 1} à {count} manque(nt)" in result.stderr


def test_verify_names_every_event_deleted_after_the_checkpoint(trail, db_url, tmp_path):
    engine, _ = trail
    assert run(db_url, "hold", "P1", "--reason", "difficultés", cwd=tmp_path).returncode == 0
    count = events(engine)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_event"))
    result = run(db_url, "audit", "verify", cwd=tmp_path)
    assert result.returncode == 1 and f"les événements 1 à {count} manque(nt)" in result.stderr


def test_verify_without_a_checkpoint_warns_and_exits_0(trail, db_url, tmp_path):
    result = run(db_url, "audit", "verify", cwd=tmp_path)
    assert result.returncode == 0 and "aucun point de contrôle" in result.stderr


def test_a_command_records_the_os_user_as_the_actor(trail, db_url, tmp_path):
    engine, _ = trail
    assert run(db_url, "hold", "P1", "--reason", "difficultés", cwd=tmp_path).returncode == 0
    with engine.connect() as conn:
        actor = conn.execute(text("SELECT actor FROM audit_event ORDER BY seq DESC LIMIT 1")).scalar_one()
    assert actor == getpass.getuser()
    assert getpass.getuser() in run(db_url, "audit", "log", "--patient", "P1", cwd=tmp_path).stdout


def test_verify_files_names_a_modified_letter_and_exits_1(history, db_url, tmp_path):  # noqa: F811  (the imported fixture)
    _, out = history
    letter = next((out / "letters").glob("*.html"))
    letter.write_bytes(letter.read_bytes() + b" ")
    result = run(db_url, "audit", "verify", "--files", str(out), cwd=tmp_path)
    assert result.returncode == 1 and f"fichier modifié : {letter.resolve()}" in result.stderr
    assert "1 modifié(s), 0 manquant(s)" in result.stdout


def test_verify_files_names_a_missing_letter_and_exits_1(history, db_url, tmp_path):  # noqa: F811  (the imported fixture)
    _, out = history
    letter = next((out / "letters").glob("*.html"))
    letter.unlink()
    result = run(db_url, "audit", "verify", "--files", str(out), cwd=tmp_path)
    assert result.returncode == 1 and f"fichier manquant : {letter.resolve()}" in result.stderr


def test_verify_files_of_untouched_files_exits_0(history, db_url, tmp_path):  # noqa: F811  (the imported fixture)
    _, out = history
    result = run(db_url, "audit", "verify", "--files", str(out), cwd=tmp_path)
    assert result.returncode == 0 and "0 modifié(s), 0 manquant(s)" in result.stdout


def test_verify_files_says_a_letter_waiting_in_a_killed_runs_folder_and_exits_0(history, db_url, tmp_path):  # noqa: F811  (the imported fixture)
    from recouvrement.render.files import OWNER
    _, out = history
    letter = next((out / "letters").glob("*.html"))
    private = letter.parent / ".remind-run-killed"
    private.mkdir()
    (private / OWNER).touch()
    letter.rename(private / letter.name)
    result = run(db_url, "audit", "verify", "--files", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"{letter.resolve()} : intact, en attente dans {(private / letter.name).resolve()}" in result.stderr
    assert "0 modifié(s), 0 manquant(s), 1 en attente" in result.stdout
