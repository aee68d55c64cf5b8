"""Executing searches: matches, sort, keyset paging, totals, includes; type, system and compartment level.

Paging is keyset, never OFFSET: a page is "the `_count` rows after (or before) this position" in the order
(sort keys…, rid), and the position travels in a signed cursor together with the normalised query, the
environment, the restriction's identity and the allowed types. Writes between pages therefore neither skip
nor repeat rows that did not change, and a cursor cannot be replayed with another query, patient or scope.

Totals: `_total=none` gives none; otherwise an exact COUNT over the same SQL, skipped when the first page
already holds every match. Later pages repeat the first page's count, carried (signed) in their paging links,
so a client paging through a large result does not pay for a count per page; `_total=accurate` counts again
on every page (the carried figure does not see writes made since the first page).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Connection, FromClause, and_, case, func, or_, select, tuple_, union_all
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql.elements import ColumnElement

from openpayer.clock import Clock
from openpayer.fhir.errors import BadRequest, NotFound
from openpayer.fhir.outcome import Issue
from openpayer.fhir.paging import CursorSigner
from openpayer.fhir.search.bundle import Entry, SearchResult, subset
from openpayer.fhir.search.compartment import (
    AllOf,
    CompartmentMembership,
    compartment_types,
    member_rids,
    non_patient_types,
)
from openpayer.fhir.search.params import (
    MAX_INCLUDE_ITERATIONS,
    TRANSPORT_PARAMS,
    IncludeSpec,
    Leaf,
    ParsedQuery,
    Registry,
    all_resource_types,
    parse_query,
)
from openpayer.fhir.search.sql import Context, Restriction, criteria_clauses, sort_value
from openpayer.fhir.search.values import date_range
from openpayer.fhir.storage import codec
from openpayer.fhir.storage.repository import current_rows_by_rid
from openpayer.fhir.storage.tables import fhir_resource, idx_reference, index_key

EVERYTHING_PARAMS = frozenset({"_since", "_type", "_count", "_summary", "_elements", "_total"})


# Aliases are immutable and reused by every query: building one per request populates its column
# collection again (measured: a tenth of a member search's time).
_MATCH = fhir_resource.alias("r")
_STORED = fhir_resource.alias("c")
_INCLUDE_REF = idx_reference.alias("iref")  # one pair per include statement
_INCLUDE_TARGET = fhir_resource.alias("itarget")
_MATCH.c, _STORED.c, _INCLUDE_REF.c, _INCLUDE_TARGET.c  # noqa: B018  (populated before threads share them)


@dataclass(frozen=True, slots=True)
class _Row:
    rid: int
    type: str
    id: str
    position: tuple[Any, ...] = ()
    content: bytes | None = None  # compressed bytes, when the page query fetched them


@dataclass(slots=True)
class _Scope:
    op: str  # what the cursor is valid for, e.g. "search:Observation"
    path: str  # the link path under base_url ("" for system search)
    resource_type: str | None
    restriction: Restriction | None
    allowed_types: frozenset[str] | None
    condition: Callable[[FromClause, Context], ColumnElement[bool]] | None = None
    extra_control: frozenset[str] = field(default_factory=frozenset)


class SearchService:
    def __init__(
        self,
        registry: Registry,
        signer: CursorSigner,
        *,
        default_count: int = 50,
        max_count: int = 1000,
        include_cap: int = 1000,
        clock: Clock | None = None,
    ) -> None:
        self.clock = clock or Clock()  # the composition root's; real time for a service built alone
        self.registry = registry
        self.signer = signer
        self.default_count = default_count
        self.max_count = max_count
        self.include_cap = include_cap

    # ---- public API --------------------------------------------------------------------------------------
    def search(
        self,
        conn: Connection,
        env: str,
        resource_type: str | None,
        params: Sequence[tuple[str, str]],
        *,
        base_url: str,
        strict: bool = False,
        restriction: Restriction | None = None,
        allowed_types: Collection[str] | None = None,
        page_token: str | None = None,
    ) -> SearchResult:
        """Type-level (`resource_type`) or system-level (`None`) search."""
        allowed = frozenset(allowed_types) if allowed_types is not None else None
        if resource_type is not None and allowed is not None and resource_type not in allowed:
            raise BadRequest(f"Searching {resource_type} is not allowed")
        scope = _Scope(
            f"search:{resource_type or ''}", resource_type or "", resource_type, restriction, allowed
        )
        return self._execute(conn, env, scope, params, base_url, strict, page_token)

    def search_compartment(
        self,
        conn: Connection,
        env: str,
        compartment: str,
        compartment_id: str,
        resource_type: str,
        params: Sequence[tuple[str, str]],
        *,
        base_url: str,
        strict: bool = False,
        restriction: Restriction | None = None,
        allowed_types: Collection[str] | None = None,
        page_token: str | None = None,
    ) -> SearchResult:
        """`GET [base]/Patient/[id]/[type]?...` (FHIR R4 §3.1.1.2, Patient compartment only)."""
        if compartment != "Patient":
            raise BadRequest(f"Compartment {compartment} is not supported (only Patient)")
        if resource_type not in compartment_types():
            raise BadRequest(f"{resource_type} is not in the Patient compartment")
        allowed = frozenset(allowed_types) if allowed_types is not None else None
        if allowed is not None and resource_type not in allowed:
            raise BadRequest(f"Searching {resource_type} is not allowed")
        membership = CompartmentMembership(compartment_id, env=env, base_url=base_url)
        combined = AllOf(membership, restriction)
        path = f"Patient/{compartment_id}/{resource_type}"
        scope = _Scope(f"compartment:{path}", path, resource_type, combined, allowed)
        return self._execute(conn, env, scope, params, base_url, strict, page_token)

    def match_ids(
        self,
        conn: Connection,
        env: str,
        resource_type: str,
        params: Sequence[tuple[str, str]],
        *,
        restriction: Restriction | None = None,
        base_url: str = "",
        limit: int = 2,
    ) -> list[str]:
        """Ids matching a conditional create/update/delete query (strict parsing; at most `limit`)."""
        parsed = parse_query(
            self.registry,
            resource_type,
            [(n, v) for n, v in params if n not in TRANSPORT_PARAMS],
            strict=True,
            default_count=self.default_count,
            max_count=self.max_count,
        )
        if not parsed.criteria:
            raise BadRequest("A conditional interaction needs search criteria")
        r = _MATCH
        ctx = Context(env, base_url, conn.dialect.name, restriction, None, self.clock.now_micros())
        where = self._where(r, ctx, parsed, None)
        rows = conn.execute(select(r.c.id).where(*where).order_by(r.c.rid).limit(limit))
        return [row.id for row in rows]

    def everything(
        self,
        conn: Connection,
        env: str,
        patient_id: str,
        params: Sequence[tuple[str, str]],
        *,
        base_url: str,
        restriction: Restriction | None = None,
        allowed_types: Collection[str] | None = None,
        page_token: str | None = None,
    ) -> SearchResult:
        """`Patient/[id]/$everything`: the compartment and the non-patient resources its members reference."""
        types = compartment_types() | non_patient_types()
        allowed = types & frozenset(allowed_types) if allowed_types is not None else types
        patient = fhir_resource.alias("p")
        ctx = Context(env, base_url, conn.dialect.name, restriction, allowed, self.clock.now_micros())
        found = conn.execute(
            select(patient.c.rid).where(
                patient.c.env == env,
                patient.c.type == "Patient",
                patient.c.id == patient_id,
                patient.c.deleted.is_(False),
                ctx.guard(patient, ("Patient",)),
            )
        ).first()
        if found is None:
            raise NotFound(f"Patient/{patient_id} is not known")
        issues: list[Issue] = []
        kept: list[tuple[str, str]] = []
        for name, value in params:
            if name in EVERYTHING_PARAMS or name in TRANSPORT_PARAMS:
                kept.append((name, value))
            else:
                issues.append(
                    Issue("warning", "not-supported", f"Ignored: {name} (not a $everything parameter)")
                )
        outside = non_patient_types()

        def extra(r: FromClause, ctx: Context) -> ColumnElement[bool]:
            # members, or non-patient resources that a member (which the restriction lets us see) refers to
            ref = idx_reference.alias()
            member = fhir_resource.alias()
            visible_members = select(member.c.rid).where(
                member.c.rid.in_(member_rids(env, patient_id, base_url=base_url)),
                member.c.deleted.is_(False),
                ctx.guard(member),
            )
            referenced = select(ref.c.target_type, ref.c.target_id).where(
                ref.c.rid.in_(visible_members), ref.c.target_type.in_(sorted(outside))
            )
            target = fhir_resource.alias()
            referenced_rids = select(target.c.rid).where(
                target.c.env == env, tuple_(target.c.type, target.c.id).in_(referenced)
            )
            # one IN over a UNION: a single semi-join, driven from the patient's references
            members = member_rids(env, patient_id, base_url=base_url)
            everything = union_all(members, referenced_rids).subquery()
            return r.c.rid.in_(select(everything.c.rid))

        path = f"Patient/{patient_id}/$everything"
        scope = _Scope(f"everything:{path}", path, None, restriction, allowed, extra, frozenset({"_since"}))
        result = self._execute(conn, env, scope, kept, base_url, False, page_token)
        result.issues[:0] = issues
        return result

    # ---- execution -------------------------------------------------------------------------------------
    def _execute(
        self,
        conn: Connection,
        env: str,
        scope: _Scope,
        params: Sequence[tuple[str, str]],
        base_url: str,
        strict: bool,
        page_token: str | None,
    ) -> SearchResult:
        base_url = base_url.rstrip("/")
        query_params = [(n, v) for n, v in params if n not in TRANSPORT_PARAMS]
        position: list[Any] | None = None
        backwards = False
        carried_total: int | None = None  # the count made for the first page, carried by the paging links
        restriction_key = scope.restriction.key if scope.restriction is not None else None
        allowed_key = _digest(sorted(scope.allowed_types)) if scope.allowed_types is not None else None
        if page_token:
            payload = self.signer.verify(page_token)
            if (
                payload.get("o") != scope.op
                or payload.get("e") != env
                or payload.get("r") != restriction_key
                or payload.get("a") != allowed_key
                or not isinstance(payload.get("k"), list)
            ):
                raise BadRequest("The paging link does not belong to this search")
            stored = [(str(n), str(v)) for n, v in payload.get("q", [])]
            if query_params and query_params != stored:
                raise BadRequest("The paging link does not match the search parameters sent with it")
            query_params, position, backwards = stored, payload["k"], payload.get("d") == "p"
            carried = payload.get("t")
            carried_total = carried if isinstance(carried, int) else None
        parsed = parse_query(
            self.registry,
            scope.resource_type,
            query_params,
            strict=strict,
            default_count=self.default_count,
            max_count=self.max_count,
            allowed_types=scope.allowed_types,
            extra_control=scope.extra_control,
        )
        if conn.dialect.name == "sqlite" and _uses_near(parsed):
            _ensure_sqlite_math(conn)
        r = _MATCH
        ctx = Context(
            env, base_url, conn.dialect.name, scope.restriction, scope.allowed_types, self.clock.now_micros()
        )
        where = self._where(r, ctx, parsed, scope)
        result = SearchResult(issues=list(parsed.issues), at=ctx.now)
        query_url = _url(base_url, scope.path, parsed.normalized)

        def token_url(rows: Sequence[_Row], direction: str) -> str:
            cursor = {
                "o": scope.op,
                "e": env,
                "r": restriction_key,
                "a": allowed_key,
                "q": [list(p) for p in parsed.normalized],
                "k": list(rows[0 if direction == "p" else -1].position),
                "d": direction,
                "t": result.total,
            }
            return _url(base_url, scope.path, [("_page_token", self.signer.sign(cursor))])

        count_only = parsed.count == 0 or parsed.summary == "count"
        rows: list[_Row] = []
        more = False
        if not count_only:
            rows, more = self._page(conn, r, ctx, parsed, where, position, backwards)
        if parsed.total != "none" or count_only:
            if position is None and not more and not count_only:
                result.total = len(rows)
            elif carried_total is not None and parsed.total != "accurate" and not count_only:
                result.total = carried_total
            else:
                counted = select(func.count()).select_from(select(r.c.rid).where(*where).subquery())
                result.total = int(conn.execute(counted).scalar_one())
        result.links.append(
            ("self", _url(base_url, scope.path, [("_page_token", page_token)]) if page_token else query_url)
        )
        has_next = bool(rows) and (more if not backwards else True)
        has_prev = bool(rows) and (more if backwards else position is not None)
        if page_token or has_next:
            result.links.append(("first", query_url))
        if has_next:
            result.links.append(("next", token_url(rows, "n")))
        if has_prev:
            result.links.append(("previous", token_url(rows, "p")))
        if rows:
            for row in rows:
                if row.content is not None:
                    body = subset(codec.decode(row.content), parsed.summary, parsed.elements)
                    result.matches.append(Entry(row.type, row.id, f"{base_url}/{row.type}/{row.id}", body))
            if parsed.includes:
                self._add_includes(conn, ctx, parsed, rows, result)
        return result

    def _where(
        self, r: FromClause, ctx: Context, parsed: ParsedQuery, scope: _Scope | None
    ) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = [r.c.env == ctx.env, r.c.deleted.is_(False)]
        if len(parsed.types) == 1:
            where.append(r.c.type == parsed.types[0])
        elif frozenset(parsed.types) != all_resource_types():
            where.append(r.c.type.in_(parsed.types))
        where.extend(criteria_clauses(parsed.criteria, r, ctx))
        where.append(ctx.guard(r, parsed.types))
        if scope is not None and scope.condition is not None:
            where.append(scope.condition(r, ctx))
        if parsed.since is not None:
            where.append(r.c.last_updated >= date_range(parsed.since)[0])
        return where

    def _page(
        self,
        conn: Connection,
        r: FromClause,
        ctx: Context,
        parsed: ParsedQuery,
        where: list[ColumnElement[bool]],
        position: list[Any] | None,
        backwards: bool,
    ) -> tuple[list[_Row], bool]:
        """One page in (sort keys…, rid) order, after (or before) `position`; and whether more rows follow."""
        sorts = [(key, *sort_value(key, r, ctx)) for key in parsed.sort]
        columns: list[tuple[Any, bool]] = []  # (expression, descending)
        if sorts:
            inner = select(
                r.c.rid, r.c.type, r.c.id, *(value.label(f"s{i}") for i, (_, value, _) in enumerate(sorts))
            ).where(*where)
            m = inner.subquery("m")
            for i, (key, _, default) in enumerate(sorts):
                raw = m.c[f"s{i}"]
                columns.append((case((raw.is_(None), 1), else_=0), False))  # missing values last
                columns.append((func.coalesce(raw, default), key.descending))
            columns.append((m.c.rid, False))
            query = select(
                m.c.rid, m.c.type, m.c.id, *(expr.label(f"k{i}") for i, (expr, _) in enumerate(columns))
            )
        else:  # the default order, by rid alone: no sort subquery to build (the common case, and cheaper)
            columns.append((r.c.rid, False))
            query = select(r.c.rid, r.c.type, r.c.id, r.c.rid.label("k0")).where(*where)
        if position is not None:
            if len(position) != len(columns):
                raise BadRequest("The paging link is invalid or has been altered")
            query = query.where(_beyond(columns, position, backwards))
        order = [(expr.asc() if desc == backwards else expr.desc()) for expr, desc in columns]
        page = query.order_by(*order).limit(parsed.count + 1).subquery("p")
        # The stored bytes join the page after LIMIT: one round trip, and content read only for the page.
        stored = _STORED
        keys = [page.c[f"k{i}"] for i in range(len(columns))]
        fetched = list(
            conn.execute(
                select(page.c.rid, page.c.type, page.c.id, *keys, stored.c.content)
                .join_from(page, stored, stored.c.rid == page.c.rid)
                .order_by(
                    *(
                        (key.asc() if desc == backwards else key.desc())
                        for key, (_, desc) in zip(keys, columns, strict=True)
                    )
                )
            ).all()
        )
        more = len(fetched) > parsed.count
        fetched = fetched[: parsed.count]
        if backwards:
            fetched.reverse()
        width = len(columns)
        rows = [_Row(f.rid, f.type, f.id, tuple(f[3 + i] for i in range(width)), f.content) for f in fetched]
        return rows, more

    # ---- _include / _revinclude ---------------------------------------------------------------------------
    def _add_includes(
        self, conn: Connection, ctx: Context, parsed: ParsedQuery, matches: list[_Row], result: SearchResult
    ) -> None:
        seen = {row.rid for row in matches}
        included: list[_Row] = []
        frontier = matches
        capped = False
        for iteration in range(MAX_INCLUDE_ITERATIONS + 1):
            specs = [s for s in parsed.includes if iteration == 0 or s.iterate]
            if not specs or not frontier:
                break
            found: list[_Row] = []
            for spec in specs:
                room = self.include_cap - len(included) - len(found)
                for row in self._include_rows(conn, ctx, spec, frontier, room + len(seen) + 1):
                    if row.rid not in seen:
                        seen.add(row.rid)
                        found.append(row)
            if len(included) + len(found) > self.include_cap:
                found = found[: self.include_cap - len(included)]
                capped = True
            included.extend(found)
            frontier = found
            if capped:
                break
        if capped:
            result.issues.append(
                Issue(
                    "warning",
                    "incomplete",
                    f"Included resources were capped at {self.include_cap} for this page; some were left out",
                )
            )
        stored = current_rows_by_rid(conn, [row.rid for row in included])
        for row in included:
            version = stored.get(row.rid)
            if version is not None and version.body is not None:
                result.included.append(
                    Entry(row.type, row.id, f"{ctx.base_url}/{row.type}/{row.id}", version.body)
                )

    def _include_rows(
        self, conn: Connection, ctx: Context, spec: IncludeSpec, frontier: list[_Row], limit: int
    ) -> list[_Row]:
        ref, other = _INCLUDE_REF, _INCLUDE_TARGET
        if not spec.reverse:
            sources = [row.rid for row in frontier if spec.source_type in (None, row.type)]
            if not sources:
                return []
            join = and_(
                other.c.env == ctx.env, other.c.type == ref.c.target_type, other.c.id == ref.c.target_id
            )
            query = select(other.c.rid, other.c.type, other.c.id).select_from(ref.join(other, join))
            query = query.where(ref.c.rid.in_(sources))
            if spec.code is not None and spec.source_type is not None:
                query = query.where(ref.c.hkey == index_key(ctx.env, spec.source_type, spec.code))
            if spec.target_type is not None:
                query = query.where(ref.c.target_type == spec.target_type)
        else:
            by_type: dict[str, list[str]] = {}
            for row in frontier:
                if spec.target_type in (None, row.type):
                    by_type.setdefault(row.type, []).append(row.id)
            if not by_type:
                return []
            targets = or_(
                *(and_(ref.c.target_type == t, ref.c.target_id.in_(ids)) for t, ids in by_type.items())
            )
            query = select(other.c.rid, other.c.type, other.c.id).select_from(
                ref.join(other, other.c.rid == ref.c.rid)
            )
            query = query.where(targets, other.c.env == ctx.env)
            if spec.code is not None and spec.source_type is not None:
                query = query.where(ref.c.hkey == index_key(ctx.env, spec.source_type, spec.code))
            elif spec.source_type is not None:
                query = query.where(other.c.type == spec.source_type)
        known = spec.source_type if spec.reverse else spec.target_type
        query = query.where(other.c.deleted.is_(False), ctx.guard(other, (known,) if known else None))
        query = query.distinct().order_by(other.c.rid).limit(limit)
        return [_Row(row.rid, row.type, row.id) for row in conn.execute(query)]


# ---- helpers ---------------------------------------------------------------------------------------------


def _beyond(columns: list[tuple[Any, bool]], position: Sequence[Any], backwards: bool) -> ColumnElement[bool]:
    """Rows strictly after (or before) `position` in the order given by `columns`."""
    alternatives = []
    for i, (expr, desc) in enumerate(columns):
        later = expr < position[i] if desc != backwards else expr > position[i]
        alternatives.append(and_(*(columns[j][0] == position[j] for j in range(i)), later))
    return or_(*alternatives)


def _digest(names: Sequence[str]) -> str:
    """A short fingerprint of the allowed types, so that cursors stay small under wide SMART scopes."""
    return hashlib.sha256(",".join(names).encode()).hexdigest()[:24]


def _url(base_url: str, path: str, params: Sequence[tuple[str, str]]) -> str:
    head = f"{base_url}/{path}" if path else base_url
    return f"{head}?{urlencode(list(params))}" if params else head


def _uses_near(parsed: ParsedQuery) -> bool:
    return any(isinstance(node, Leaf) and node.kind == "special" for node in parsed.criteria)


def _ensure_sqlite_math(conn: Connection) -> None:
    """SQLite builds without SQLITE_ENABLE_MATH_FUNCTIONS lack sin/cos/radians/power: add them."""
    try:
        conn.exec_driver_sql("SELECT radians(1), sin(1), cos(1), power(2, 2)").all()
    except OperationalError:
        import math

        raw: Any = conn.connection.driver_connection
        raw.create_function("radians", 1, math.radians, deterministic=True)
        raw.create_function("sin", 1, math.sin, deterministic=True)
        raw.create_function("cos", 1, math.cos, deterministic=True)
        raw.create_function("power", 2, math.pow, deterministic=True)
