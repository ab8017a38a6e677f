"""the ladder's phone step: the call list, its invoices, phone numbers found wrong

Revision ID: ladder_calls
Revises: agency
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "ladder_calls"
down_revision = "agency"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("call_task",
    sa.Column("call_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("patient_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("level", sa.Integer(), nullable=False),
    sa.Column("listed_on", sa.Date(), nullable=False),
    sa.Column("amount_cents", sa.BigInteger(), nullable=False),
    sa.Column("script", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("closed_on", sa.Date(), nullable=True),
    sa.PrimaryKeyConstraint("call_id")
    )
    op.create_index(op.f("ix_call_task_patient_id"), "call_task", ["patient_id"], unique=False)
    op.create_index(op.f("ix_call_task_listed_on"), "call_task", ["listed_on"], unique=False)
    op.create_index(op.f("ix_call_task_status"), "call_task", ["status"], unique=False)
    op.create_table("call_task_item",
    sa.Column("call_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("invoice_number", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("amount_cents", sa.BigInteger(), nullable=False),
    sa.Column("level", sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint("call_id", "invoice_number")
    )
    op.create_table("unusable_phone",
    sa.Column("patient_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("phone", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("marked_on", sa.Date(), nullable=False),
    sa.PrimaryKeyConstraint("patient_id", "phone")
    )


def downgrade() -> None:
    op.drop_table("unusable_phone")
    op.drop_table("call_task_item")
    op.drop_index(op.f("ix_call_task_status"), table_name="call_task")
    op.drop_index(op.f("ix_call_task_listed_on"), table_name="call_task")
    op.drop_index(op.f("ix_call_task_patient_id"), table_name="call_task")
    op.drop_table("call_task")
