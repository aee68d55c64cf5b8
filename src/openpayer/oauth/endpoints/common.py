"""What the JSON endpoints share: the environment, the form body, client authentication."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from openpayer.oauth.errors import NO_STORE, InvalidRequestError

if TYPE_CHECKING:
    from openpayer.oauth.service import AuthServer


async def read_form(request: Request) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body (RFC 6749 §3.2), each parameter at most once."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise InvalidRequestError("the body must be application/x-www-form-urlencoded")
    form = await request.form()
    values: dict[str, str] = {}
    for key, value in form.multi_items():
        if not isinstance(value, str):
            raise InvalidRequestError("file uploads are not accepted")
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
