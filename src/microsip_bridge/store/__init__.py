"""The bridge's database: the append-only event log and the calls table."""

# Here, not in engine.py: the stdlib reader (reader.py) needs them without importing SQLAlchemy.
DB_NAME = "bridge.db"
SQLITE_BUSY_TIMEOUT_MS = 5000
