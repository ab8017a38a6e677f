"""the agency's commissions on collected amounts; a letter's registered-post tracking number

Revision ID: agency
Revises: channels
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "agency"
down_revision = "channels"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agency_commission",
        sa.Column("line_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("case_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("booked_on", sa.Date(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("rate_bp", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("line_id"),
    )
    with op.batch_alter_table("agency_commission", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agency_commission_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_agency_commission_booked_on"), ["booked_on"], unique=False)
    with op.batch_alter_table("letter", schema=None) as batch_op:
        batch_op.add_column(sa.Column("registered_tracking", sqlmodel.sql.sqltypes.AutoString(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("letter", schema=None) as batch_op:
        batch_op.drop_column("registered_tracking")
    with op.batch_alter_table("agency_commission", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agency_commission_booked_on"))
        batch_op.drop_index(batch_op.f("ix_agency_commission_case_id"))
    op.drop_table("agency_commission")
