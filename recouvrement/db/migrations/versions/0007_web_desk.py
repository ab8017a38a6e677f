"""promises to pay and hold review dates (the web app's desk actions)

Revision ID: web_desk
Revises: letters
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "web_desk"
down_revision = "letters"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("promise",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("patient_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("made_on", sa.Date(), nullable=False),
    sa.Column("pay_by", sa.Date(), nullable=False),
    sa.Column("amount_cents", sa.BigInteger(), nullable=True),
    sa.Column("cancelled_on", sa.Date(), nullable=True),
    sa.PrimaryKeyConstraint("id")
    )
    with op.batch_alter_table("promise", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_promise_patient_id"), ["patient_id"], unique=False)
    op.create_table("hold_review",
    sa.Column("hold_id", sa.Integer(), nullable=False),
    sa.Column("review_on", sa.Date(), nullable=False),
    sa.PrimaryKeyConstraint("hold_id")
    )


def downgrade() -> None:
    op.drop_table("hold_review")
    with op.batch_alter_table("promise", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_promise_patient_id"))
    op.drop_table("promise")
