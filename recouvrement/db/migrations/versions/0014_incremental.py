"""the patients' name index (the name + amount rule's reads), filled from the patients stored

Revision ID: incremental
Revises: ladder_calls
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "incremental"
down_revision = "ladder_calls"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("patient_name_key",
    sa.Column("last_key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("first_key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column("patient_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.PrimaryKeyConstraint("last_key", "first_key", "patient_id")
    )
    op.create_index(op.f("ix_patient_name_key_patient_id"), "patient_name_key", ["patient_id"], unique=False)
    from recouvrement.db.name_index import refresh_all
    refresh_all(op.get_bind())


def downgrade() -> None:
    op.drop_index(op.f("ix_patient_name_key_patient_id"), table_name="patient_name_key")
    op.drop_table("patient_name_key")
