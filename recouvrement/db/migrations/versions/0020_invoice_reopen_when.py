"""invoice: the reopening trigger's condition in its WHEN (PostgreSQL)

The BEFORE UPDATE trigger that reopens an invoice whose amounts or day change (db.open_items) called its plpgsql
function for every updated row, which then tested the change: settle's update of settled_on (760k invoices on the
first reconcile at 1M) paid a function call per row for nothing: 0.84-0.96 s of the update's 4.4-5.0 s. The
condition is now the trigger's WHEN, evaluated by the executor; the function runs only when it holds and reopens the
invoice (update 4.4-5.0 -> 3.7-4.0 s). Same invoices reopened. SQLite's trigger already had its WHEN: nothing changes there.

Revision ID: invoice_reopen_when
Revises: invoice_room
"""
from alembic import op


revision = "invoice_reopen_when"
down_revision = "invoice_room"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        from recouvrement.db.open_items import create_invoice_update_trigger
        op.execute("DROP TRIGGER IF EXISTS reopen_invoice_update ON invoice")
        create_invoice_update_trigger(op.get_bind())


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        from recouvrement.db.open_items import _INVOICE_CHANGED
        op.execute("DROP TRIGGER IF EXISTS reopen_invoice_update ON invoice")
        op.execute("CREATE OR REPLACE FUNCTION reopen_invoice_update() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                   f"IF {_INVOICE_CHANGED} THEN NEW.settled_on := NULL; END IF; RETURN NEW; END $$")
        op.execute("CREATE TRIGGER reopen_invoice_update BEFORE UPDATE ON invoice FOR EACH ROW "
                   "EXECUTE FUNCTION reopen_invoice_update()")
