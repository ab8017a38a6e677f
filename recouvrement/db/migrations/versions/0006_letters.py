"""a letter carries its own RF reference, for all the invoices it lists

Revision ID: letters
Revises: audit
Letters made earlier keep NULL: they printed one reference per invoice, which the reconciliation still reads.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "letters"
down_revision = "audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("letter", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rf_reference", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.create_index(batch_op.f("ix_letter_rf_reference"), ["rf_reference"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("letter", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_letter_rf_reference"))
        batch_op.drop_column("rf_reference")
