"""The database adapter: models, engine and session, bulk loading, migrations."""
