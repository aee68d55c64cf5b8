"""The shipped breached-password list: the 30,000 most common passwords of the `passwords` frequency list
that ships with the `zxcvbn` package (Dropbox's zxcvbn; Mark Burnett's 10 million leaked passwords), the
same list the portal's password rules refuse at sign-up. Offline: no password leaves the server.

Sign-ins that use one are a credential-stuffing signal (docs/security.md); compared case-insensitively after
NFKC normalisation.
"""

from __future__ import annotations

import unicodedata
from functools import cache


@cache
def breached_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(p.lower() for p in FREQUENCY_LISTS["passwords"])


def is_breached(password: str) -> bool:
    return bool(password) and unicodedata.normalize("NFKC", password).lower() in breached_passwords()
