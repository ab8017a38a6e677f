"""debts written off (admission en non-valeur)

Revision ID: books_write_off
Revises: books
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "books_write_off"
down_revision = "books"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "write_off",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("invoice_number", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("patient_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("payer_type", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("written_off_on", sa.Date(), nullable=False),
        sa.Column("written_off_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("write_off", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_write_off_invoice_number"), ["invoice_number"], unique=False)
        batch_op.create_index(batch_op.f("ix_write_off_patient_id"), ["patient_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("write_off", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_write_off_patient_id"))
        batch_op.drop_index(batch_op.f("ix_write_off_invoice_number"))
    op.drop_table("write_off")
