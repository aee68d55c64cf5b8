"""Passwords: one argon2id hasher for every account (members, developers, staff) and the NIST rules.

Hashing: argon2id with RFC 9106's second recommended parameters. `verify` spends the same argon2 work
whether or not the account exists (pass `None`), so the time a sign-in takes does not tell an unknown
username from a wrong password. The hash an unknown account is checked against is made on the first
`verify` of the process, whichever account it is for (not at import: a command that never signs anyone in,
such as `openpayer seed`, does not pay for it).

Rules for passwords people choose (developers, staff): NIST SP 800-63B §3.1.1.2 (rev. 4 §5.1.1.2).
- At least `MIN_LENGTH` (8) characters; `RECOMMENDED_LENGTH` (15) is recommended and the pages say so.
  At most `MAX_LENGTH` (256; NIST asks that at least 64 be allowed). Length is counted in Unicode characters
  after NFKC normalisation (so a pasted password counts as it reads); spaces are allowed.
- No composition rules (no "one digit, one symbol"): NIST says not to impose them.
- Refused when it is a commonly used or breached password: the 30,000 most common passwords of the
  `passwords` frequency list that ships with the `zxcvbn` package (Dropbox's zxcvbn, list from Mark Burnett's
  10 million leaked passwords), compared case-insensitively, offline: no password leaves the server.
- Refused when it is, or is built around, a context word: the service's name or the account's e-mail address.
"""

from __future__ import annotations

import unicodedata
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 8
MIN_PASSWORD = MIN_LENGTH
RECOMMENDED_LENGTH = 15
MAX_LENGTH = 256
CONTEXT_WORDS = ("openpayer",)
_HASHER = PasswordHasher()


@cache
def _dummy_hash() -> str:
    return _HASHER.hash("openpayer-no-such-account")


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ValueError(
            f"the password is too short: {len(password)} characters, and passwords have at least "
            f"{MIN_PASSWORD}"
        )
    return _HASHER.hash(password)


def verify(stored_hash: str | None, password: str) -> bool:
    """True when `password` matches `stored_hash`; None (no such account) costs the same and is False."""
    dummy = (
        _dummy_hash()
    )  # made on the first call for any account, so that no first call is slower than another
    try:
        _HASHER.verify(stored_hash if stored_hash is not None else dummy, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return stored_hash is not None


def needs_rehash(stored_hash: str) -> bool:
    """The hash was made with older parameters: store a new one after a successful sign-in."""
    return _HASHER.check_needs_rehash(stored_hash)


# ---- the rules for chosen passwords (NIST SP 800-63B) ---------------------------------------------------
class PasswordProblem(ValueError):
    """Why a password is refused, in words a sign-up page can show."""


@cache
def common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(p.lower() for p in FREQUENCY_LISTS["passwords"])


def normalise(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def check(password: str, *, email: str = "") -> None:
    """Raise `PasswordProblem` with a message a page can show; return None when the password is acceptable."""
    value = normalise(password)
    if len(value) < MIN_LENGTH:
        raise PasswordProblem(
            f"Use at least {MIN_LENGTH} characters ({RECOMMENDED_LENGTH}+ is better: a few words work)."
        )
    if len(value) > MAX_LENGTH:
        raise PasswordProblem(f"Use at most {MAX_LENGTH} characters.")
    lowered = value.lower()
    if lowered in common_passwords():
        raise PasswordProblem("This password is on a list of common or breached passwords; choose another.")
    local = email.split("@", 1)[0].lower()
    words = [w for w in (*CONTEXT_WORDS, local, email.lower()) if len(w) >= 4]
    if any(lowered == w or lowered.strip("0123456789!.-_ ") == w for w in words):
        raise PasswordProblem("Do not use your e-mail address or the service's name as your password.")
