"""Errors the FHIR engine raises; the HTTP layer renders each as an OperationOutcome with its status.

One class per kind of failure (FHIR R4 §3.1.0 "RESTful API", status codes per interaction), so that
services never pick HTTP codes by hand and routes never build OperationOutcomes by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from openpayer.fhir.outcome import Issue, operation_outcome


class FHIRError(Exception):
    status: int = 400
    code: str = "invalid"

    def __init__(self, diagnostics: str = "", issues: Sequence[Issue] | None = None) -> None:
        super().__init__(diagnostics)
        self.diagnostics = diagnostics
        self.issues: list[Issue] = (
            list(issues) if issues else [Issue("error", self.code, diagnostics or self.default_message())]
        )

    def default_message(self) -> str:
        return type(self).__name__

    def outcome(self) -> dict[str, Any]:
        return operation_outcome(self.issues)


class BadRequest(FHIRError):
    status = 400
    code = "invalid"


class InvalidResource(FHIRError):
    """The body does not conform to the definitions (400 per FHIR; 422 for profile/business rules)."""

    status = 400
    code = "invalid"


class Unprocessable(FHIRError):
    status = 422
    code = "processing"


class Unauthorized(FHIRError):
    status = 401
    code = "login"


class Forbidden(FHIRError):
    status = 403
    code = "forbidden"


class NotFound(FHIRError):
    status = 404
    code = "not-found"


class MethodNotAllowed(FHIRError):
    """`allow`: the methods the address does answer, for the response's `Allow` header (RFC 9110 §15.5.6)."""

    status = 405
    code = "not-supported"

    def __init__(
        self, diagnostics: str = "", issues: Sequence[Issue] | None = None, *, allow: Sequence[str] = ()
    ) -> None:
        super().__init__(diagnostics, issues)
        self.allow = tuple(allow)


class NotAcceptable(FHIRError):
    status = 406
    code = "not-supported"


class Conflict(FHIRError):
    status = 409
    code = "conflict"


class Gone(FHIRError):
    """Read of a deleted resource (FHIR R4 §3.1.0.4: 410 Gone)."""

    status = 410
    code = "deleted"


class PreconditionFailed(FHIRError):
    status = 412
    code = "conflict"


class PayloadTooLarge(FHIRError):
    status = 413
    code = "too-costly"


class UnsupportedMediaType(FHIRError):
    status = 415
    code = "not-supported"


class MultipleMatches(PreconditionFailed):
    """A conditional interaction matched more than one resource (412 per FHIR R4 §3.1.0.8)."""

    code = "multiple-matches"
