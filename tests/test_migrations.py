"""The migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import recouvrement.db.models  # noqa: F401


def test_the_migrated_schema_matches_the_models(engine):
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert differences == []


def test_upgrading_an_up_to_date_database_changes_nothing(db_url):
    from recouvrement.db.session import open_engine, schema_is_current
    engine = open_engine(db_url)
    assert schema_is_current(engine)
    open_engine(db_url).dispose()
    assert schema_is_current(engine)


def test_upgrading_a_database_with_letters_gives_each_listed_invoice_its_letter_s_level(db_url):
    from datetime import date

    from alembic import command
    from sqlalchemy import create_engine, text

    from recouvrement.db.session import alembic_config
    engine = create_engine(db_url)
    config = alembic_config(engine)
    command.upgrade(config, "head")
    command.downgrade(config, "concurrency")   # a database written before the per-invoice ladder
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO letter (letter_id, patient_id, level, kind, channel, as_of, amount_cents, "
                          "sha256, file, status) VALUES ('L1', 'P1', 2, 'relance_2', 'letter', :d, 4500, 'x', 'f', "
                          "'written')"), {"d": date(2026, 11, 23)})
        conn.execute(text("INSERT INTO letter_item (letter_id, invoice_number, amount_cents) "
                          "VALUES ('L1', 'F1', 4500)"))
    command.upgrade(config, "head")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT invoice_number, level FROM letter_item")).all() == [("F1", 2)]
    engine.dispose()


def test_the_head_read_from_the_scripts_is_alembic_s_head():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from recouvrement.db.session import MIGRATIONS, head_revision
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert head_revision() == ScriptDirectory.from_config(config).get_current_head()


def test_scripts_that_are_not_one_plain_chain_leave_the_head_to_alembic(tmp_path):
    import shutil

    from recouvrement.db.session import MIGRATIONS, head_revision
    head = head_revision()

    def versions_with(name: str, text: str):
        folder = tmp_path / name
        shutil.copytree(MIGRATIONS / "versions", folder, ignore=shutil.ignore_patterns("__pycache__"))
        (folder / "9999_next.py").write_text(text, encoding="utf-8")
        return folder

    assert head_revision(versions_with("next", f'revision = "next"\ndown_revision = "{head}"\n')) == "next"
    typed = f'revision: str = "next"\ndown_revision: str | None = "{head}"\n'
    assert head_revision(versions_with("typed", typed)) == "next"
    for name, text in [("branch", 'revision = "side"\ndown_revision = "openreads"\n'),
                       ("merge", f'revision = "merged"\ndown_revision = ("{head}", "openreads")\n'),
                       ("computed", f'revision = "n" + "ext"\ndown_revision = "{head}"\n'),
                       ("twice", f'revision = "{head}"\ndown_revision = "{head}"\n'),
                       ("unknown", 'revision = "next"\ndown_revision = "nowhere"\n'),
                       ("none", 'down_revision = None\n')]:
        assert head_revision(versions_with(name, text)) is None, name


def test_a_database_one_migration_behind_is_not_current_and_is_upgraded(db_url):
    from alembic import command
    from sqlalchemy import create_engine

    from recouvrement.db.session import alembic_config, open_engine, schema_is_current
    engine = create_engine(db_url)
    command.upgrade(alembic_config(engine), "head")
    command.downgrade(alembic_config(engine), "-1")
    assert not schema_is_current(engine)
    open_engine(db_url).dispose()
    assert schema_is_current(engine)
    engine.dispose()
