"""Versioned resource storage and the search index tables."""
