"""Token introspection (RFC 7662 §2). Callers authenticate as clients of the environment.

A client may introspect only the tokens issued to it: any other token, however valid, answers
`{"active": false}`, so that one app cannot learn another app's patient, member or scopes from a token it
came by. (No resource server outside this one needs to introspect; the FHIR API checks tokens itself.)
"""

from __future__ import annotations

import hmac
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from openpayer.oauth.endpoints.common import (
    claimed_client_id,
    client_address,
    read_form,
    server_for,
    throttled_json,
)
from openpayer.oauth.errors import NO_STORE, InvalidRequestError, OAuth2Error, error_json
from openpayer.security.events import EventKind, Outcome


async def introspect(request: Request) -> Response:
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

        def run() -> dict[str, Any]:
            try:
                client = server.clients.authenticate(env, form, request.headers, urls.auth("token"))
            except OAuth2Error:
                server.security.throttle.client_failed(client_address(request))
                server.security.record(
                    EventKind.INTROSPECT,
                    Outcome.FAILURE,
                    env=env,
                    address=client_address(request),
                    client_id=claimed_client_id(form, request.headers),
                    status=401,
                )
                raise
            server.security.record(
                EventKind.INTROSPECT,
                Outcome.SUCCESS,
                env=env,
                address=client_address(request),
                client_id=client.client_id,
            )
            with server.engine.connect() as conn:
                info = server.tokens.find(conn, env, form["token"])
            now = server.clock.now()
            if info is None or not info.active(now) or info.rotated_at is not None:
                return {"active": False}
            if not hmac.compare_digest(info.client_id, client.client_id):
                return {"active": False}
            body: dict[str, Any] = {
                "active": True,
                "scope": info.scope,
                "client_id": info.client_id,
                "token_type": "Bearer" if info.kind == "access" else "refresh_token",
                "exp": info.expires_at,
                "iat": info.issued_at,
                "iss": urls.issuer,
                "aud": urls.fhir,
            }
            if info.member_id is not None:
                body["sub"] = str(info.member_id)
                body["patient"] = info.patient_id
                body["fhirUser"] = f"{urls.fhir}/Patient/{info.patient_id}"
            else:
                body["sub"] = info.client_id
            return body

        result = await run_in_threadpool(run)
    except OAuth2Error as error:
        return error_json(error)
    return JSONResponse(result, headers=NO_STORE)
