"""Errors of the portal domain, one class per kind of refusal, each carrying a message a page can show.

The pages map them to HTTP statuses (`status`): nothing here is a 500, and no message contains a secret. The
kinds are `openpayer.web.refusals`' (shared with the accounts domain, so one `except PortalError` catches an
account's refusal too); `InvalidTransition` is the portal's own.
"""

from __future__ import annotations

from openpayer.web.refusals import Conflict, Forbidden, Invalid, NotFound
from openpayer.web.refusals import Refusal as PortalError

__all__ = ["Conflict", "Forbidden", "Invalid", "InvalidTransition", "NotFound", "PortalError"]


class InvalidTransition(Conflict):
    """A review action the request's state does not allow (approving a rejected request)."""
