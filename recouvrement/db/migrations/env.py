"""Alembic environment: runs migrations on the engine recouvrement opened (no alembic.ini needed).

The whole upgrade is one transaction under its own lock (SQLite: BEGIN IMMEDIATE, so even CREATE TABLE
is rolled back; PostgreSQL: transactional DDL and an advisory lock): a first use killed half-way leaves
the database as it was, and two first uses at once create the schema once. A clinic's PostgreSQL schema
([database] schema, the connection's search_path) is created here on its first use, and the lock is the
clinic's: two clinics migrate side by side.
"""

from alembic import context
from sqlmodel import SQLModel

import recouvrement.db.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from recouvrement.db.session import MIGRATION_LOCK_KEY, clear_interrupted_first_use, create_clinic_schema, \
    pause_for_tests, take_writer_lock

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    with connection.begin():
        take_writer_lock(connection, key=MIGRATION_LOCK_KEY)
        create_clinic_schema(connection)
        clear_interrupted_first_use(connection, SQLModel.metadata)
        pause_for_tests(connection)
        context.configure(connection=connection, target_metadata=SQLModel.metadata,
                          render_as_batch=connection.dialect.name == "sqlite", compare_type=True,
                          transactional_ddl=True)
        with context.begin_transaction():
            context.run_migrations()
