"""invoice: room on each page for a second version of its rows (PostgreSQL fillfactor 50)

The first reconcile after loading a history settles most invoices at once: every settled row gets a new version
(its settled_on). On full pages that version went to another page and into each of the table's indexes, so the
run set the four indexes aside and built them again (db.open_items). With half of each page free, the new version
stays on its page (a heap-only update): no index but settled_on's changes, and only that one is set aside. At 1M
(760k invoices settled): 8.0 s of the server's CPU (update 2.1, four builds 5.8) -> 2.8 s (update 2.1, one build
0.5). The table takes twice the pages. Applies to the rows stored from now on; SQLite has no such setting.

Revision ID: invoice_room
Revises: unreconciled_gone
"""
from alembic import op


revision = "invoice_room"
down_revision = "unreconciled_gone"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TABLE invoice SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TABLE invoice RESET (fillfactor)")
