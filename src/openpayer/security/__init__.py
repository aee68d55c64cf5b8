"""Security: sign-in throttling, the access audit log, secrets sealed at rest (grown by monitoring)."""
