"""The UserInfo endpoint (OpenID Connect Core §5.3): `sub` and SMART's `fhirUser` for an `openid` token, and
the member's name (`name`, `given_name`, `family_name`) when `profile` was granted."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from openpayer.oauth.endpoints.common import server_for
from openpayer.oauth.errors import NO_STORE, InvalidTokenError, OAuth2Error, error_json
from openpayer.oauth.profile import profile_claims
from openpayer.oauth.scopes import OPENID, PROFILE
from openpayer.web.threads import run_blocking


async def userinfo(request: Request) -> Response:
    try:
        server, env = server_for(request)
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            raise InvalidTokenError("a bearer access token is required")
        found = await run_blocking(server.tokens.check_access, env, header[7:].strip())
        if found is None or found[0].member_id is None or OPENID not in found[0].scope.split():
            raise InvalidTokenError("the access token is not valid for userinfo")
    except OAuth2Error as error:
        response = error_json(error)
        response.headers["WWW-Authenticate"] = f'Bearer error="{error.error}"'
        return response
    info = found[0]
    urls = server.urls(request, env)
    body = {"sub": str(info.member_id), "fhirUser": f"{urls.fhir}/Patient/{info.patient_id}"}
    if PROFILE in info.scope.split() and info.patient_id is not None:
        body.update(await run_blocking(profile_claims, server.reach.fhir, env, info.patient_id))
    return JSONResponse(body, headers=NO_STORE)
