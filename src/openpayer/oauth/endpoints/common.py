"""What the JSON endpoints share: the environment, the form body, client authentication."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from openpayer.oauth.errors import NO_STORE, InvalidRequestError, OAuth2Error
from openpayer.security.events import EventKind, Outcome

MAX_FORM_FIELDS = 100  # a token request has at most a handful

if TYPE_CHECKING:
    from openpayer.oauth.clients import Client
    from openpayer.oauth.service import AuthServer, Urls


async def read_form(request: Request) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body (RFC 6749 §3.2), each parameter at most once.

    Parsed with `urllib.parse` rather than Starlette's form parser (python-multipart, a streaming parser for
    uploads): the same decoding (names and values percent-decoded as UTF-8), at a fraction of the cost on
    the token endpoint's hot path."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise InvalidRequestError("the body must be application/x-www-form-urlencoded")
    body = await request.body()
    try:
        pairs = parse_qsl(body.decode("latin-1"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except ValueError:
        raise InvalidRequestError(f"at most {MAX_FORM_FIELDS} parameters are accepted") from None
    values: dict[str, str] = {}
    for key, value in pairs:
        if key in values:
            raise InvalidRequestError(f"{key} must not be repeated")
        values[key] = value
    return values


def server_for(request: Request) -> tuple[AuthServer, str]:
    """The authorization server (put on `app.state.auth` by the composition root) and the environment."""
    server: AuthServer = request.app.state.auth
    env = request.path_params["env"]
    if env not in server.settings.environments:
        raise InvalidRequestError("there is no such environment")
    return server, env


def client_address(request: Request) -> str:
    """The client's address as the proxy layer (`web/proxies.py`) resolved it."""
    return request.client.host if request.client else "unknown"


def claimed_client_id(form: Mapping[str, str], headers: Mapping[str, str]) -> str | None:
    """The client id a failed client authentication claimed (the HTTP Basic user or `client_id`; a client
    assertion is not parsed, as it was not verified), for its security event."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            user = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            return None
        return unquote(user)[:64] or None
    claimed = form.get("client_id")
    return claimed[:64] if claimed else None


def throttled_json(retry_after: int) -> Response:
    """429 with `Retry-After` and an RFC 6749 §5.2-shaped body (`temporarily_unavailable`, §4.1.2.1)."""
    body = {
        "error": "temporarily_unavailable",
        "error_description": f"too many failed client authentications from this address; retry after "
        f"{retry_after} seconds",
    }
    return JSONResponse(body, status_code=429, headers={**NO_STORE, "Retry-After": str(retry_after)})


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """A request about a token (introspection, revocation) by a client of the environment, read up to
    the client's authentication: the environment, its form (with a `token`) and the server's URLs."""

    server: AuthServer
    env: str
    form: dict[str, str]
    urls: Urls
    address: str
    headers: Mapping[str, str]

    def authenticate(self, kind: EventKind) -> Client:
        """The authenticated client; either way a `kind` security event, and a failure counts towards
        the address's throttle, as at the token endpoint."""
        security = self.server.security
        try:
            client = self.server.clients.authenticate(
                self.env, self.form, self.headers, self.urls.auth("token")
            )
        except OAuth2Error:
            security.throttle.client_failed(self.address)
            claimed = claimed_client_id(self.form, self.headers)
            security.record(
                kind, Outcome.FAILURE, env=self.env, address=self.address, client_id=claimed, status=401
            )
            raise
        security.record(kind, Outcome.SUCCESS, env=self.env, address=self.address, client_id=client.client_id)
        return client


async def token_request(request: Request) -> TokenRequest | Response:
    """The shared start of introspection and revocation: the environment, the address's throttle (client
    secret guessing here is throttled as at the token endpoint: a 429 is returned), the form and its
    `token`. Raises `OAuth2Error` for the caller's error body."""
    server, env = server_for(request)
    address = client_address(request)
    decision = server.security.throttle.check_client(address)
    if not decision.allowed:
        server.security.mitigated("token", decision, env=env, address=address)
        return throttled_json(decision.retry_after)
    form = await read_form(request)
    if not form.get("token"):
        raise InvalidRequestError("token is required")
    return TokenRequest(server, env, form, server.urls(request, env), address, request.headers)
