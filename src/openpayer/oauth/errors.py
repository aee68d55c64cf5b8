"""OAuth errors (RFC 6749 §5.2, §4.1.2.1; RFC 6750 §3.1) on Authlib's error classes, rendered as JSON.

Token-endpoint errors answer `{"error": ..., "error_description": ...}` with `Cache-Control: no-store`;
`invalid_client` answers 401 with a `WWW-Authenticate` challenge (RFC 6749 §5.2).
"""

from __future__ import annotations

from authlib.oauth2.rfc6749.errors import (
    AccessDeniedError,
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    UnauthorizedClientError,
    UnsupportedGrantTypeError,
    UnsupportedResponseTypeError,
)
from starlette.responses import JSONResponse

__all__ = [
    "NO_STORE",
    "AccessDeniedError",
    "InvalidClientError",
    "InvalidGrantError",
    "InvalidRequestError",
    "InvalidScopeError",
    "InvalidTokenError",
    "OAuth2Error",
    "UnauthorizedClientError",
    "UnsupportedGrantTypeError",
    "UnsupportedResponseTypeError",
    "client_error",
    "error_json",
]

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class InvalidTokenError(OAuth2Error):
    """RFC 6750 §3.1: the access token is expired, revoked, malformed or from another environment."""

    error = "invalid_token"
    status_code = 401


def client_error(description: str) -> InvalidClientError:
    """`invalid_client` always as 401 (RFC 6749 §5.2), whichever authentication method failed."""
    return InvalidClientError(description=description, status_code=401)


def error_json(error: OAuth2Error) -> JSONResponse:
    body = {"error": error.error}
    if error.description:
        body["error_description"] = error.description
    status = error.status_code or 400
    headers = dict(NO_STORE)
    if error.error == "invalid_client" and status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="openpayer"'
    return JSONResponse(body, status_code=status, headers=headers)
