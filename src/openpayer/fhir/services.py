"""The FHIR engine's interactions (FHIR R4 §3.1.0 RESTful API), free of HTTP.

Each public method is one interaction: it parses and validates input, runs in one database transaction
and returns stored versions; failures raise `openpayer.fhir.errors` classes that the web layer renders.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import jsonpatch
import orjson
from sqlalchemy import Connection, Engine, Select, bindparam, literal, select, text

from openpayer.db import read_connection, write_transaction
from openpayer.fhir.errors import (
    BadRequest,
    Gone,
    InvalidResource,
    MultipleMatches,
    NotFound,
    PreconditionFailed,
    Unprocessable,
)
from openpayer.fhir.ids import is_valid_id
from openpayer.fhir.outcome import Issue, has_errors
from openpayer.fhir.search.history import HistoryPage, history_page
from openpayer.fhir.search.sql import Restriction, admits_older_version, restriction_clause
from openpayer.fhir.storage import targets
from openpayer.fhir.storage.repository import ConcurrentCreate, ResourceRepository, StoredVersion, WriteResult
from openpayer.fhir.storage.tables import fhir_resource

Validator = Callable[[Any], list[Issue]]
_VISIBLE_QUERIES = 4096  # (env, restriction, type) whose membership query is kept compiled


class ConditionalMatcher(Protocol):
    """What conditional interactions need from search: the ids matching a query (at most a few)."""

    def match_ids(
        self, conn: Connection, env: str, resource_type: str, params: list[tuple[str, str]]
    ) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of a write: what is stored now, and whether it was created."""

    stored: StoredVersion
    created: bool
    changed: bool = True


def parse_json(body: bytes) -> Any:
    if not body or not body.strip():
        raise BadRequest("The request body is empty")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The request body is not valid JSON: {exc}") from exc


def parse_resource(body: bytes) -> dict[str, Any]:
    parsed = parse_json(body)
    if not isinstance(parsed, dict):
        raise BadRequest("The request body must be a JSON object (a FHIR resource)")
    if not isinstance(parsed.get("resourceType"), str):
        raise BadRequest("The resource has no resourceType")
    return parsed


def parse_query(query: str) -> list[tuple[str, str]]:
    """Parse `a=1&b=2` as FHIR does: order kept, repeated names kept (they mean AND)."""
    from urllib.parse import parse_qsl

    query = query.split("?", 1)[1] if "?" in query else query
    try:
        params = parse_qsl(query, keep_blank_values=True, strict_parsing=False)
    except ValueError as exc:
        raise BadRequest(f"The query string is malformed: {exc}") from exc
    # Queries carried in a header (If-None-Exist) or a Bundle entry pass no URL check (api/input_guard.py)
    if any("\x00" in name or "\x00" in value for name, value in params):
        raise BadRequest("The query contains a NUL character (U+0000)")
    return params


class FhirService:
    def __init__(
        self,
        engine: Engine,
        *,
        validator: Validator,
        repository: ResourceRepository,
        matcher: ConditionalMatcher | None = None,
    ) -> None:
        self.engine = engine
        self.validator = validator
        self.repository = repository
        self.matcher = matcher
        self._visible: OrderedDict[tuple[str, str, str], Select[Any]] = OrderedDict()
        self._visible_lock = threading.Lock()

    # ---- validation --------------------------------------------------------------------------
    def check(self, resource: Any) -> list[Issue]:
        """Validate and raise InvalidResource (400) listing every error; return the warnings."""
        issues = self.validator(resource)
        if has_errors(issues):
            raise InvalidResource("The resource is invalid", issues=[i for i in issues if i.is_error])
        return issues

    # ---- reads -------------------------------------------------------------------------------
    def read(self, env: str, rtype: str, rid: str) -> StoredVersion:
        with read_connection(self.engine) as conn:
            stored = self.repository.read(conn, env, rtype, rid)
        if stored is None:
            raise NotFound(f"{rtype}/{rid} is not known")
        if stored.deleted:
            raise Gone(f"{rtype}/{rid} has been deleted")
        return stored

    def vread(
        self, env: str, rtype: str, rid: str, version: str, restriction: Restriction | None = None
    ) -> StoredVersion:
        """`restriction` (a SMART patient compartment) admitted the resource as it is now; an older version
        is served only when it admits that version's own content too (else 404, as outside it)."""
        if not version.isdigit() or len(version) > 9:
            raise NotFound(f"{rtype}/{rid} has no version {version}")
        with read_connection(self.engine) as conn:
            stored = self.repository.vread(conn, env, rtype, rid, int(version))
            current = self.repository.read(conn, env, rtype, rid) if restriction is not None else None
        if stored is None:
            raise NotFound(f"{rtype}/{rid} has no version {version}")
        if (
            restriction is not None
            and stored.body is not None
            and (current is None or current.version != stored.version)
            and not admits_older_version(restriction, orjson.loads(stored.body))
        ):
            raise NotFound(f"{rtype}/{rid} has no version {version}")
        if stored.deleted:
            raise Gone(f"Version {version} of {rtype}/{rid} is a deletion")
        return stored

    def history(
        self,
        env: str,
        *,
        rtype: str | None = None,
        rid: str | None = None,
        since: int | None = None,
        at: int | None = None,
        before_seq: int | None = None,
        count: int = 50,
        restriction: Restriction | None = None,
    ) -> HistoryPage:
        """`restriction` (a SMART patient compartment) is applied inside the history SQL."""
        with read_connection(self.engine) as conn:
            if rid is not None and rtype is not None and self.repository.read(conn, env, rtype, rid) is None:
                raise NotFound(f"{rtype}/{rid} is not known")
            return history_page(
                conn,
                env,
                rtype=rtype,
                rid=rid,
                since=since,
                at=at,
                before_seq=before_seq,
                count=count,
                restriction=restriction,
            )

    # ---- membership of a restriction (for an authorization layer checking reads one by one) ----------
    def visible(self, env: str, rtype: str, rid: str, restriction: Restriction) -> bool:
        """`rtype/rid` exists, is not deleted and is inside `restriction`; the restriction decides in SQL."""
        query = self._visible_query(env, rtype, restriction)
        with self.engine.connect() as conn:
            return conn.execute(query, {"rid": rid}).first() is not None

    def visible_ids(
        self, env: str, types: Collection[str], restriction: Restriction, limit: int
    ) -> frozenset[tuple[str, str]] | None:
        """The (type, id) of every current resource of `types` inside `restriction`, or None when there are
        more than `limit` (the caller then asks resource by resource)."""
        wanted = sorted(types)
        r = fhir_resource.alias("r")
        query = (
            select(r.c.type, r.c.id)
            .where(
                r.c.env == env,
                r.c.type.in_(wanted),
                r.c.deleted.is_(False),
                restriction_clause(restriction, r, wanted),
            )
            .limit(limit + 1)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return None if len(rows) > limit else frozenset((row.type, row.id) for row in rows)

    def _visible_query(self, env: str, rtype: str, restriction: Restriction) -> Select[Any]:
        """`SELECT 1` when `rtype`/:rid is inside the restriction; built once per restriction and type, so
        SQLAlchemy's compiled cache serves every later check."""
        key = (env, restriction.key, rtype)
        cached = self._visible.get(key)
        if cached is not None:
            return cached
        r = fhir_resource.alias("r")
        query = (
            select(literal(1))
            .where(
                r.c.env == env,
                r.c.type == rtype,
                r.c.id == bindparam("rid"),
                r.c.deleted.is_(False),
                restriction_clause(restriction, r, (rtype,)),
            )
            .limit(1)
        )
        with self._visible_lock:
            self._visible[key] = query
            if len(self._visible) > _VISIBLE_QUERIES:
                self._visible.popitem(last=False)
        return query

    # ---- writes ------------------------------------------------------------------------------
    def create(
        self, env: str, rtype: str, resource: dict[str, Any], *, if_none_exist: str | None = None
    ) -> Outcome:
        self._expect_type(resource, rtype)
        resource = dict(resource)
        resource["id"] = new_id()  # FHIR R4 §3.1.0.6: the server assigns the id, ignoring any sent
        self.check(resource)
        return self._retrying(lambda conn: self.create_in(conn, env, resource, if_none_exist))

    def create_in(
        self, conn: Connection, env: str, resource: dict[str, Any], if_none_exist: str | None
    ) -> Outcome:
        """Create `resource` (validated, id assigned) unless `if_none_exist` matches something already."""
        if if_none_exist is not None:
            existing = self.match(conn, env, resource["resourceType"], if_none_exist)
            if len(existing) > 1:
                raise MultipleMatches(f"If-None-Exist matched {len(existing)} resources")
            if existing:
                stored = self.repository.read(conn, env, resource["resourceType"], existing[0])
                assert stored is not None
                return Outcome(stored, created=False, changed=False)
        result = self.repository.put(conn, env, resource, method="POST", require_new=True)
        return Outcome(result.stored, created=True)

    def update(
        self,
        env: str,
        rtype: str,
        rid: str,
        resource: dict[str, Any],
        *,
        if_match: int | None = None,
    ) -> Outcome:
        self.check_update(rtype, rid, resource)
        return self._retrying(lambda conn: self._put(conn, env, resource, "PUT", if_match))

    def check_update(self, rtype: str, rid: str, resource: dict[str, Any]) -> None:
        self._expect_type(resource, rtype)
        if not is_valid_id(rid):
            raise BadRequest(f"'{rid}' is not a valid FHIR id")
        if "id" not in resource:
            raise BadRequest("The resource in an update must have an id (FHIR R4 §3.1.0.4)")
        if resource.get("id") != rid:
            raise BadRequest(f"The resource id '{resource.get('id')}' does not match the URL id '{rid}'")
        self.check(resource)

    def update_in(
        self, conn: Connection, env: str, resource: dict[str, Any], if_match: int | None = None
    ) -> Outcome:
        return self._put(conn, env, resource, "PUT", if_match)

    def conditional_update(
        self, env: str, rtype: str, query: str, resource: dict[str, Any], *, if_match: int | None = None
    ) -> Outcome:
        self._expect_type(resource, rtype)
        return self._retrying(
            lambda conn: self.conditional_update_in(conn, env, rtype, query, resource, if_match)
        )

    def conditional_update_in(
        self,
        conn: Connection,
        env: str,
        rtype: str,
        query: str,
        resource: dict[str, Any],
        if_match: int | None = None,
    ) -> Outcome:
        """`PUT Type?criteria`; with `if_match`, the matched resource must be at that version (else 412,
        and 412 when nothing matches: there is no version to match)."""
        matches = self.match(conn, env, rtype, query)
        if len(matches) > 1:
            raise MultipleMatches(f"The conditional update matched {len(matches)} resources")
        body = dict(resource)
        if matches:
            if "id" in body and body["id"] != matches[0]:
                raise BadRequest(f"The resource id '{body['id']}' differs from the matched '{matches[0]}'")
            body["id"] = matches[0]
        elif "id" not in body:
            body["id"] = new_id()
        elif not is_valid_id(str(body["id"])):
            raise BadRequest(f"'{body['id']}' is not a valid FHIR id")
        self.check(body)
        return self._put(conn, env, body, "PUT", if_match)

    def patch(
        self, env: str, rtype: str, rid: str, operations: Any, *, if_match: int | None = None
    ) -> Outcome:
        return self._retrying(lambda conn: self.patch_in(conn, env, rtype, rid, operations, if_match))

    def patch_in(
        self, conn: Connection, env: str, rtype: str, rid: str, operations: Any, if_match: int | None
    ) -> Outcome:
        if not isinstance(operations, list):
            raise BadRequest("A JSON Patch document is a JSON array of operations (RFC 6902)")
        self.repository.lock_current(conn, env, rtype, rid)  # no write may slip in between read and put
        current = self.repository.read(conn, env, rtype, rid)
        if current is None:
            raise NotFound(f"{rtype}/{rid} is not known")
        if current.deleted:
            raise Gone(f"{rtype}/{rid} has been deleted")
        try:
            patched = jsonpatch.apply_patch(current.json(), operations)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, ValueError) as exc:
            raise Unprocessable(f"The patch cannot be applied: {exc}") from exc
        if not isinstance(patched, dict):
            raise Unprocessable("The patch does not produce a resource")
        if patched.get("resourceType") != rtype or patched.get("id") != rid:
            raise Unprocessable("A patch may not change the resourceType or id")
        self.check(patched)
        return self._put(conn, env, patched, "PATCH", if_match)

    def delete(self, env: str, rtype: str, rid: str) -> Outcome:
        with write_transaction(self.engine) as conn:
            return self.delete_in(conn, env, rtype, rid)

    def delete_in(self, conn: Connection, env: str, rtype: str, rid: str) -> Outcome:
        result = self.repository.delete(conn, env, rtype, rid)
        return Outcome(result.stored, created=False, changed=result.changed)

    def conditional_delete(self, env: str, rtype: str, query: str) -> list[Outcome]:
        with write_transaction(self.engine) as conn:
            return self.conditional_delete_in(conn, env, rtype, query)

    def conditional_delete_in(self, conn: Connection, env: str, rtype: str, query: str) -> list[Outcome]:
        matches = self.match(conn, env, rtype, query)
        if len(matches) > 1:
            raise MultipleMatches(f"The conditional delete matched {len(matches)} resources")
        return [self.delete_in(conn, env, rtype, rid) for rid in matches]

    # ---- helpers -----------------------------------------------------------------------------
    def _put(
        self, conn: Connection, env: str, resource: dict[str, Any], method: str, if_match: int | None
    ) -> Outcome:
        result: WriteResult = self.repository.put(conn, env, resource, method=method, if_match=if_match)
        return Outcome(result.stored, created=result.created)

    def _retrying(self, work: Callable[[Connection], Outcome]) -> Outcome:
        """Run a write in its own transaction, again if a concurrent create of the same id won the race."""
        for attempt in range(2):
            try:
                with write_transaction(self.engine) as conn:
                    return work(conn)
            except ConcurrentCreate:
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def match(self, conn: Connection, env: str, rtype: str, query: str) -> list[str]:
        """The ids matching a conditional interaction's criteria, inside the caller's write transaction.

        On PostgreSQL two transactions could both find nothing and both create: the match is serialised
        per (environment, type, criteria) by a transaction-scoped advisory lock, taken before the look-up
        and held to commit, so the second writer's look-up sees the first one's resource. (SQLite writers
        are serialised whole by BEGIN IMMEDIATE.)"""
        params = parse_query(query)
        if not params:
            raise BadRequest("A conditional interaction needs search parameters")
        if self.matcher is None:
            raise PreconditionFailed("Conditional interactions need the search engine")
        if conn.dialect.name == "postgresql":
            targets.lock(conn, env)  # the environment's write lock comes first in every FHIR write
            conn.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": criteria_lock_key(env, rtype, params)}
            )
        return self.matcher.match_ids(conn, env, rtype, params)

    @staticmethod
    def _expect_type(resource: dict[str, Any], rtype: str) -> None:
        if resource.get("resourceType") != rtype:
            raise BadRequest(
                f"The resourceType '{resource.get('resourceType')}' does not match the URL type '{rtype}'"
            )


def criteria_lock_key(env: str, rtype: str, params: Sequence[tuple[str, str]]) -> int:
    """A signed 64-bit key for (env, type, criteria), the criteria in a canonical order."""
    canonical = orjson.dumps([env, rtype, sorted(params)])
    return int.from_bytes(hashlib.blake2b(canonical, digest_size=8).digest(), "big", signed=True)


def new_id() -> str:
    return str(uuid.uuid4())


def issues_of(values: Sequence[Issue]) -> list[dict[str, Any]]:
    return [issue.to_json() for issue in values]
