"""Identity: password hashing, TOTP second factors, throttled sign-in and sign-in sessions (members now;
developers and staff next)."""
