"""letter_item.level: each invoice's own ladder level in a letter

Revision ID: ladder
Revises: concurrency
Create Date: 2026-11-30

The ladder climbs per invoice: a letter lists some invoices formally at its level and others apart,
"also due", at their own lower level. Rows written before this revision get their letter's level,
which is what those letters said.
"""
from alembic import op
import sqlalchemy as sa


revision = 'ladder'
down_revision = 'concurrency'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('letter_item', schema=None) as batch_op:
        batch_op.add_column(sa.Column('level', sa.Integer(), nullable=True))
    op.execute("UPDATE letter_item SET level = (SELECT letter.level FROM letter "
               "WHERE letter.letter_id = letter_item.letter_id)")
    op.execute("UPDATE letter_item SET level = 0 WHERE level IS NULL")
    with op.batch_alter_table('letter_item', schema=None) as batch_op:
        batch_op.alter_column('level', existing_type=sa.Integer(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('letter_item', schema=None) as batch_op:
        batch_op.drop_column('level')
