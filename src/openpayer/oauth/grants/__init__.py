"""OAuth 2.0 grants (RFC 6749 §4): one module per grant type."""
