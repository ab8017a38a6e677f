"""payment: ix_payment_unreconciled dropped

Since the runs' mark (db.reconcile.unreconciled: `reconciled = 0 AND id > mark`) a run no longer sets the flag on
the rows it processed: every payment ever imported stayed in this partial index, which each import updated row by
row and which selected nothing the primary key's range (id > mark) does not. Every reader of the predicate (the
new payments' reads, anything_new, unreconciled_count, the explicit pass) is planned on the primary key's range
without it, on SQLite and PostgreSQL alike.

Revision ID: unreconciled_gone
Revises: covering
"""
import sqlalchemy as sa
from alembic import op


revision = "unreconciled_gone"
down_revision = "covering"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_payment_unreconciled", table_name="payment")


def downgrade() -> None:
    op.create_index("ix_payment_unreconciled", "payment", ["id"], unique=False,
                    sqlite_where=sa.text("reconciled = 0"), postgresql_where=sa.text("reconciled = FALSE"))
