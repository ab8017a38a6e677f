"""letters approved in the web app

Revision ID: web_letters
Revises: books_write_off
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "web_letters"
down_revision = "books_write_off"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("letter_approval",
    sa.Column("letter_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("approved_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("approved_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint("letter_id")
    )


def downgrade() -> None:
    op.drop_table("letter_approval")
