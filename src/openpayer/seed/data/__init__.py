"""Vendored public code tables and synthetic name pools for the seed generator (see PROVENANCE.md)."""
