"""The environment's public signing keys (RFC 7517 JWK Set; OIDC Discovery `jwks_uri`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from openpayer.oauth.endpoints.common import server_for
from openpayer.oauth.errors import OAuth2Error, error_json
from openpayer.web.threads import run_blocking


async def jwks(request: Request) -> Response:
    try:
        server, env = server_for(request)
    except OAuth2Error as error:
        return error_json(error)
    keys = await run_blocking(server.keys.jwks, env)
    return JSONResponse(keys, headers={"Cache-Control": "public, max-age=300"})
