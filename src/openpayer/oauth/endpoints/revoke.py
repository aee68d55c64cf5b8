"""Token revocation (RFC 7009 §2). Revoking a refresh token ends its grant and every token under it.

Unknown tokens and tokens of other clients answer 200 too (RFC 7009 §2.2), so nothing can be probed.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from openpayer.db import write_transaction
from openpayer.oauth.endpoints.common import token_request
from openpayer.oauth.errors import NO_STORE, OAuth2Error, error_json
from openpayer.security.audit import AuditEvent
from openpayer.security.events import EventKind
from openpayer.web.threads import run_blocking


async def revoke(request: Request) -> Response:
    try:
        asked = await token_request(request)
        if isinstance(asked, Response):
            return asked
        server, env, form = asked.server, asked.env, asked.form

        def run() -> None:
            client = asked.authenticate(EventKind.REVOKE)
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

        await run_blocking(run)
    except OAuth2Error as error:
        return error_json(error)
    return Response(status_code=200, headers=NO_STORE)
