"""Webhooks: Standard Webhooks messages, signed, delivered from a transactional outbox."""
