"""Bearer-token enforcement on `/{env}/fhir` (RFC 6750; SMART App Launch 2.2 "Access token").

An ASGI middleware, so that the FHIR routes stay as they are:
- `metadata` and `.well-known` are public; every other request needs a bearer token of the same
  environment in the `Authorization` header (never in the query string), else 401 with `WWW-Authenticate`.
- A patient token's searches get a `request.state.search_restriction` (the search engine's
  `PatientCompartment`, the granted types, and granular v2 scope queries), applied inside the SQL of every
  match, include, chain, `$everything` and paging link. Reads are checked with the same restriction in SQL
  (`oauth/reach.py`): a resource outside it answers 404. A type not granted answers 403. Writes are refused.
- Type and system `_history` are served with the search restriction applied inside the history SQL: a
  patient's token sees the versions of the granted types' resources in its compartment, nothing else.
- `$operations` are allowed as the operation registry declares (`oauth/targets.py`): `$validate` (stores and
  reads nothing) for any token; `Patient/$member-match` (Da Vinci HRex) only for backend (`system/`) tokens
  that may read Patient; `Patient/[id]/$everything` as a read of that Patient.
- Every request with a token is audited (no token, query or body is recorded), and the record is committed
  before the response starts: a request answered is a request on record, even if the process is killed
  the next instant. (Other buffered events are written by `security/audit_writer.py` in the background.)
- Every refused request (401, 403, the 404 of a patient restriction) is a security event
  (`openpayer.security.events`, buffered): the app, the address, the member as a keyed hash, what was asked.
- Each request with a valid token (and a `/metadata` or `.well-known` request that carries one) marks its
  client active in `auth.activity` (in memory; written with the audit batches) for the inactivity policy.

CORS for these routes is `oauth/cors.py`'s policy, applied around this middleware by `web/cors.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openpayer.fhir.errors import FHIRError, Forbidden, NotFound, Unauthorized
from openpayer.fhir.operations.registry import OperationRegistry
from openpayer.fhir.search.params import Registry
from openpayer.oauth.bearer import Grant, grant_for
from openpayer.oauth.service import AuthServer
from openpayer.oauth.targets import Target, classify, refused
from openpayer.observability.context import annotate
from openpayer.security.audit import AuditEvent
from openpayer.security.events import EventKind, Outcome
from openpayer.web.cors import header
from openpayer.web.threads import run_blocking


class SmartGuard:
    def __init__(
        self,
        app: ASGIApp,
        *,
        auth: AuthServer,
        registry: Registry,
        operations: OperationRegistry[Any],
        render_error: Callable[[FHIRError], Response],
    ) -> None:
        """`operations`: what each `$operation` allows (the registry); `render_error`: the FHIR API's
        OperationOutcome response (both passed down by the app)."""
        self.app = app
        self.auth = auth
        self.registry = registry
        self.operations = operations
        self.render_error = render_error
        self.environments = frozenset(auth.settings.environments)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        parts = scope["path"].strip("/").split("/")
        if len(parts) < 2 or parts[0] not in self.environments or parts[1] not in ("fhir", "directory"):
            await self.app(scope, receive, send)
            return
        env, area, rest = parts[0], parts[1], parts[2:]
        if rest[:1] == [".well-known"] or (area == "fhir" and rest[:1] == ["metadata"]):
            await self._note_public_call(scope, env)
            await self.app(scope, receive, send)
        elif area == "fhir":
            await self._guard(scope, receive, send, env, rest)
        else:
            await self.app(scope, receive, send)

    async def _guard(self, scope: Scope, receive: Receive, send: Send, env: str, rest: list[str]) -> None:
        grant: Grant | None = None
        target: Target | None = None
        try:
            grant = await self._grant(scope, env)
            annotate(client_id=grant.info.client_id)  # on this request's log lines
            target = classify(scope["method"], rest, self.operations)
            if target is None:
                target = refused(scope["method"], rest)
                raise Forbidden("This access token can only read and search; this interaction is not allowed")
            await self._authorize(env, grant, target)
        except FHIRError as error:
            if grant is not None:
                await self._audit(env, grant, target, error.status)
            self._refused(scope, env, grant, target, error.status)
            await self._reply(scope, receive, send, error)
            return
        self.auth.activity.called(env, grant.info.client_id)
        scope["state"] = {**scope.get("state", {}), "search_restriction": grant.search, "smart_grant": grant}
        recorded = False

        async def record_then_send(message: Message) -> None:
            nonlocal recorded
            if message["type"] == "http.response.start" and not recorded:
                recorded = True
                await self._audit(env, grant, target, message["status"])  # committed before it leaves
            await send(message)

        try:
            await self.app(scope, receive, record_then_send)
        finally:
            if not recorded:  # an error below: the 500 that follows is on record first
                recorded = True
                await self._audit(env, grant, target, 500)

    def _refused(
        self, scope: Scope, env: str, grant: Grant | None, target: Target | None, status: int
    ) -> None:
        """A refused request as a security event (in memory; written in batches): 401 without a valid
        token, 403 outside the token's scopes, 404 outside its patient restriction."""
        client = scope.get("client")
        info = grant.info if grant is not None else None
        detail = None
        if target is not None:
            detail = target.search_type or target.resource_type
            if target.resource_id and target.resource_type:
                detail = f"{target.resource_type}/{target.resource_id}"
        account = None
        if info is not None:
            subject = str(info.member_id) if info.member_id is not None else info.client_id
            account = self.auth.security.account(f"token:{env}", subject)
        self.auth.security.record(
            EventKind.FHIR_REFUSED,
            Outcome.FAILURE if status == 401 else Outcome.REFUSED,
            env=env,
            address=client[0] if client else None,
            client_id=info.client_id if info is not None else None,
            account=account,
            status=status,
            detail=detail,
        )

    async def _reply(self, scope: Scope, receive: Receive, send: Send, error: FHIRError) -> None:
        response = self.render_error(error)
        if isinstance(error, Unauthorized):
            code = getattr(error, "oauth_error", None)
            challenge = 'Bearer realm="fhir"' + (f', error="{code}"' if code else "")
            response.headers["WWW-Authenticate"] = challenge
        await response(scope, receive, send)

    async def _grant(self, scope: Scope, env: str) -> Grant:
        query = scope.get("query_string", b"")
        # Also `access%5Ftoken=` and the like: any query that could decode to the parameter is parsed.
        if (b"token" in query or b"%" in query) and any(
            k == "access_token" for k, _ in parse_qsl(query.decode("latin-1"))
        ):
            raise _unauthorized(
                "Access tokens are accepted only in the Authorization header", "invalid_request"
            )
        scheme, _, token = (header(scope, b"authorization") or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("This API requires a bearer access token (SMART on FHIR)", None)
        tokens = self.auth.tokens
        cached = tokens.cached_access(env, token)
        found = await run_blocking(tokens.check_access, env, token) if cached is None else cached
        info, extra = found if found is not None else (None, None)
        if info is None:
            raise _unauthorized("The access token is not valid, has expired or was revoked", "invalid_token")
        if isinstance(extra, Grant):
            return extra
        grant = grant_for(
            env, info, dialect=self.auth.engine.dialect.name, registry=self.registry, clock=self.auth.clock
        )
        tokens.remember(env, token, grant)
        return grant

    async def _authorize(self, env: str, grant: Grant, target: Target) -> None:
        access = grant.access
        if target.interaction in ("search-system", "history-system"):
            return  # types are filtered in SQL by the search restriction
        operation = self.operations.get(target.interaction) if target.operation else None
        if operation is not None and operation.token is not None:
            if operation.token.check == "none":
                return  # e.g. $validate: reads and stores nothing
            if operation.token.check == "backend-read":
                rtype = target.resource_type or ""
                if operation.resource_types is not None and rtype not in operation.resource_types:
                    raise Forbidden(f"{rtype}/${operation.name} is not an operation of this server")
                if not grant.backend or not access.allows_in("system", rtype, "r"):
                    raise Forbidden(
                        f"${operation.name} needs a backend services token granted system/{rtype} read"
                    )
                return
            # "read": a read of the instance it runs on, below
        if target.search_type is not None and target.interaction != "search-compartment":
            if not access.allows(target.search_type, "s"):
                raise Forbidden(f"The access token does not grant searching {target.search_type}")
            return
        rtype, rid = target.resource_type or "", target.resource_id or ""
        if target.interaction == "search-compartment":
            if not access.allows(target.search_type or "", "s"):
                raise Forbidden(f"The access token does not grant searching {target.search_type}")
        elif not access.allows(rtype, "r"):
            raise Forbidden(f"The access token does not grant reading {rtype}")
        if grant.read is not None and not await self.auth.reach.reachable(env, grant, rtype, rid):
            raise NotFound(f"{rtype}/{rid} is not known")

    async def _note_public_call(self, scope: Scope, env: str) -> None:
        """`/metadata` and `.well-known` need no token, but one that carries a valid access token of an app
        is that app's API call (a health check's), so it counts as activity. Anything else is ignored."""
        value = header(scope, b"authorization")
        if not value or value[:7].lower() != "bearer ":
            return
        token = value[7:].strip()
        if not token:
            return
        tokens = self.auth.tokens
        found = tokens.cached_access(env, token)
        if found is None:
            found = await run_blocking(tokens.check_access, env, token)
        if found is not None and found[0] is not None:
            self.auth.activity.called(env, found[0].client_id)

    async def _audit(self, env: str, grant: Grant, target: Target | None, status: int) -> None:
        await run_blocking(self._record, env, grant, target, status)

    def _record(self, env: str, grant: Grant, target: Target | None, status: int) -> None:
        info = grant.info
        self.auth.audit.record(
            env,
            AuditEvent.FHIR_ACCESS,
            status,
            client_id=info.client_id,
            member_id=info.member_id,
            patient_id=info.patient_id,
            interaction=target.interaction if target else "refused",
            resource_type=(target.search_type or target.resource_type) if target else None,
            resource_id=target.resource_id if target else None,
            durable=True,
        )


def _unauthorized(message: str, code: str | None) -> Unauthorized:
    error = Unauthorized(message)
    error.oauth_error = code  # type: ignore[attr-defined]
    return error
