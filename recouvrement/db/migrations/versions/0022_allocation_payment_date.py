"""allocation: the day of its payment (payment_date), kept beside the share and amount in the covering index

db.open_items.settle finds each invoice's settled day as the latest day of its payments: it joined every
allocation to its payment for that day, a lookup in the payment table's key per allocation. With the day on the
allocation (and in ix_allocation_invoice_covering), SQLite sums and takes it from the index alone: at 1M (2.1M
allocations) settle's aggregation 4.0-4.35 -> 1.9-2.0 s CPU. Every write of an allocation fills it (the reconcile,
a match by hand, an agency's collection); a payment whose day changes carries it to its allocations (the payment's
reopening trigger, db.open_items). Filled here from the payments for the allocations already stored; the open
invoices then settled here, no longer in 0015, whose settle this column did not exist for yet.

Revision ID: allocation_payment_date
Revises: reopen_by_statement
"""
import sqlalchemy as sa
from alembic import op


revision = "allocation_payment_date"
down_revision = "reopen_by_statement"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from recouvrement.db.open_items import create_payment_update_trigger, settle
    op.add_column("allocation", sa.Column("payment_date", sa.Date(), nullable=True))
    op.execute("UPDATE allocation SET payment_date = (SELECT p.payment_date FROM payment p "
               "WHERE p.payment_id = allocation.payment_id)")
    op.drop_index("ix_allocation_invoice_covering", table_name="allocation")
    op.create_index("ix_allocation_invoice_covering", "allocation",
                    ["invoice_number", "payer_type", "amount_cents", "payment_id", "payment_date"], unique=False)
    postgres = op.get_context().dialect.name == "postgresql"
    op.execute("DROP TRIGGER IF EXISTS reopen_payment_update" + (" ON payment" if postgres else ""))
    create_payment_update_trigger(op.get_bind(), carries_day=True)
    settle(op.get_bind())    # every open invoice found settled (a database from before 0015: all of them)


def downgrade() -> None:
    from recouvrement.db.open_items import create_payment_update_trigger
    postgres = op.get_context().dialect.name == "postgresql"
    op.execute("DROP TRIGGER IF EXISTS reopen_payment_update" + (" ON payment" if postgres else ""))
    create_payment_update_trigger(op.get_bind(), carries_day=False)
    op.drop_index("ix_allocation_invoice_covering", table_name="allocation")
    op.create_index("ix_allocation_invoice_covering", "allocation",
                    ["invoice_number", "payer_type", "amount_cents", "payment_id"], unique=False)
    op.drop_column("allocation", "payment_date")    # SQLite 3.35+ drops it in place: the triggers stay
