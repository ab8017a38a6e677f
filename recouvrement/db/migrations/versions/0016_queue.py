"""the queue entries' reach and what changed since the last reconcile (a night retries only what it can reach)

Revision ID: queue
Revises: openreads
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "queue"
down_revision = "openreads"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("queue_change",
    sa.Column("key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.PrimaryKeyConstraint("key")
    )
    op.create_table("queue_reach",
    sa.Column("key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("payment_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.PrimaryKeyConstraint("key", "payment_id")
    )
    op.create_index(op.f("ix_queue_reach_payment_id"), "queue_reach", ["payment_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_queue_reach_payment_id"), table_name="queue_reach")
    op.drop_table("queue_reach")
    op.drop_table("queue_change")
