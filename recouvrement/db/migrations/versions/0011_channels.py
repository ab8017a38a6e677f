"""SMS channel: patients' SMS and e-mail consent, the SMS outbox

Revision ID: channels
Revises: web_letters
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "channels"
down_revision = "web_letters"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL: consent never stated, which is no consent (the invoices CSV records it from now on).
    with op.batch_alter_table("patient") as batch_op:
        batch_op.add_column(sa.Column("sms_consent", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("email_consent", sa.Boolean(), nullable=True))
    op.create_table("sms_message",
    sa.Column("letter_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("patient_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("as_of", sa.Date(), nullable=False),
    sa.Column("phone", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("text", sa.Text(), nullable=False),
    sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("claimed_by", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column("claimed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column("sent_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column("provider_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.PrimaryKeyConstraint("letter_id")
    )
    op.create_index(op.f("ix_sms_message_patient_id"), "sms_message", ["patient_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_sms_message_patient_id"), table_name="sms_message")
    op.drop_table("sms_message")
    with op.batch_alter_table("patient") as batch_op:
        batch_op.drop_column("email_consent")
        batch_op.drop_column("sms_consent")
