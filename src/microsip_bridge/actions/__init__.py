"""Acting on calls: caller names, rules (screen-pops, programs, notifications), webhooks."""
