"""Password hashing: argon2id with RFC 9106's second recommended parameters.

`verify` spends the same argon2 work whether or not the account exists (pass `None`), so the time a
sign-in takes does not tell an unknown username from a wrong password.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD = 8
_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("openpayer-no-such-account")


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(
            f"the password is too short: {len(password)} characters, and passwords have at least "
            f"{MIN_PASSWORD}"
        )
    return _HASHER.hash(password)


def verify(stored_hash: str | None, password: str) -> bool:
    """True when `password` matches `stored_hash`; None (no such account) costs the same and is False."""
    try:
        _HASHER.verify(stored_hash if stored_hash is not None else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return stored_hash is not None


def needs_rehash(stored_hash: str) -> bool:
    """The hash was made with older parameters: store a new one after a successful sign-in."""
    return _HASHER.check_needs_rehash(stored_hash)
