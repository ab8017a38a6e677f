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
