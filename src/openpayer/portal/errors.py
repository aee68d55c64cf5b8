"""Errors of the portal domain, one class per kind of refusal, each carrying a message a page can show.

The pages map them to HTTP statuses (`status`): nothing here is a 500, and no message contains a secret.
"""

from __future__ import annotations


class PortalError(Exception):
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Invalid(PortalError):
    """Input that breaks a rule (a redirect URI over http, a logo too large); `field` names the input."""

    status = 422

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFound(PortalError):
    status = 404


class Forbidden(PortalError):
    """The person may not do this: not in the organization, or a staff role without the permission."""

    status = 403


class Conflict(PortalError):
    """The action clashes with the current state (a second open request, credentials already revealed)."""

    status = 409


class InvalidTransition(Conflict):
    """A review action the request's state does not allow (approving a rejected request)."""
