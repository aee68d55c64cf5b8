"""Executing searches: matches, sort, keyset paging, totals, includes; type, system and compartment level.

Paging is keyset, never OFFSET: a page is "the `_count` rows after (or before) this position" in the order
(sort keys…, rid), and the position travels in a signed cursor together with the normalised query, the
environment, the restriction's identity and the allowed types. Writes between pages therefore neither skip
nor repeat rows that did not change, and a cursor cannot be replayed with another query, patient or scope.

Totals: `_total=none` gives none; otherwise the first page counts every match exactly, in its own query
(`count(*) OVER ()`, no second statement). Later pages repeat the first page's count, carried (signed) in
their paging links, so a client paging through a large result does not pay for a count per page;
`_total=accurate` counts again on every page (the carried figure does not see writes made since the first
page), as do `_summary=count` and `_count=0`, with a COUNT over the same WHERE.

Statements: a search without a restriction is built once per query shape and reused with other values
(`openpayer.fhir.search.statements`). Includes fetch their resources' bytes in the statement that finds
them; an index-driven first page brings its first forward `_include` in its own statement
(`openpayer.fhir.search.pages`, which builds the page, count and include statements).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Collection, Hashable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar
from urllib.parse import urlencode

from sqlalchemy import Connection, FromClause, select, tuple_, union_all
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
from openpayer.fhir.search.pages import (
    MATCH,
    Condition,
    Row,
    count_query,
    foldable_include,
    include_query,
    page_query,
    where,
)
from openpayer.fhir.search.params import (
    MAX_INCLUDE_ITERATIONS,
    TRANSPORT_PARAMS,
    IncludeSpec,
    Leaf,
    ParsedQuery,
    Registry,
    parse_query,
)
from openpayer.fhir.search.sql import (
    Binder,
    Context,
    Restriction,
    criteria_plan,
)
from openpayer.fhir.search.statements import StatementCache
from openpayer.fhir.search.values import date_range
from openpayer.fhir.storage import codec
from openpayer.fhir.storage.tables import fhir_resource, idx_reference

_S = TypeVar("_S")

EVERYTHING_PARAMS = frozenset({"_since", "_type", "_count", "_summary", "_elements", "_total"})


@dataclass(slots=True)
class _Scope:
    op: str  # what the cursor is valid for, e.g. "search:Observation"
    path: str  # the link path under base_url ("" for system search)
    resource_type: str | None
    restriction: Restriction | None
    allowed_types: frozenset[str] | None
    condition: Condition | None = None
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
        fold_includes: bool = True,
    ) -> None:
        self.clock = clock or Clock()  # the composition root's; real time for a service built alone
        self.registry = registry
        self.signer = signer
        self.default_count = default_count
        self.max_count = max_count
        self.include_cap = include_cap
        self.fold_includes = fold_includes
        self.statements = StatementCache()

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
        r = MATCH
        ctx = Context(env, base_url, conn.dialect.name, restriction, None, self.clock.now_micros())
        rows = conn.execute(select(r.c.id).where(*where(r, ctx, parsed, None)).order_by(r.c.rid).limit(limit))
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
        ctx = Context(
            env, base_url, conn.dialect.name, scope.restriction, scope.allowed_types, self.clock.now_micros()
        )
        result = SearchResult(issues=list(parsed.issues), at=ctx.now)
        query_url = _url(base_url, scope.path, parsed.normalized)

        def token_url(rows: Sequence[Row], direction: str) -> str:
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
        # The first page counts its matches in the page query itself (`count(*) OVER ()`): the matches are
        # all read to sort them or to count them anyway, and the count's round trip and planning are saved.
        # Not without criteria: there the page is a walk of the type's rows in rid order that stops after
        # `_count`, and a count alone is cheaper than counting and sorting them all (`Practitioner?_count=50`
        # over 50,000: 32 ms with a COUNT of its own, 59 ms in the page query).
        with_total = position is None and not count_only and parsed.total != "none" and bool(parsed.criteria)
        plan = self._plan(ctx, parsed, scope)
        rows: list[Row] = []
        more = False
        counted: int | None = None
        folded: tuple[int, list[Row]] | None = None
        if not count_only:
            rows, more, counted, folded = self._page(
                conn, ctx, plan, parsed, scope, position, backwards, with_total
            )
        if parsed.total != "none" or count_only:
            if position is None and not more and not count_only:
                result.total = len(rows)
            elif counted is not None:
                result.total = counted
            elif carried_total is not None and parsed.total != "accurate" and not count_only:
                result.total = carried_total
            else:
                shape = ("count", parsed.types, parsed.since is not None)
                statement, values = self._statement(
                    ctx, plan, shape, (), lambda c: count_query(c, parsed, scope.condition)
                )
                result.total = int(conn.execute(statement, values).scalar_one())
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
                self._add_includes(conn, ctx, parsed, rows, result, folded)
        return result

    # ---- statements built once per query shape ----------------------------------------------------------
    def _plan(self, ctx: Context, parsed: ParsedQuery, scope: _Scope) -> tuple[Hashable, list[Any]] | None:
        """(the shape of the search's WHERE, its values in binding order), or None: built per request."""
        if scope.restriction is not None or scope.condition is not None:
            return None
        planned = criteria_plan(parsed.criteria, ctx)
        if planned is None:
            return None
        shape, values = planned
        if parsed.since is not None:
            values.append(date_range(parsed.since)[0])
        key = (ctx.dialect, ctx.env, ctx.base_url, ctx.allowed_types, shape)
        return key, values

    def _statement(
        self,
        ctx: Context,
        plan: tuple[Hashable, list[Any]] | None,
        shape: Hashable,
        extra: Sequence[Any],
        build: Callable[[Context], _S],
    ) -> tuple[_S, dict[str, Any]]:
        """The statement for this search and the parameters to run it with: from the cache when its shape
        was built before; otherwise built (and kept when its values were bound as the plan said)."""
        if plan is None:
            return build(ctx), {}
        key = (plan[0], shape)
        values = [*plan[1], *extra]
        statement = self.statements.get(key)
        if statement is not None:
            return statement, {f"v{i}": value for i, value in enumerate(values)}
        binder = Binder()
        statement = build(replace(ctx, serial=itertools.count(), binder=binder))
        if binder.values == values:  # otherwise the plan missed a value: never reuse this statement
            self.statements.put(key, statement)
        return statement, {}

    def _page(
        self,
        conn: Connection,
        ctx: Context,
        plan: tuple[Hashable, list[Any]] | None,
        parsed: ParsedQuery,
        scope: _Scope,
        position: list[Any] | None,
        backwards: bool,
        with_total: bool,
    ) -> tuple[list[Row], bool, int | None, tuple[int, list[Row]] | None]:
        """One page in (sort keys…, rid) order, after (or before) `position`; whether more rows follow; the
        count of every match when `with_total`; and the rows of the include folded into the page's statement
        (its index in `parsed.includes`), if one was."""
        width = len(parsed.sort) * 2 + 1
        if position is not None and len(position) != width:
            raise BadRequest("The paging link is invalid or has been altered")
        shape: tuple[Hashable, ...] = (
            "page",
            parsed.types,
            parsed.since is not None,
            tuple(parsed.sort),
            parsed.count,
            None if position is None else tuple(type(v) for v in position),
            backwards,
            with_total,
        )
        fold = None
        if with_total and self.fold_includes and parsed.includes:
            fold = foldable_include(ctx, parsed)
            shape = (*shape, None if fold is None else (parsed.includes[fold], self.include_cap))
        page, values = self._statement(
            ctx,
            plan,
            shape,
            position or (),
            lambda c: page_query(
                c,
                parsed,
                scope.condition,
                position,
                backwards,
                with_total,
                None if fold is None else parsed.includes[fold],
                self.include_cap,
            ),
        )
        fetched: list[Any]
        if values and page.driver.runs_on(conn, values):  # a cached shape, its values given: on psycopg
            fetched = page.driver.rows(conn, values)
        else:
            fetched = list(conn.execute(page.statement, values).all())
        folded: tuple[int, list[Row]] | None = None
        if page.folded is not None and fold is not None:
            # part 0: the page's rows, then part 1: the include's (ordered by part, then key)
            split = next((i for i, f in enumerate(fetched) if f[0] == 1), len(fetched))
            folded = (fold, [Row(f[1], f[2], f[3], (), f[5]) for f in fetched[split:]])
            fetched = [f[1:] for f in fetched[:split]]
        more = len(fetched) > parsed.count
        counted = int(fetched[0][-1]) if with_total and fetched else None
        fetched = fetched[: parsed.count]
        if backwards:
            fetched.reverse()
        rows = [Row(f[0], f[1], f[2], tuple(f[3 + i] for i in range(width)), f[3 + width]) for f in fetched]
        return rows, more, counted, folded

    # ---- _include / _revinclude ---------------------------------------------------------------------------
    def _add_includes(
        self,
        conn: Connection,
        ctx: Context,
        parsed: ParsedQuery,
        matches: list[Row],
        result: SearchResult,
        folded: tuple[int, list[Row]] | None = None,
    ) -> None:
        """Includes in rounds (`:iterate` ones again on what the last round added), each include's rows in
        rid order, without the page's matches or repeats, at most `include_cap`; the rows of a `folded`
        include (first round) came with the page."""
        seen = {row.rid for row in matches}
        included: list[Row] = []
        frontier = matches
        capped = False
        for iteration in range(MAX_INCLUDE_ITERATIONS + 1):
            specs = [s for s in parsed.includes if iteration == 0 or s.iterate]
            if not specs or not frontier:
                break
            found: list[Row] = []
            for index, spec in enumerate(specs):
                if iteration == 0 and folded is not None and index == folded[0]:
                    fetched = folded[1]
                else:
                    room = self.include_cap - len(included) - len(found)
                    fetched = self._include_rows(conn, ctx, spec, frontier, room + len(seen) + 1)
                for row in fetched:
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
        for row in included:
            if row.content is not None:
                body = codec.decode(row.content)
                result.included.append(Entry(row.type, row.id, f"{ctx.base_url}/{row.type}/{row.id}", body))

    def _include_rows(
        self, conn: Connection, ctx: Context, spec: IncludeSpec, frontier: list[Row], limit: int
    ) -> list[Row]:
        """The resources `spec` adds for `frontier` (at most `limit`, in rid order), with their stored bytes:
        one statement, built once per include and environment when no restriction applies."""
        if not spec.reverse:
            sources = [row.rid for row in frontier if spec.source_type in (None, row.type)]
            if not sources:
                return []
            key = ("include", ctx.dialect, ctx.env, ctx.allowed_types, spec)
            statement = self.statements.get(key) if ctx.restriction is None else None
            if statement is None:
                statement = include_query(ctx, spec, None)
                if ctx.restriction is None:
                    self.statements.put(key, statement)
            params: dict[str, Any] = {"sources": sources, "limit": limit}
        else:
            by_type: dict[str, list[str]] = {}
            for row in frontier:
                if spec.target_type in (None, row.type):
                    by_type.setdefault(row.type, []).append(row.id)
            if not by_type:
                return []
            statement, params = include_query(ctx, spec, by_type), {"limit": limit}
        return [Row(row[0], row[1], row[2], (), row[3]) for row in conn.execute(statement, params)]


# ---- helpers ---------------------------------------------------------------------------------------------


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
