"""reopening triggers: a share moved, its move deleted, a write-off recorded or removed, one statement trigger (PostgreSQL)

These triggers reopen the invoices of every row their insert or delete writes (no condition): PostgreSQL called a
plpgsql function and ran an UPDATE for each row. They are now statement triggers reading the statement's transition
table, one UPDATE of the invoices it names: the first reconcile at 1M copies 46,140 share transfers, whose trigger
cost 0.46-0.63 s of the server's CPU per row, 0.25-0.27 s per statement (db.open_items).
Same invoices reopened. SQLite keeps its row triggers.

Revision ID: reopen_by_statement
Revises: invoice_reopen_when
"""
from alembic import op


revision = "reopen_by_statement"
down_revision = "invoice_reopen_when"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        from recouvrement.db.open_items import reopen_by_statement
        reopen_by_statement(op.get_bind())


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        from recouvrement.db.open_items import reopen_by_statement
        reopen_by_statement(op.get_bind(), by_statement=False)
