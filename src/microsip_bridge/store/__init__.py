"""The bridge's database: the append-only event log and the calls table."""
