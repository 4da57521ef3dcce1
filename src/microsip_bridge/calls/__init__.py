"""The call services: state model, reconciliation, spool ingestion."""
