"""Token revocation (RFC 7009 §2). Revoking a refresh token ends its grant and every token under it.

Unknown tokens and tokens of other clients answer 200 too (RFC 7009 §2.2), so nothing can be probed.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from openpayer.db import write_transaction
from openpayer.oauth.endpoints.common import (
    claimed_client_id,
    client_address,
    read_form,
    server_for,
    throttled_json,
)
from openpayer.oauth.errors import NO_STORE, InvalidRequestError, OAuth2Error, error_json
from openpayer.security.audit import AuditEvent
from openpayer.security.events import EventKind, Outcome


async def revoke(request: Request) -> Response:
    try:
        server, env = server_for(request)
        decision = server.security.throttle.check_client(client_address(request))
        if not decision.allowed:  # client-secret guessing here is throttled as at the token endpoint
            server.security.mitigated("token", decision, env=env, address=client_address(request))
            return throttled_json(decision.retry_after)
        form = await read_form(request)
        urls = server.urls(request, env)
        if not form.get("token"):
            raise InvalidRequestError("token is required")

        def run() -> None:
            try:
                client = server.clients.authenticate(env, form, request.headers, urls.auth("token"))
            except OAuth2Error:
                server.security.throttle.client_failed(client_address(request))
                server.security.record(
                    EventKind.REVOKE,
                    Outcome.FAILURE,
                    env=env,
                    address=client_address(request),
                    client_id=claimed_client_id(form, request.headers),
                    status=401,
                )
                raise
            server.security.record(
                EventKind.REVOKE,
                Outcome.SUCCESS,
                env=env,
                address=client_address(request),
                client_id=client.client_id,
            )
            with write_transaction(server.engine) as conn:
                info = server.tokens.find(conn, env, form["token"])
                if info is None or info.client_id != client.client_id:
                    return
                if info.kind == "refresh" and info.grant_id is not None:
                    server.grants.revoke_in(conn, info.grant_id)
                else:
                    server.tokens.revoke_ids(conn, [info.id])
            server.audit.record(
                env,
                AuditEvent.TOKEN_REVOKED,
                200,
                client_id=client.client_id,
                member_id=info.member_id,
                patient_id=info.patient_id,
            )

        await run_in_threadpool(run)
    except OAuth2Error as error:
        return error_json(error)
    return Response(status_code=200, headers=NO_STORE)
