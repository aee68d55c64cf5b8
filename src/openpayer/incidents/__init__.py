"""Incident response: at-risk subscriptions, CIRT incidents, breach alerts (docs/security.md)."""
