"""invoice.settled_on (what is open, db.open_items): the column, its index, the triggers that reopen (filled: 0022)

Revision ID: openreads
Revises: incremental
"""
from alembic import op
import sqlalchemy as sa


revision = "openreads"
down_revision = "incremental"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("invoice", sa.Column("settled_on", sa.Date(), nullable=True))
    op.create_index(op.f("ix_invoice_settled_on"), "invoice", ["settled_on"], unique=False)
    from recouvrement.db.open_items import create_triggers
    create_triggers(op.get_bind(), carries_day=False)
    # Filled by 0022 (allocation_payment_date): settle reads the allocations' payment_date, which it adds.


def downgrade() -> None:
    from recouvrement.db.open_items import drop_triggers
    drop_triggers(op.get_bind())
    op.drop_index(op.f("ix_invoice_settled_on"), table_name="invoice")
    with op.batch_alter_table("invoice") as batch:
        batch.drop_column("settled_on")
