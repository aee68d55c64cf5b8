"""Bearer-token enforcement on `/{env}/fhir` (RFC 6750; SMART App Launch 2.2 "Access token"), plus CORS.

An ASGI middleware, so that the FHIR routes stay as they are:
- `metadata` and `.well-known` are public; every other request needs a bearer token of the same
  environment in the `Authorization` header (never in the query string), else 401 with `WWW-Authenticate`.
- A patient token's searches get a `request.state.search_restriction` (the search engine's
  `PatientCompartment`, the granted types, and granular v2 scope queries), applied inside the SQL of every
  match, include, chain, `$everything` and paging link. Reads are checked with the same restriction in SQL:
  a resource outside it answers 404. A type not granted answers 403. Writes are refused (403).
- Type and system `_history` are served with the search restriction applied inside the history SQL: a
  patient's token sees the versions of the granted types' resources in its compartment, nothing else.
- Type-level operations: `$validate` (stores and reads nothing) for any token; `Patient/$member-match`
  (Da Vinci HRex) only for backend (`system/`) tokens that may read Patient: a member's app may not match
  members.
- Every request with a token is audited (no token, query or body is recorded), and the record is committed
  before the response starts: a request answered is a request on record, even if the process is killed
  the next instant. (The authorization server's buffered events are written at least every
  `AUDIT_MAX_AGE` seconds while the server runs, and the rest at shutdown: the ASGI lifespan.)
- Each request with a valid token (and a `/metadata` or `.well-known` request that carries one) marks its
  client active in `auth.activity` (in memory; written with the audit batches) for the inactivity policy.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from sqlalchemy import Select, bindparam, literal, select
from starlette.concurrency import run_in_threadpool

from openpayer.api.negotiation import error_response
from openpayer.fhir.errors import FHIRError, Forbidden, NotFound, Unauthorized
from openpayer.fhir.search.compartment import (
    DEFAULT_EXTRA_TYPES,
    AllOf,
    PatientCompartment,
    compartment_types,
)
from openpayer.fhir.search.sql import Restriction, restriction_clause
from openpayer.fhir.storage.tables import fhir_resource
from openpayer.oauth.audit import AUDIT_MAX_AGE, AuditEvent
from openpayer.oauth.restrictions import QueryFilter, TypeFilter
from openpayer.oauth.scopes import Access
from openpayer.oauth.tokens import TokenInfo
from openpayer.observability.context import annotate

if TYPE_CHECKING:
    from openpayer.fhir.search.params import Registry
    from openpayer.oauth.service import AuthServer

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Non-patient types a patient's app may read: the search engine's one list (fhir/search/compartment.py).
EXTRA_TYPES = DEFAULT_EXTRA_TYPES
_PUBLIC_AUTH = {"jwks", ".well-known"}
_CORS_AUTH = {"token", "introspect", "revoke", "userinfo"}
_MEMBERSHIP_CACHE = 20_000
_SNAPSHOTS = 512  # patients whose compartment (type, id) pairs are held in memory
_SNAPSHOT_MAX = 50_000  # larger compartments are checked read by read
# Type-level operations a token may call (POST only), by path segment -> Target.interaction.
_TYPE_OPERATIONS = {"$validate": "validate", "$member-match": "member-match"}


@dataclass(frozen=True, slots=True)
class Grant:
    """A checked token with what it may reach; cached beside the token."""

    info: TokenInfo
    access: Access
    search: Restriction | None  # for searches (types the token may search)
    read: Restriction | None  # for reads (compartment and granular queries; types checked apart)
    env: str = ""
    bounded: frozenset[str] = frozenset()  # types reachable only through granular (v2 query) scopes
    _read_checks: dict[str, Select[Any]] = field(default_factory=dict)

    def read_check(self, rtype: str) -> Select[Any]:
        """`SELECT 1` when `rtype`/:rid is inside the read restriction; built once per type and token, so
        SQLAlchemy's compiled cache serves every later read."""
        cached = self._read_checks.get(rtype)
        if cached is None:
            assert self.read is not None
            r = fhir_resource.alias("r")
            cached = (
                select(literal(1))
                .where(
                    r.c.env == self.env,
                    r.c.type == rtype,
                    r.c.id == bindparam("rid"),
                    r.c.deleted.is_(False),
                    restriction_clause(self.read, r, (rtype,)),
                )
                .limit(1)
            )
            self._read_checks[rtype] = cached
        return cached


@dataclass(frozen=True, slots=True)
class Target:
    interaction: str  # read, vread, search-type, search-system, history-instance, everything, ...
    resource_type: str | None = None
    resource_id: str | None = None
    search_type: str | None = None  # the type searched (compartment search: the tail)


def classify(method: str, rest: list[str]) -> Target | None:
    """What a `/{env}/fhir/...` request does; None for writes and anything a token may not do here."""
    reading = method in ("GET", "HEAD")
    n = len(rest)
    if n == 0 or rest == ["_search"]:
        return Target("search-system") if reading or n == 1 else None
    rtype = rest[0]
    if n == 1:
        if rtype == "_history":
            return Target("history-system") if reading else None
        if rtype.startswith(("_", "$")):
            return None  # other system interactions and system-level operations
        return Target("search-type", rtype, search_type=rtype) if reading else None
    second = rest[1]
    if n == 2:
        if second == "_search":
            return Target("search-type", rtype, search_type=rtype) if method == "POST" else None
        if second == "_history":
            return Target("history-type", rtype, search_type=rtype) if reading else None
        if second in _TYPE_OPERATIONS:
            return Target(_TYPE_OPERATIONS[second], rtype) if method == "POST" else None
        if second.startswith(("_", "$")) or not reading:
            return None  # other type-level operations
        return Target("read", rtype, second)
    if n == 3:
        if rest[2] == "$everything" and rtype == "Patient":
            return Target("everything", rtype, second) if reading or method == "POST" else None
        if rest[2] == "_history" and reading:
            return Target("history-instance", rtype, second)
        if rest[2].startswith(("$", "_")) or not reading:
            return None
        return Target("search-compartment", rtype, second, search_type=rest[2])
    if n == 4 and rest[2] == "_history" and reading:
        return Target("vread", rtype, second)
    return None


def refused(method: str, rest: list[str]) -> Target:
    """What a refused request tried (`refused-delete Observation/x`), for the audit trail."""
    named = [part for part in rest[:2] if part and not part.startswith(("_", "$"))]
    return Target(
        f"refused-{method.lower()}"[:32],
        named[0] if named else None,
        named[1] if len(named) > 1 else None,
    )


class SmartGuard:
    def __init__(self, app: ASGIApp, *, auth: AuthServer, registry: Registry) -> None:
        self.app = app
        self.auth = auth
        self.registry = registry
        self.environments = frozenset(auth.settings.environments)
        self._membership: OrderedDict[tuple[str, str, str, str], tuple[float, bool]] = OrderedDict()
        self._snapshots: OrderedDict[tuple[str, str], tuple[float, frozenset[tuple[str, str]] | None]] = (
            OrderedDict()
        )
        self._flusher: asyncio.Task[None] | None = None
        self._flushing: asyncio.Task[None] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        parts = scope["path"].strip("/").split("/")
        if len(parts) < 2 or parts[0] not in self.environments:
            await self.app(scope, receive, send)
            return
        env, area, rest = parts[0], parts[1], parts[2:]
        origin = _header(scope, b"origin")
        if area == "auth":
            public = bool(rest) and rest[0] in _PUBLIC_AUTH
            allow = (
                "*" if public else self._registered(env, origin) if rest and rest[0] in _CORS_AUTH else None
            )
            await self._with_cors(scope, receive, send, allow)
        elif rest[:1] == [".well-known"] or (area == "fhir" and rest[:1] == ["metadata"]):
            await self._note_public_call(scope, env)
            await self._with_cors(scope, receive, send, "*")
        elif area == "fhir":
            await self._guard(scope, receive, send, env, rest, self._registered(env, origin))
        else:
            await self.app(scope, receive, send)

    # ---- audit writes --------------------------------------------------------------------------------
    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """While the server runs, buffered audit events are written at least every `AUDIT_MAX_AGE` seconds,
        even when no request comes; at shutdown the rest are written before the application stops."""

        async def receive_and_flush() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup" and self._flusher is None:
                self._flusher = asyncio.get_running_loop().create_task(self._flush_periodically())
            elif message["type"] == "lifespan.shutdown":
                if self._flusher is not None:
                    self._flusher.cancel()
                    self._flusher = None
                await self._flush()
            return message

        await self.app(scope, receive_and_flush, send)

    async def _flush_periodically(self) -> None:
        audit = self.auth.audit
        while True:
            await asyncio.sleep(AUDIT_MAX_AGE)
            if audit.due() or self.auth.activity.due():
                await self._flush()

    def _flush_soon(self) -> None:
        """Write the buffered events in the background (at most one write at a time): the request that
        filled the batch does not wait for it."""
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        for flush in (self.auth.audit.flush, self.auth.activity.flush):
            try:
                await run_in_threadpool(flush)
            except Exception:  # noqa: S112 - flush() logged it and kept the events for the next write
                continue

    # ---- CORS ----------------------------------------------------------------------------------------
    def _registered(self, env: str, origin: str | None) -> str | None:
        if origin and origin in self.auth.clients.origins(env):
            return origin
        return None

    async def _with_cors(self, scope: Scope, receive: Receive, send: Send, allow: str | None) -> None:
        if scope["method"] == "OPTIONS" and _header(scope, b"access-control-request-method"):
            headers = [(b"vary", b"Origin")]
            if allow:
                headers += [
                    (b"access-control-allow-origin", allow.encode()),
                    (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
                    (b"access-control-allow-headers", b"Authorization, Content-Type, Accept, Prefer"),
                    (b"access-control-max-age", b"600"),
                ]
            await send({"type": "http.response.start", "status": 204, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        if allow is None:
            await self.app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"access-control-allow-origin", allow.encode()),
                    (b"access-control-expose-headers", b"Location, ETag, Content-Location, WWW-Authenticate"),
                    (b"vary", b"Origin"),
                ]
            await send(message)

        await self.app(scope, receive, send_with_cors)

    # ---- the resource server -------------------------------------------------------------------------
    async def _guard(
        self, scope: Scope, receive: Receive, send: Send, env: str, rest: list[str], cors: str | None
    ) -> None:
        if scope["method"] == "OPTIONS":
            await self._with_cors(scope, receive, send, cors)
            return
        grant: Grant | None = None
        target: Target | None = None
        try:
            grant = await self._grant(scope, env)
            annotate(client_id=grant.info.client_id)  # on this request's log lines
            target = classify(scope["method"], rest)
            if target is None:
                target = refused(scope["method"], rest)
                raise Forbidden("This access token can only read and search; this interaction is not allowed")
            await self._authorize(env, grant, target)
        except FHIRError as error:
            if grant is not None:
                await self._audit(env, grant, target, error.status)
            await self._reply(scope, receive, send, error, cors)
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
            if cors is None:
                await self.app(scope, receive, record_then_send)
            else:
                await self._with_cors(scope, receive, record_then_send, cors)
        finally:
            if not recorded:  # an error below: the 500 that follows is on record first
                recorded = True
                await self._audit(env, grant, target, 500)

    async def _reply(
        self, scope: Scope, receive: Receive, send: Send, error: FHIRError, cors: str | None
    ) -> None:
        response = error_response(error)
        if isinstance(error, Unauthorized):
            code = getattr(error, "oauth_error", None)
            challenge = 'Bearer realm="fhir"' + (f', error="{code}"' if code else "")
            response.headers["WWW-Authenticate"] = challenge
        if cors:
            response.headers["Access-Control-Allow-Origin"] = cors
            response.headers["Vary"] = "Origin"
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
        header = _header(scope, b"authorization") or ""
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("This API requires a bearer access token (SMART on FHIR)", None)
        tokens = self.auth.tokens
        cached = tokens.cached_access(env, token)
        found = await run_in_threadpool(tokens.check_access, env, token) if cached is None else cached
        info, extra = found if found is not None else (None, None)
        if info is None:
            raise _unauthorized("The access token is not valid, has expired or was revoked", "invalid_token")
        if isinstance(extra, Grant):
            return extra
        grant = self._build(env, info)
        tokens.remember(env, token, grant)
        return grant

    def _build(self, env: str, info: TokenInfo) -> Grant:
        access = Access.from_scope(info.scope)
        dialect = self.auth.engine.dialect.name
        registry = self.registry
        searchable = None if access.searches_everything else access.types_with("s")
        parts: list[Restriction | None] = []
        if info.patient_id is not None:
            parts.append(PatientCompartment(info.patient_id, env=env, extra_types=EXTRA_TYPES))
        bounded = access.bounded_types()
        query = QueryFilter(env, dialect, registry, bounded, self.auth.clock) if bounded else None
        search_parts = [*parts, TypeFilter(searchable) if searchable is not None else None, query]
        read_parts = [*parts, query]
        search = AllOf(*search_parts) if any(search_parts) else None
        read = AllOf(*read_parts) if any(read_parts) else None
        return Grant(info, access, search, read, env, frozenset(bounded))

    async def _authorize(self, env: str, grant: Grant, target: Target) -> None:
        access = grant.access
        if target.interaction in ("search-system", "history-system", "validate"):
            return  # types are filtered in SQL by the search restriction; $validate reads and stores nothing
        if target.interaction == "member-match":
            if target.resource_type != "Patient":
                raise Forbidden(f"{target.resource_type}/$member-match is not an operation of this server")
            if not _is_backend(grant) or not access.allows_in("system", "Patient", "r"):
                raise Forbidden("$member-match needs a backend services token granted system/Patient read")
            return
        if target.search_type is not None and target.interaction != "search-compartment":
            if not access.allows(target.search_type, "s"):
                raise Forbidden(f"The access token does not grant searching {target.search_type}")
            return
        rtype, rid = target.resource_type or "", target.resource_id or ""
        if target.interaction == "search-compartment":
            if not access.allows(target.search_type or "", "s"):
                raise Forbidden(f"The access token does not grant searching {target.search_type}")
        elif target.interaction == "everything":
            if not access.allows("Patient", "r"):
                raise Forbidden("The access token does not grant reading Patient")
        elif not access.allows(rtype, "r"):
            raise Forbidden(f"The access token does not grant reading {rtype}")
        if grant.read is not None and not await self._reachable(env, grant, rtype, rid):
            raise NotFound(f"{rtype}/{rid} is not known")

    async def _reachable(self, env: str, grant: Grant, rtype: str, rid: str) -> bool:
        """The resource is inside the token's restriction, decided in SQL by the restriction itself.

        Three steps, cheapest first: types the restriction admits whole (the non-patient types) need no
        query; a snapshot of the compartment's (type, id) pairs, read with the same restriction at most
        every `auth_token_cache_seconds`, answers for resources already in it; anything else (a resource
        created since, or another member's) is checked by one query.
        """
        assert grant.read is not None
        if grant.info.patient_id is not None and rtype in EXTRA_TYPES and rtype not in grant.bounded:
            return True
        ttl = self.auth.settings.auth_token_cache_seconds
        snapshot = await self._snapshot(env, grant, ttl)
        if snapshot is not None and (rtype, rid) in snapshot:
            return True
        key = (env, grant.read.key, rtype, rid)
        hit = self._membership.get(key)
        if hit is not None and time.monotonic() - hit[0] < ttl:
            return hit[1]
        query = grant.read_check(rtype)

        def run() -> bool:
            with self.auth.engine.connect() as conn:
                return conn.execute(query, {"rid": rid}).first() is not None

        found = await run_in_threadpool(run)
        self._membership[key] = (time.monotonic(), found)
        if len(self._membership) > _MEMBERSHIP_CACHE:
            self._membership.popitem(last=False)
        return found

    async def _snapshot(self, env: str, grant: Grant, ttl: float) -> frozenset[tuple[str, str]] | None:
        if grant.read is None or grant.info.patient_id is None:
            return None
        key = (env, grant.read.key)
        hit = self._snapshots.get(key)
        if hit is not None and time.monotonic() - hit[0] < ttl:
            return hit[1]
        restriction = grant.read
        types = sorted(compartment_types())

        def load() -> frozenset[tuple[str, str]] | None:
            r = fhir_resource.alias("r")
            query = (
                select(r.c.type, r.c.id)
                .where(
                    r.c.env == env,
                    r.c.type.in_(types),
                    r.c.deleted.is_(False),
                    restriction_clause(restriction, r, types),
                )
                .limit(_SNAPSHOT_MAX + 1)
            )
            with self.auth.engine.connect() as conn:
                rows = conn.execute(query).all()
            return None if len(rows) > _SNAPSHOT_MAX else frozenset((row.type, row.id) for row in rows)

        snapshot = await run_in_threadpool(load)
        self._snapshots[key] = (time.monotonic(), snapshot)
        if len(self._snapshots) > _SNAPSHOTS:
            self._snapshots.popitem(last=False)
        return snapshot

    async def _note_public_call(self, scope: Scope, env: str) -> None:
        """`/metadata` and `.well-known` need no token, but one that carries a valid access token of an app
        is that app's API call (a health check's), so it counts as activity. Anything else is ignored."""
        header = _header(scope, b"authorization")
        if not header or header[:7].lower() != "bearer ":
            return
        token = header[7:].strip()
        if not token:
            return
        tokens = self.auth.tokens
        found = tokens.cached_access(env, token)
        if found is None:
            found = await run_in_threadpool(tokens.check_access, env, token)
        if found is not None and found[0] is not None:
            self.auth.activity.called(env, found[0].client_id)

    async def _audit(self, env: str, grant: Grant, target: Target | None, status: int) -> None:
        await run_in_threadpool(self._record, env, grant, target, status)
        if self.auth.audit.due():
            self._flush_soon()

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


def _is_backend(grant: Grant) -> bool:
    """A SMART Backend Services token: issued to a client for itself, for no member and no patient."""
    return grant.info.member_id is None and grant.info.patient_id is None


def _unauthorized(message: str, code: str | None) -> Unauthorized:
    error = Unauthorized(message)
    error.oauth_error = code  # type: ignore[attr-defined]
    return error


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None
