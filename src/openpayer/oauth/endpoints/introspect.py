"""Token introspection (RFC 7662 §2). Callers authenticate as clients of the environment.

A client may introspect only the tokens issued to it: any other token, however valid, answers
`{"active": false}`, so that one app cannot learn another app's patient, member or scopes from a token it
came by. (No resource server outside this one needs to introspect; the FHIR API checks tokens itself.)
"""

from __future__ import annotations

import hmac
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from openpayer.oauth.endpoints.common import token_request
from openpayer.oauth.errors import NO_STORE, OAuth2Error, error_json
from openpayer.security.events import EventKind
from openpayer.web.threads import run_blocking


async def introspect(request: Request) -> Response:
    try:
        asked = await token_request(request)
        if isinstance(asked, Response):
            return asked
        server, env, form, urls = asked.server, asked.env, asked.form, asked.urls

        def run() -> dict[str, Any]:
            client = asked.authenticate(EventKind.INTROSPECT)
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

        result = await run_blocking(run)
    except OAuth2Error as error:
        return error_json(error)
    return JSONResponse(result, headers=NO_STORE)
