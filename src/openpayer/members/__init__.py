"""Member accounts, sign-in, second factor and consent grants."""
