"""The token endpoint (RFC 6749 §3.2): authenticates the client, then runs the grant it names.

Responses carry `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1); errors are RFC 6749 §5.2
JSON bodies, `invalid_client` with 401.

Clients are authenticated against this process's cache, and each grant confirms in its own (single)
transaction that the stored client has not changed (`ClientStore.confirm`, or the same condition folded into
the grant's first query); when it has, the request is authenticated again from the database.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from openpayer.oauth.clients import StaleClientError
from openpayer.oauth.endpoints.common import read_form, server_for
from openpayer.oauth.errors import (
    NO_STORE,
    OAuth2Error,
    UnsupportedGrantTypeError,
    client_error,
    error_json,
)
from openpayer.oauth.grants.authorization_code import exchange
from openpayer.oauth.grants.client_credentials import client_credentials
from openpayer.oauth.grants.refresh_token import refresh
from openpayer.observability.context import annotate

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")


async def token(request: Request) -> Response:
    try:
        server, env = server_for(request)
        form = await read_form(request)
        urls = server.urls(request, env)
        grant_type = form.get("grant_type")
        if grant_type not in GRANT_TYPES:
            raise UnsupportedGrantTypeError(f"grant_type must be one of {', '.join(GRANT_TYPES)}")

        def run() -> dict[str, object]:
            for cached in (True, False):
                authenticated = server.clients.check_credentials(
                    env, form, request.headers, urls.auth("token"), cached=cached
                )
                annotate(client_id=authenticated.client.client_id)  # on this request's log lines
                try:
                    if grant_type == "authorization_code":
                        return exchange(server, urls, authenticated, form)
                    if grant_type == "refresh_token":
                        return refresh(server, urls, authenticated, form)
                    return client_credentials(server, urls, authenticated, form, server.resource_types)
                except StaleClientError:
                    continue  # changed since this process cached it: once more, from the database
                except OAuth2Error:
                    if server.clients.still_current(authenticated):
                        raise
                    continue  # the grant refused a cached client that has since changed: once more
            raise client_error("unknown or inactive client")

        body = await run_in_threadpool(run)
    except OAuth2Error as error:
        return error_json(error)
    return JSONResponse(body, headers=NO_STORE)
