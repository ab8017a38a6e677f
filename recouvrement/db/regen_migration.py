"""Developer tool: (re)write the initial migration from the models while nothing has shipped.

    python -m recouvrement.db.regen_migration
Once a release has shipped, add new revisions with alembic's autogenerate instead.
"""

import tempfile

from alembic import command
from sqlalchemy import create_engine

from recouvrement.db.session import MIGRATIONS, alembic_config

if __name__ == "__main__":
    for old in (MIGRATIONS / "versions").glob("0001_*.py"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{tmp}/empty.db")
        command.revision(alembic_config(engine), message="initial schema", autogenerate=True,
                         rev_id="0001", )
    print(sorted(p.name for p in (MIGRATIONS / "versions").glob("*.py")))
