"""What a person reads from the command line: French, one line per error, the documented exit status,
dates in both spellings, values from outside printed as they are, tables never cut."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import click
import pytest

from recouvrement.cli import cli, main
from recouvrement.cli.options import Day, parse_day
from tests.app.world import invoices_file


def run_main(monkeypatch, capsys, *args, cwd: Path | None = None) -> tuple[int, str, str]:
    """The real entry point, in this process (a subprocess per case would be slow)."""
    monkeypatch.setattr(sys, "argv", ["recouvrement", *args])
    monkeypatch.delenv("RECOUVREMENT_CONFIG", raising=False)
    monkeypatch.delenv("RECOUVREMENT_DEBUG", raising=False)
    if cwd is not None:
        monkeypatch.chdir(cwd)
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out, captured.err


def every_command(group: click.Group, prefix: str = ""):
    from recouvrement.cli import commands  # noqa: F401  (registers the commands)
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from every_command(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", command


def test_a_day_reads_the_same_written_the_french_way_or_the_iso_way():
    assert parse_day("08/01/2027") == parse_day("2027-01-08") == date(2027, 1, 8)
    with pytest.raises(ValueError, match="jj/mm/aaaa"):
        parse_day("2027-13-01")


def test_every_date_option_of_every_command_is_the_shared_day_type():
    date_options = [(name, p.name) for name, command in every_command(cli) for p in command.params
                    if p.name in ("as_of", "on", "received")]
    assert len(date_options) >= 12
    wrong = [(name, param) for name, command in every_command(cli) for p in command.params
             if (param := p.name) in ("as_of", "on", "received") and not isinstance(p.type, Day)]
    assert wrong == []


@pytest.mark.parametrize("day", ["15/04/2025", "2025-04-15"])
def test_as_of_takes_both_spellings_from_the_command_line(monkeypatch, capsys, db_url, tmp_path, day):
    code, out, _ = run_main(monkeypatch, capsys, "--db", db_url, "balance", "--as-of", day, cwd=tmp_path)
    assert code == 0 and "Balance âgée au 15/04/2025" in out


def test_a_date_that_is_no_date_is_refused_in_french_with_status_2(monkeypatch, capsys, db_url, tmp_path):
    code, out, err = run_main(monkeypatch, capsys, "--db", db_url, "segments", "--as-of", "31/02/2025", cwd=tmp_path)
    assert code == 2 and out == ""
    assert "Valeur invalide pour '--as-of' : date invalide '31/02/2025'" in err


def test_an_unknown_option_is_refused_in_french_with_status_2(monkeypatch, capsys, db_url, tmp_path):
    code, _, err = run_main(monkeypatch, capsys, "--db", db_url, "balance", "--as-off", "2025-01-01", cwd=tmp_path)
    assert code == 2 and "Option inconnue '--as-off'" in err


def test_a_missing_import_file_is_one_line_naming_it_with_status_2_and_no_table(monkeypatch, capsys, db_url,
                                                                                tmp_path):
    code, out, err = run_main(monkeypatch, capsys, "--db", db_url, "import", "invoices", "absent.csv", cwd=tmp_path)
    assert code == 2 and out == ""
    assert err.strip() == "erreur : absent.csv: fichier introuvable"


def test_a_file_name_and_a_cell_holding_rich_markup_are_printed_as_they_are(monkeypatch, capsys, db_url, tmp_path):
    monkeypatch.setenv("RECOUVREMENT_NIR_KEY", "test-key")
    lines = invoices_file(tmp_path).read_text(encoding="cp1252").splitlines()
    bad = tmp_path / "relevé[bold].csv"
    bad.write_text("\n".join([lines[0], "[/]" + lines[1][lines[1].index(";"):]]) + "\n", encoding="utf-8")
    code, out, err = run_main(monkeypatch, capsys, "--db", db_url, "import", "invoices", bad.name, cwd=tmp_path)
    assert code == 1
    assert "relevé[bold].csv" in out and "relevé[bold].csv" in err


def test_a_database_that_cannot_be_opened_is_one_french_line_with_status_2(monkeypatch, capsys, tmp_path):
    url = f"sqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'x.db'}"
    code, out, err = run_main(monkeypatch, capsys, "--db", url, "balance", cwd=tmp_path)
    assert code == 2 and out == ""
    assert err.startswith("erreur : [--db]: impossible d'ouvrir la base ") and len(err.strip().splitlines()) == 1


def test_a_database_url_that_is_no_url_is_refused_without_echoing_it(monkeypatch, capsys, tmp_path):
    code, _, err = run_main(monkeypatch, capsys, "--db", "pas-une-url:secret", "balance", cwd=tmp_path)
    assert code == 2 and "adresse de base de données inutilisable" in err and "secret" not in err


def test_a_database_error_is_one_french_line_with_status_4(monkeypatch, capsys, tmp_path):
    (tmp_path / "x.db").write_text("ceci n'est pas une base SQLite, " * 100, encoding="utf-8")
    code, out, err = run_main(monkeypatch, capsys, "--db", f"sqlite:///{tmp_path / 'x.db'}", "balance", cwd=tmp_path)
    assert code == 4 and out == ""
    assert err.startswith("erreur : la base de données a refusé l'opération : ")
    assert len(err.strip().splitlines()) == 1 and "SELECT" not in err


def test_a_file_that_cannot_be_written_is_one_line_naming_it_with_status_2(monkeypatch, capsys, db_url, tmp_path):
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    code, _, err = run_main(monkeypatch, capsys, "--db", db_url, "balance", "--csv",
                            str(tmp_path / "a-file" / "b.csv"), cwd=tmp_path)
    assert code == 2 and "a-file" in err and len(err.strip().splitlines()) == 1


def _runs_table(db_url: str, cwd: Path, columns: str | None) -> str:
    from recouvrement.app.nightly import run_nightly
    from recouvrement.config import Paths, Settings
    from recouvrement.db.session import open_engine
    engine = open_engine(db_url)
    run_nightly(engine, Settings(paths=Paths(cwd / "i", cwd / "a", cwd / "q", cwd / "o")), date(2027, 1, 8))
    engine.dispose()
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "RECOUVREMENT_CONFIG")}
    if columns:
        env["COLUMNS"] = columns
    done = subprocess.run(["recouvrement", "--db", db_url, "runs"], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_piped_table_is_never_cut_to_80_columns(db_url, tmp_path):
    table = _runs_table(db_url, tmp_path, None)
    assert "08/01/2027" in table and "…" not in table


def test_a_table_narrower_than_its_content_folds_its_cells_instead_of_cutting_them(db_url, tmp_path):
    table = _runs_table(db_url, tmp_path, "50")
    assert "…" not in table and "08/01/2027" in table


def test_a_use_case_error_names_its_domain_field_and_the_command_line_shows_the_option(monkeypatch, capsys, tmp_path):
    from recouvrement.app.demo import prepare_folder
    from recouvrement.errors import RecouvrementError
    (tmp_path / "mine.txt").write_text("à garder", encoding="utf-8")
    with pytest.raises(RecouvrementError) as refused:
        prepare_folder(tmp_path, tmp_path, own_database=True)
    assert refused.value.field == "demo_folder" and "--" not in str(refused.value)
    code, _, err = run_main(monkeypatch, capsys, "--db", f"sqlite:///{tmp_path / 'x.db'}", "demo", "--dir",
                            str(tmp_path), cwd=tmp_path)
    assert code == 2 and "[--dir]: le dossier existe et ne vient pas de la démo" in " ".join(err.split())


def test_no_use_case_or_core_error_names_a_command_line_option():
    import re
    package = Path(__file__).resolve().parents[1] / "recouvrement"
    option = re.compile(r"""field\s*=\s*["']--|RecouvrementError\([^)]*--[a-z]""", re.S)
    named = {path.relative_to(package).as_posix() for folder in ("app", "core")
             for path in (package / folder).rglob("*.py") if option.search(path.read_text(encoding="utf-8"))}
    assert named == set()


def test_the_import_commands_help_reads_in_french(monkeypatch, capsys):
    code, shown, _ = run_main(monkeypatch, capsys, "import", "payments", "--help")
    shown = " ".join(shown.split())          # click wraps the help to the terminal's width
    assert code == 0
    assert "Importer des fichiers de paiements" in shown and "lignes refusées (fichier, ligne, champ, motif)" in shown
    assert "Import payment files" not in shown and "refused rows" not in shown


@pytest.mark.parametrize(("command", "phrase"), [
    (["import", "agency-returns"], "Importer le CSV des retours de l'agence"),
    (["export", "agency"], "Jour de la remise (jj/mm/aaaa ou ISO)"),
    (["export", "fec"], "Séparateur de champs du FEC"),
    (["write-off"], "Note interne (gardée en base"),
    (["segments"], "Patients par segment"),
    (["db", "upgrade"], "Créer ou mettre à jour le schéma"),
    (["demo"], "Dossier de travail"),
    (["audit", "log"], "Les N derniers événements"),
    (["call", "record"], "Noter l'issue d'un appel"),
    (["web"], "Adresse d'écoute"),
    (["user", "add"], "Créer un utilisateur de l'application web"),
    (["dispute", "open"], "Enregistrer une réclamation"),
    (["plan", "propose"], "Nombre de mensualités"),
    (["balance"], "Date de la balance"),
    (["refund", "approve"], "Nom du titulaire du compte"),
    (["remind"], "Envoyer les relances dues"),
    (["nightly"], "Secondes d'attente d'un traitement déjà en cours"),
])
def test_a_commands_help_reads_in_french(monkeypatch, capsys, command, phrase):
    code, shown, _ = run_main(monkeypatch, capsys, *command, "--help")
    assert code == 0 and phrase in " ".join(shown.split())


def test_every_commands_help_shows_without_an_error(monkeypatch, capsys):
    failed = []
    for name, _command in every_command(cli):
        code, shown, err = run_main(monkeypatch, capsys, *name.split(), "--help")
        if code != 0 or "Usage :" not in shown:
            failed.append((name, code, err.strip()[:80]))
    assert failed == []


def test_reconcile_names_its_rules_and_queue_in_french(monkeypatch, capsys, db_url, tmp_path):
    from tests.app.world import payments_file
    invoices_file(tmp_path)
    payments_file(tmp_path, ["V1;15/02/2025;patient;LEFEVRE ELOISE;10,00;;F2025-000101;paid;",
                             "V2;16/02/2025;patient;INCONNU;7,00;;;paid;"])
    for kind, name in (("invoices", "invoices.csv"), ("payments", "payments.csv")):
        assert run_main(monkeypatch, capsys, "--db", db_url, "import", kind, name, cwd=tmp_path)[0] == 0
    code, out, _ = run_main(monkeypatch, capsys, "--db", db_url, "reconcile", cwd=tmp_path)
    assert code == 0
    assert "règle « facture indiquée » : 1 paiement(s)" in out
    assert "file d'attente, sans correspondance : 1" in out
    assert "explicit" not in out and "unmatched" not in out
