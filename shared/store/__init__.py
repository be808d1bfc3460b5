"""Where state lives: the database engine and sessions, the tables, the blob store, migrations."""
