"""Refusals a page can show: one class per kind, each with the HTTP status a page answers with.

They live here, below the domains, so that the accounts domain and the portal refuse in the same words and a
page catches one base class (`Refusal`). Nothing here is a 500, and no message carries a secret.
"""

from __future__ import annotations

import re


class Refusal(Exception):
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Invalid(Refusal):
    """Input that breaks a rule (a redirect URI over http, a weak password); `field` names the input."""

    status = 422

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFound(Refusal):
    status = 404


class Forbidden(Refusal):
    """The person may not do this: not in the organization, or a staff role without the permission."""

    status = 403


class Conflict(Refusal):
    """The action clashes with the current state (an address already registered, a second open request)."""

    status = 409


_EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+$")


def email(value: str, field: str) -> str:
    """An e-mail address as stored (domain lower-cased), or `Invalid` naming `field`."""
    address = value.strip()
    if len(address) > 254 or not _EMAIL.match(address):
        raise Invalid(f"{address[:80]!r} is not an e-mail address", field)
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}"
