"""The SQL of a search's page, its count and its includes (executed by `openpayer.fhir.search.service`).

A page is "the `_count` + 1 rows after (or before) a position" in the order (sort keys…, rid), with the stored
bytes joined after `LIMIT`; the first page counts its matches in the same statement (`count(*) OVER ()`).
An include statement finds the targets (or, reversed, the referrers) of a set of rows, with their bytes.

**Folded includes** (PostgreSQL, index-driven first pages, `openpayer.fhir.search.driven`): the rows of the
search's first forward `_include` come in the page's own statement, after the page's rows (`part` 1): the
page is a CTE, and the include reads its sources from it. One statement, one round trip and one planning
instead of two. The include's `LIMIT` there is `cap + _count + 1`, not `cap + matches + 1`: a larger limit
of a statement in rid order only adds rows after those the service keeps (it drops the page's own matches
and cuts at the cap), so the entries are the same.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Executable,
    FromClause,
    Integer,
    Select,
    and_,
    bindparam,
    case,
    func,
    literal_column,
    null,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import distinct_on

from openpayer.db import DriverStatement
from openpayer.fhir.search.driven import index_driven_page
from openpayer.fhir.search.params import IncludeSpec, ParsedQuery, all_resource_types
from openpayer.fhir.search.sql import Context, criteria_clauses, sort_value
from openpayer.fhir.search.values import date_range
from openpayer.fhir.storage.tables import fhir_resource, idx_reference, index_key

# Aliases are immutable and reused by every query: building one per request populates its column
# collection again (measured: a tenth of a member search's time).
MATCH = fhir_resource.alias("r")
STORED = fhir_resource.alias("c")
_INCLUDE_REF = idx_reference.alias("iref")  # one pair per include statement
_INCLUDE_TARGET = fhir_resource.alias("itarget")
MATCH.c, STORED.c, _INCLUDE_REF.c, _INCLUDE_TARGET.c  # noqa: B018  (populated before threads share them)

Condition = Callable[[FromClause, Context], ColumnElement[bool]]


@dataclass(frozen=True, slots=True)
class Row:
    rid: int
    type: str
    id: str
    position: tuple[Any, ...] = ()
    content: bytes | None = None  # compressed bytes, when the page query fetched them


@dataclass(frozen=True, slots=True)
class PageStatement:
    """A page statement and the include folded into it (its rows follow the page's, `part` 1), if any;
    `driver` runs it again with other values without SQLAlchemy's per-execution work (PostgreSQL)."""

    statement: Select[Any]
    folded: IncludeSpec | None = None
    driver: DriverStatement = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "driver", DriverStatement(self.statement))


def foldable_include(ctx: Context, parsed: ParsedQuery) -> int | None:
    """The index in `parsed.includes` of the include a first page may fold: the first forward one whose
    source type is the searched type (PostgreSQL; whether the page is index-driven is decided when built)."""
    if ctx.dialect != "postgresql" or len(parsed.types) != 1 or ctx.restriction is not None:
        return None
    for i, spec in enumerate(parsed.includes):
        if not spec.reverse and spec.source_type in (None, parsed.types[0]):
            return i
    return None


def where(
    r: FromClause, ctx: Context, parsed: ParsedQuery, condition: Condition | None
) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = [r.c.env == ctx.env, r.c.deleted.is_(False)]
    if len(parsed.types) == 1:
        out.append(r.c.type == parsed.types[0])
    elif frozenset(parsed.types) != all_resource_types():
        out.append(r.c.type.in_(parsed.types))
    out.extend(criteria_clauses(parsed.criteria, r, ctx))
    out.append(ctx.guard(r, parsed.types))
    if condition is not None:
        out.append(condition(r, ctx))
    if parsed.since is not None:
        out.append(r.c.last_updated >= ctx.bind([date_range(parsed.since)[0]])[0])
    return out


def count_query(ctx: Context, parsed: ParsedQuery, condition: Condition | None) -> Executable:
    r = MATCH
    return select(func.count()).select_from(
        select(r.c.rid).where(*where(r, ctx, parsed, condition)).subquery()
    )


def page_query(
    ctx: Context,
    parsed: ParsedQuery,
    condition: Condition | None,
    position: list[Any] | None,
    backwards: bool,
    with_total: bool,
    fold: IncludeSpec | None = None,
    include_cap: int = 0,
) -> PageStatement:
    """The page's statement: rid, type, id, the sort keys k0…, content, [total]; with `fold` (a first page),
    the include's rows are folded in when the page is index-driven (then `part` comes first)."""
    if with_total and not parsed.sort and ctx.dialect == "postgresql" and condition is None:
        # SQLite keeps its own plan: one criterion drives and the others probe (`criteria_clauses`)
        include = None
        if fold is not None and position is None:
            limit = include_cap + parsed.count + 1

            def include(sources: Select[Any]) -> Select[Any]:
                return _folded_include(ctx, fold, sources, limit)

        driven = index_driven_page(ctx, parsed, STORED, position, backwards, include)
        if driven is not None:
            return PageStatement(driven, fold if include is not None else None)
    r = MATCH
    conditions = where(r, ctx, parsed, condition)
    sorts = [(key, *sort_value(key, r, ctx)) for key in parsed.sort]
    columns: list[tuple[Any, bool]] = []  # (expression, descending)
    total = [func.count().over().label("total")] if with_total else []
    # PostgreSQL: with the count, every match is read; `OFFSET 0` keeps the matching planned as a whole
    # (as the count alone would be), not as a walk in rid order that the LIMIT above it would favour
    # (measured: `Practitioner?name=rob` merged 49,903 Practitioner rows, 2.4 ms -> 44 ms).
    fence = with_total and ctx.dialect == "postgresql"
    if sorts:
        inner = select(
            r.c.rid,
            r.c.type,
            r.c.id,
            *(value.label(f"s{i}") for i, (_, value, _) in enumerate(sorts)),
            *total,
        ).where(*conditions)
        m = (inner.offset(0) if fence else inner).subquery("m")
        for i, (key, _, default) in enumerate(sorts):
            raw = m.c[f"s{i}"]
            columns.append((case((raw.is_(None), 1), else_=0), False))  # missing values last
            columns.append((func.coalesce(raw, default), key.descending))
        columns.append((m.c.rid, False))
        query = select(
            m.c.rid,
            m.c.type,
            m.c.id,
            *(expr.label(f"k{i}") for i, (expr, _) in enumerate(columns)),
            *([m.c.total] if with_total else []),
        )
    else:  # the default order, by rid alone: no sort subquery to build (the common case, and cheaper)
        if fence:
            m = select(r.c.rid, r.c.type, r.c.id).where(*conditions).offset(0).subquery("m")
            columns.append((m.c.rid, False))
            query = select(m.c.rid, m.c.type, m.c.id, m.c.rid.label("k0"), *total)
        else:
            columns.append((r.c.rid, False))
            query = select(r.c.rid, r.c.type, r.c.id, r.c.rid.label("k0"), *total).where(*conditions)
    if position is not None:
        query = query.where(_beyond(columns, ctx.bind(position), backwards))
    order = [(expr.asc() if desc == backwards else expr.desc()) for expr, desc in columns]
    page = query.order_by(*order).limit(parsed.count + 1).subquery("p")
    # The stored bytes join the page after LIMIT: one round trip, and content read only for the page.
    stored = STORED
    keys = [page.c[f"k{i}"] for i in range(len(columns))]
    return PageStatement(
        select(
            page.c.rid,
            page.c.type,
            page.c.id,
            *keys,
            stored.c.content,
            *([page.c.total] if with_total else []),
        )
        .join_from(page, stored, stored.c.rid == page.c.rid)
        .order_by(
            *(
                (key.asc() if desc == backwards else key.desc())
                for key, (_, desc) in zip(keys, columns, strict=True)
            )
        )
    )


def include_query(
    ctx: Context,
    spec: IncludeSpec,
    by_type: dict[str, list[str]] | None,
    sources: Select[Any] | None = None,
    limit: int | None = None,
) -> Select[Any]:
    """Forward (`by_type` None): the targets of the references of `sources` (default: the rids bound as
    `sources`); reverse: the resources referring to the (type, ids) of `by_type`. At most `limit` (default:
    bound as `limit`) rows, in rid order, with their stored bytes: rid, type, id, content."""
    ref, other = _INCLUDE_REF, _INCLUDE_TARGET
    if by_type is None:
        # The target by its rid (`target_rid`, found within the environment when the reference was written).
        query = select(other.c.rid, other.c.type, other.c.id).select_from(
            ref.join(other, other.c.rid == ref.c.target_rid)
        )
        query = query.where(
            ref.c.rid.in_(bindparam("sources", expanding=True) if sources is None else sources)
        )
        if spec.code is not None and spec.source_type is not None:
            query = query.where(ref.c.hkey == index_key(ctx.env, spec.source_type, spec.code))
        if spec.target_type is not None:
            query = query.where(ref.c.target_type == spec.target_type)
    else:
        targets = or_(*(and_(ref.c.target_type == t, ref.c.target_id.in_(ids)) for t, ids in by_type.items()))
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
    cut = bindparam("limit", type_=Integer) if limit is None else limit
    if ctx.dialect == "postgresql":
        # DISTINCT ON the rid carries the row's stored bytes along, compared by rid alone: no second read
        # of each row by its key, and one table fewer to plan (docs/performance.md, Search, "Ninth session").
        with_content = query.add_columns(other.c.content).ext(distinct_on(other.c.rid))
        return with_content.order_by(other.c.rid).limit(cut)
    found = query.distinct().order_by(other.c.rid).limit(cut).subquery("i")
    # The stored bytes join after DISTINCT and LIMIT, as for the page: the same round trip.
    stored = STORED
    return (
        select(found.c.rid, found.c.type, found.c.id, stored.c.content)
        .join_from(found, stored, stored.c.rid == found.c.rid)
        .order_by(found.c.rid)
    )


def _folded_include(ctx: Context, spec: IncludeSpec, sources: Select[Any], limit: int) -> Select[Any]:
    """The include's rows as the second part of a folded page: part, rid, type, id, k0 (the rid), content,
    total (NULL)."""
    found = include_query(ctx, spec, None, sources, limit).subquery("inc")
    return select(
        literal_column("1", Integer).label("part"),
        found.c.rid,
        found.c.type,
        found.c.id,
        found.c.rid.label("k0"),
        found.c.content,
        null().cast(BigInteger).label("total"),
    )


def _beyond(columns: list[tuple[Any, bool]], position: Sequence[Any], backwards: bool) -> ColumnElement[bool]:
    """Rows strictly after (or before) `position` in the order given by `columns`."""
    alternatives = []
    for i, (expr, desc) in enumerate(columns):
        later = expr < position[i] if desc != backwards else expr > position[i]
        alternatives.append(and_(*(columns[j][0] == position[j] for j in range(i)), later))
    return or_(*alternatives)
