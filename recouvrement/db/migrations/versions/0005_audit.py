"""audit events record who acted

Revision ID: audit
Revises: web
Events already written keep actor NULL: they were chained with a plain SHA-256 and are sealed by the
audit key the first time an event is appended (see recouvrement/audit.py), never rewritten.
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "audit"
down_revision = "web"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_column("actor")
