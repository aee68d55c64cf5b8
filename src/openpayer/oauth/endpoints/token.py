"""The token endpoint (RFC 6749 §3.2): authenticates the client, then runs the grant it names.

Responses carry `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1); errors are RFC 6749 §5.2
JSON bodies, `invalid_client` with 401.

Every client authentication is a security event (success or failure, the client id claimed, the address).
Failures are throttled per address with growing delays (`openpayer.security.throttle`): a throttled request
answers 429 with `Retry-After` and an RFC 6749 §5.2-style body (`temporarily_unavailable`), without checking
its credentials.

Clients are authenticated against this process's cache, and each grant confirms in its own (single)
transaction that the stored client has not changed (`ClientStore.confirm`, or the same condition folded into
the grant's first query, or on PostgreSQL into its one writing statement: `ClientStore.jti_guard`, which
commits with the statements of the grants waiting beside it); when it has, the request is authenticated
again from the database.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from openpayer.db import runs_cooperatively
from openpayer.oauth.clients import StaleClientError
from openpayer.oauth.endpoints.common import (
    claimed_client_id,
    client_address,
    read_form,
    server_for,
    throttled_json,
)
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
from openpayer.security.events import EventKind, Outcome, request_address
from openpayer.web.threads import run_blocking, run_cooperative

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")


async def token(request: Request) -> Response:
    address = client_address(request)
    request_address.set(address)  # for events recorded inside the grants (code and refresh-token reuse)
    try:
        server, env = server_for(request)
    except OAuth2Error as error:
        return error_json(error)
    security = server.security
    decision = security.throttle.check_client(address)
    if not decision.allowed:
        security.mitigated("token", decision, env=env, address=address)
        return throttled_json(decision.retry_after)
    form: dict[str, str] = {}
    authenticated: list[str] = []  # the client id, once the client is authenticated
    try:
        form = await read_form(request)
        urls = server.urls(request, env)
        grant_type = form.get("grant_type")
        if grant_type not in GRANT_TYPES:
            raise UnsupportedGrantTypeError(f"grant_type must be one of {', '.join(GRANT_TYPES)}")

        def run() -> dict[str, object]:
            for cached in (True, False):
                checked = server.clients.check_credentials(
                    env, form, request.headers, urls.auth("token"), cached=cached
                )
                authenticated.append(checked.client.client_id)
                annotate(client_id=checked.client.client_id)  # on this request's log lines
                try:
                    if grant_type == "authorization_code":
                        return exchange(server, urls, checked, form)
                    if grant_type == "refresh_token":
                        return refresh(server, urls, checked, form)
                    return client_credentials(server, urls, checked, form, server.resource_types)
                except StaleClientError:
                    continue  # changed since this process cached it: once more, from the database
                except OAuth2Error:
                    if server.clients.still_current(checked):
                        raise
                    continue  # the grant refused a cached client that has since changed: once more
            raise client_error("unknown or inactive client")

        # PostgreSQL: on the loop, its waits cooperative (a fifth less CPU than a thread's hand-off).
        runner = run_cooperative if runs_cooperatively(server.engine) else run_blocking
        body = await runner(run)
    except OAuth2Error as error:
        if error.error == "invalid_client" and not authenticated:
            security.throttle.client_failed(address)
            security.record(
                EventKind.CLIENT_AUTH,
                Outcome.FAILURE,
                env=env,
                address=address,
                client_id=claimed_client_id(form, request.headers),
                status=401,
            )
        elif authenticated:
            security.record(
                EventKind.CLIENT_AUTH, Outcome.SUCCESS, env=env, address=address, client_id=authenticated[-1]
            )
        return error_json(error)
    security.record(
        EventKind.CLIENT_AUTH, Outcome.SUCCESS, env=env, address=address, client_id=authenticated[-1]
    )
    return JSONResponse(body, headers=NO_STORE)
