"""SQL for search criteria: one boolean clause per criterion, over an alias of `fhir_resource`.

Every criterion on an indexed parameter is `r.rid IN (SELECT rid FROM fhir_idx_<type> WHERE hkey = :k AND
<value predicate>)`, so that both databases drive the lookup from the `(hkey, value)` indexes; negations
(`:not`, `:not-in`, `:missing=true`) are `NOT EXISTS` anti-joins. Chains join `fhir_idx_reference` to the
target row; `_has` joins it back from the referring row. The caller's `Restriction` and allowed types guard
every resource row a branch reads (the chained target, the `_has` source), not only the matches.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Protocol

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Table,
    and_,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    tuple_,
)

from openpayer.fhir.errors import BadRequest
from openpayer.fhir.search.params import Chain, Has, Leaf, Node, SortKey
from openpayer.fhir.search.values import (
    NumberSearch,
    TokenSearch,
    date_range,
    like_escape,
    normalize_string,
    parse_near,
    parse_number,
    parse_quantity,
    parse_reference,
    parse_token,
    split_escaped,
    split_prefix,
    unescape,
)
from openpayer.fhir.search.valuesets import expand
from openpayer.fhir.storage.tables import (
    fhir_resource,
    idx_date,
    idx_number,
    idx_quantity,
    idx_reference,
    idx_special,
    idx_string,
    idx_token,
    idx_uri,
    index_key,
)

TABLES: dict[str, Table] = {
    "string": idx_string,
    "token": idx_token,
    "date": idx_date,
    "number": idx_number,
    "quantity": idx_quantity,
    "reference": idx_reference,
    "uri": idx_uri,
    "special": idx_special,
}
EARTH_KM = 6371.0088


class Restriction(Protocol):
    """An outside filter (e.g. a SMART patient compartment) applied inside the SQL of every branch."""

    @property
    def key(self) -> str:
        """A stable identity, signed into paging cursors so they cannot be replayed under another."""
        ...

    def clause(self, resource: FromClause) -> ColumnElement[bool]:
        """The condition on an alias of `fhir_resource`."""
        ...


def restriction_clause(
    restriction: Restriction, resource: FromClause, types: Collection[str] | None
) -> ColumnElement[bool]:
    """`restriction.clause(resource)`, or its optional `clause_for_types(resource, types)` when the types
    `resource` can have are known (a narrower clause lets the database drive the query from it)."""
    narrowed = getattr(restriction, "clause_for_types", None)
    if types is not None and narrowed is not None:
        clause: ColumnElement[bool] = narrowed(resource, types)
        return clause
    return restriction.clause(resource)


def admits_older_version(restriction: Restriction, resource: dict[str, Any]) -> bool:
    """Whether an older version's content satisfies `restriction`, whose SQL only sees current rows.

    A resource can move between compartments (a subject corrected from one member to another); its older
    versions then belong to someone else. A restriction tells through its optional `admits(resource)`;
    one that cannot tell admits no older version.
    """
    admits = getattr(restriction, "admits", None)
    return bool(admits(resource)) if admits is not None else False


@dataclass(frozen=True, slots=True)
class Context:
    env: str
    base_url: str
    dialect: str
    restriction: Restriction | None
    allowed_types: frozenset[str] | None
    now: int  # microseconds, for `ap` on dates
    # Numbers the chain and `_has` subqueries of one statement, so each gets aliases of its own.
    serial: itertools.count[int] = field(default_factory=itertools.count, compare=False)

    def aliases(self) -> tuple[FromClause, FromClause]:
        """An (index reference, resource) alias pair unique within the statement, built once per process."""
        return _numbered_aliases(next(self.serial))

    def hkeys(self, types: Sequence[str], code: str) -> list[int]:
        return [index_key(self.env, t, code) for t in types]

    def guard(self, resource: FromClause, types: Collection[str] | None = None) -> ColumnElement[bool]:
        """Restriction and allowed types on a resource row that a branch reads (of `types` when known)."""
        parts: list[ColumnElement[bool]] = []
        if self.allowed_types is not None:
            if types is None:
                parts.append(resource.c.type.in_(sorted(self.allowed_types)))
            elif not set(types) <= self.allowed_types:
                parts.append(resource.c.type.in_(sorted(self.allowed_types & set(types))))
        if self.restriction is not None:
            parts.append(restriction_clause(self.restriction, resource, types))
        return and_(true(), *parts)

    def text(self, column: Any) -> Any:
        """A string column compared/sorted byte-wise on both databases."""
        return column.collate("C") if self.dialect == "postgresql" else column


def _hk(column: Any, keys: list[int]) -> ColumnElement[bool]:
    return column == keys[0] if len(keys) == 1 else column.in_(keys)


def criteria_clauses(nodes: Sequence[Node], r: FromClause, ctx: Context) -> list[ColumnElement[bool]]:
    """The ANDed criteria of a search; on SQLite one drives and the other plain criteria probe by rid."""
    if ctx.dialect != "sqlite" or len(nodes) < 2:
        return [node_clause(node, r, ctx) for node in nodes]
    ranks = [drive_order(node) for node in nodes]
    driver = ranks.index(min(ranks))
    if ranks[driver] == 9:
        return [node_clause(node, r, ctx) for node in nodes]
    return [
        node_clause(node, r, ctx, probe=i != driver and ranks[i] < 9 and isinstance(node, Leaf))
        for i, node in enumerate(nodes)
    ]


def node_clause(node: Node, r: FromClause, ctx: Context, probe: bool = False) -> ColumnElement[bool]:
    if isinstance(node, Leaf):
        return leaf_clause(node, r, ctx, probe)
    if isinstance(node, Chain):
        return _chain(node, r, ctx)
    return _has(node, r, ctx)


@cache
def _numbered_aliases(n: int) -> tuple[FromClause, FromClause]:
    """Aliases are immutable and may be shared by statements; building one per subquery per request
    populated its column collection again and again (a third of a chained directory search's time)."""
    ref, resource = idx_reference.alias(f"ref{n}"), fhir_resource.alias(f"res{n}")
    ref.c, resource.c  # noqa: B018  (populated once, before threads share them)
    return ref, resource


def _chain(node: Chain, r: FromClause, ctx: Context) -> ColumnElement[bool]:
    ref, t = ctx.aliases()
    branches = [and_(ref.c.target_type == ttype, node_clause(inner, t, ctx)) for ttype, inner in node.targets]
    sub = (
        select(ref.c.rid)
        .select_from(
            ref.join(t, and_(t.c.env == ctx.env, t.c.type == ref.c.target_type, t.c.id == ref.c.target_id))
        )
        .where(_hk(ref.c.hkey, ctx.hkeys(node.types, node.code)), t.c.deleted.is_(False), or_(*branches))
        .where(ctx.guard(t, [ttype for ttype, _ in node.targets]))
    )
    return r.c.rid.in_(sub)


def _has(node: Has, r: FromClause, ctx: Context) -> ColumnElement[bool]:
    ref, s = ctx.aliases()
    # (type, id) IN (...): not correlated, so both databases can drive from the referring side's index.
    sub = (
        select(ref.c.target_type, ref.c.target_id)
        .select_from(ref.join(s, s.c.rid == ref.c.rid))
        .where(
            ref.c.hkey == index_key(ctx.env, node.source_type, node.ref_code),
            s.c.deleted.is_(False),
            node_clause(node.inner, s, ctx),
            ctx.guard(s, (node.source_type,)),
        )
    )
    return tuple_(r.c.type, r.c.id).in_(sub)


# ---- leaves ----------------------------------------------------------------------------------------------


# SQLite: which criterion of several drives the match (lower first). SQLite evaluates every
# `rid IN (subquery)` by materialising the subquery, so `Observation?patient=X&category=laboratory&date=ge...`
# listed every laboratory result and every date of the store (50-70 ms at 90,000 resources). One criterion,
# the likeliest to be selective, stays `IN`; the others become probes of the index table by rid.
_DRIVE_RANK = {"reference": 0, "string": 2, "uri": 2, "token": 3, "special": 3}


def drive_order(node: Node) -> int:
    """Rank of a criterion as the driver of a match on SQLite; 9: it cannot drive."""
    if isinstance(node, Leaf):
        if node.kind == "id" and node.modifier is None:
            return -1  # ids reach their rows through (env, type, id): everything else can probe
        if node.modifier in ("missing", "not", "not-in") or node.kind in ("id", "lastUpdated"):
            return 9  # not an index-table lookup of its own (or already a probe)
        if node.kind == "token" and any("|" in v for v in node.values):
            return 1  # system|code: identifiers (a bare code is often a category, gender or status)
        return _DRIVE_RANK.get(node.kind, 4)
    return 5  # chains and _has: a join of their own; let a plain criterion drive


def leaf_clause(leaf: Leaf, r: FromClause, ctx: Context, probe: bool = False) -> ColumnElement[bool]:
    """`probe`: test the resource's own index rows (by rid) instead of listing every matching rid."""
    if leaf.kind == "id":
        return _id_clause(leaf, r)
    if leaf.kind == "lastUpdated":
        if leaf.modifier == "missing":
            return false() if leaf.values[0] == "true" else true()
        return or_(*(_date_pred(r.c.last_updated, r.c.last_updated, v, ctx) for v in leaf.values))
    if leaf.kind == "composite":
        return _composite(leaf, r, ctx)
    if leaf.kind == "list":
        return _list_clause(leaf, r, ctx)
    table = TABLES[leaf.kind]
    keys = ctx.hkeys(leaf.types, leaf.code)
    if leaf.modifier == "missing":
        present = exists(select(literal(1)).where(table.c.rid == r.c.rid, _hk(table.c.hkey, keys)))
        return not_(present) if leaf.values[0] == "true" else present
    if leaf.kind == "token" and leaf.modifier == "of-type":
        keys = ctx.hkeys(leaf.types, f"{leaf.code}|of-type")
    negate = leaf.modifier in ("not", "not-in")
    preds = [_value_pred(leaf.kind, table, leaf.modifier, v, ctx) for v in leaf.values]
    if probe and not negate:  # `hkey + 0`: SQLite may then only reach the rows through the rid index
        hkey = table.c.hkey + 0
        key_match = hkey == keys[0] if len(keys) == 1 else hkey.in_(keys)
        return exists(select(literal(1)).where(table.c.rid == r.c.rid, key_match, or_(*preds)))
    condition = and_(_hk(table.c.hkey, keys), or_(*preds))
    if negate:
        return not_(exists(select(literal(1)).where(table.c.rid == r.c.rid, condition)))
    return r.c.rid.in_(select(table.c.rid).where(condition))


def _list_clause(leaf: Leaf, r: FromClause, ctx: Context) -> ColumnElement[bool]:
    """`_list=X`: the items of List/X (`List.entry.item`, FHIR R4 §3.1.1.4.3), read through the List's
    `item` index rows; the List itself must be one the request may read (the restriction applies to it)."""
    ref, lst = ctx.aliases()
    sub = (
        select(ref.c.target_type, ref.c.target_id)
        .select_from(ref.join(lst, lst.c.rid == ref.c.rid))
        .where(
            lst.c.env == ctx.env,
            lst.c.type == "List",
            lst.c.id.in_(leaf.values),
            lst.c.deleted.is_(False),
            ref.c.hkey == index_key(ctx.env, "List", "item"),
            ctx.guard(lst, ("List",)),
        )
    )
    return tuple_(r.c.type, r.c.id).in_(sub)


def _id_clause(leaf: Leaf, r: FromClause) -> ColumnElement[bool]:
    if leaf.modifier == "missing":
        return false() if leaf.values[0] == "true" else true()
    ids = [unescape(v) for v in leaf.values]
    return r.c.id.not_in(ids) if leaf.modifier == "not" else r.c.id.in_(ids)


def _composite(leaf: Leaf, r: FromClause, ctx: Context) -> ColumnElement[bool]:
    """Each component on the same resource (a documented simplification: not the same element)."""

    def part(code: str, kind: str, modifier: str | None, value: str | None) -> ColumnElement[bool]:
        table = TABLES[kind]
        where = [_hk(table.c.hkey, ctx.hkeys(leaf.types, code))]
        if value is not None:
            where.append(_value_pred(kind, table, modifier, value, ctx))
        return r.c.rid.in_(select(table.c.rid).where(*where))

    if leaf.modifier == "missing":
        present = and_(*(part(code, kind, None, None) for code, kind in leaf.components))
        return not_(present) if leaf.values[0] == "true" else present
    alternatives = []
    for value in leaf.values:
        pieces = split_escaped(value, "$")
        if len(pieces) != len(leaf.components):
            raise BadRequest(
                f"{leaf.code} expects {len(leaf.components)} components separated by '$', got {value!r}"
            )
        alternatives.append(
            and_(
                *(
                    part(code, kind, None, piece)
                    for (code, kind), piece in zip(leaf.components, pieces, strict=True)
                )
            )
        )
    return or_(*alternatives)


def _value_pred(
    kind: str, t: Table | FromClause, modifier: str | None, value: str, ctx: Context
) -> ColumnElement[bool]:
    if kind == "string":
        return _string_pred(t, modifier, unescape(value), ctx)
    if kind == "token":
        return _token_pred(t, modifier, value, ctx)
    if kind == "date":
        return _date_pred(t.c.low, t.c.high, value, ctx)
    if kind == "number":
        return _number_pred(t.c.value, parse_number(value))
    if kind == "quantity":
        q = parse_quantity(value)
        parts = [_number_pred(t.c.value, q.number)]
        if q.system is not None:
            parts.append(t.c.system == q.system)
            if q.code is not None:
                parts.append(t.c.code == q.code)
        elif q.code is not None:
            parts.append(or_(t.c.code == q.code, t.c.unit == q.code))
        return and_(*parts)
    if kind == "reference":
        return _reference_pred(t, modifier, value, ctx)
    if kind == "uri":
        return _uri_pred(t, modifier, unescape(value))
    if kind == "special":
        return _near_pred(t, value, ctx)
    raise BadRequest(f"Unsupported parameter type {kind}")


def _string_pred(
    t: Table | FromClause, modifier: str | None, value: str, ctx: Context
) -> ColumnElement[bool]:
    if modifier == "exact":
        return and_(t.c.value_norm == normalize_string(value), t.c.value_exact == value[:512])
    norm = normalize_string(value)
    if modifier == "contains":
        return t.c.value_norm.like(f"%{like_escape(norm)}%", escape="\\")
    if not norm:
        return true()
    prefix = t.c.value_norm.like(f"{like_escape(norm)}%", escape="\\")
    if ctx.dialect == "sqlite" and ord(norm[-1]) < 0x10FFFF:
        # SQLite does not turn a case-insensitive LIKE into an index range; a BINARY range on the
        # (hkey, value_norm) index does the narrowing (code point order = byte order of UTF-8).
        # PostgreSQL uses the text_pattern_ops index for the LIKE itself.
        upper = norm[:-1] + chr(ord(norm[-1]) + 1)
        return and_(t.c.value_norm >= norm, t.c.value_norm < upper, prefix)
    return prefix


def _token_match(t: Table | FromClause, token: TokenSearch) -> ColumnElement[bool]:
    parts: list[ColumnElement[bool]] = []
    if token.system == "":
        parts.append(t.c.system.is_(None))
    elif token.system is not None:
        parts.append(t.c.system == token.system)
    if token.code is not None:
        parts.append(t.c.code == token.code)
    return and_(*parts)


def _token_pred(t: Table | FromClause, modifier: str | None, value: str, ctx: Context) -> ColumnElement[bool]:
    if modifier == "text":
        return t.c.text_norm.like(f"{like_escape(normalize_string(unescape(value)))}%", escape="\\")
    if modifier in ("in", "not-in"):
        codes = expand(unescape(value))
        by_system: dict[str | None, list[str]] = {}
        for system, code in codes:
            by_system.setdefault(system, []).append(code)
        # A `code` element (e.g. Patient.gender) is indexed without a system: its system is implied by the
        # element's required binding, so a system-less row matches on the code alone.
        every = sorted({code for _, code in codes})
        return or_(
            false(),
            and_(t.c.system.is_(None), t.c.code.in_(every)) if every else false(),
            *(
                and_(t.c.system == s, t.c.code.in_(sorted(c)))
                for s, c in sorted(by_system.items(), key=lambda kv: kv[0] or "")
                if s is not None
            ),
        )
    if modifier == "of-type":
        parts = [unescape(p) for p in split_escaped(value, "|")]
        if len(parts) != 3 or not parts[1] or not parts[2]:
            raise BadRequest(f"identifier:of-type expects system|code|value, got {value!r}")
        system_cond = t.c.system == parts[0] if parts[0] else t.c.system.is_(None)
        return and_(t.c.code == f"{parts[1]}|{parts[2]}", system_cond)
    return _token_match(t, parse_token(value))


def _date_pred(low: Any, high: Any, value: str, ctx: Context) -> ColumnElement[bool]:
    prefix, text = split_prefix(value)
    a, b = date_range(text)
    # Each form below is the R4 definition rewritten (using low <= high and a <= b) so that it starts with a
    # range condition on one column, which the (hkey, low) / (hkey, high) indexes serve.
    if prefix == "eq":  # the search range contains the target range
        return and_(low >= a, low <= b, high <= b)
    if prefix == "ne":
        return or_(low < a, high > b)
    if prefix == "gt":  # the range above the search value overlaps the target
        return high > b
    if prefix == "lt":
        return low < a
    if prefix == "ge":  # gt, or contained: high > b OR (low >= a AND high <= b)
        return and_(high >= a, or_(high > b, low >= a))
    if prefix == "le":  # lt, or contained: low < a OR (low >= a AND high <= b)
        return and_(low <= b, or_(low < a, high <= b))
    if prefix == "sa":
        return low > b
    if prefix == "eb":
        return high < a
    # ap: overlap with the value widened by 10% of its distance from now (R4 §3.1.1.4.1)
    gap = max(abs(ctx.now - a), abs(ctx.now - b)) // 10
    return and_(low <= b + gap, high >= a - gap)


def _number_pred(col: Any, n: NumberSearch) -> ColumnElement[bool]:
    prefix = n.prefix
    if prefix == "eq":
        return and_(col >= n.low, col < n.high)
    if prefix == "ne":
        return or_(col < n.low, col >= n.high)
    if prefix in ("gt", "sa"):
        return col > n.value
    if prefix in ("lt", "eb"):
        return col < n.value
    if prefix == "ge":
        return col >= n.value
    if prefix == "le":
        return col <= n.value
    margin = abs(n.value) * 0.1
    return and_(col >= n.value - margin, col <= n.value + margin)


def _reference_pred(
    t: Table | FromClause, modifier: str | None, value: str, ctx: Context
) -> ColumnElement[bool]:
    if modifier == "identifier":
        token = parse_token(value)
        parts: list[ColumnElement[bool]] = []
        if token.system == "":
            parts.append(t.c.ident_system.is_(None))
        elif token.system is not None:
            parts.append(t.c.ident_system == token.system)
        if token.code is not None:
            parts.append(t.c.ident_value == token.code)
        return and_(*parts)
    type_modifier = modifier if modifier and modifier[:1].isupper() else None
    ref = parse_reference(value, ctx.base_url, type_modifier)
    if ref.url is not None:
        return t.c.url == ref.url
    if ref.target_type is None:
        return t.c.target_id == ref.target_id
    local = and_(t.c.target_id == ref.target_id, t.c.target_type == ref.target_type)
    if ctx.base_url:
        # the same resource written as an absolute URL on our own base
        return or_(local, t.c.url == f"{ctx.base_url.rstrip('/')}/{ref.target_type}/{ref.target_id}")
    return local


def _uri_pred(t: Table | FromClause, modifier: str | None, value: str) -> ColumnElement[bool]:
    if modifier == "below":
        stem = value.rstrip("/")
        return or_(
            t.c.value == value, t.c.value == stem, t.c.value.like(f"{like_escape(stem)}/%", escape="\\")
        )
    if modifier == "above":
        parts = value.split("/")
        start = 3 if "://" in value else 1
        prefixes = {"/".join(parts[:i]) for i in range(start, len(parts) + 1)}
        return t.c.value.in_(sorted(p for p in prefixes if p))
    return t.c.value == value


def _near_pred(t: Table | FromClause, value: str, ctx: Context) -> ColumnElement[bool]:
    """A latitude/longitude bounding box (index friendly) plus the exact haversine distance."""
    near = parse_near(value)

    dlat = math.degrees(near.km / EARTH_KM)
    box = [t.c.latitude.between(near.latitude - dlat, near.latitude + dlat)]
    cos_lat = math.cos(math.radians(near.latitude))
    if cos_lat > 1e-6:
        dlon = math.degrees(near.km / (EARTH_KM * cos_lat))
        if near.longitude - dlon > -180 and near.longitude + dlon < 180:
            box.append(t.c.longitude.between(near.longitude - dlon, near.longitude + dlon))
    lat1, lon1 = math.radians(near.latitude), math.radians(near.longitude)
    lat2, lon2 = func.radians(t.c.latitude), func.radians(t.c.longitude)
    hav = func.power(func.sin((lat2 - lat1) / 2), 2) + math.cos(lat1) * func.cos(lat2) * func.power(
        func.sin((lon2 - lon1) / 2), 2
    )
    # 2R·asin(√hav) <= d  ⟺  hav <= sin²(d / 2R)   (no asin/sqrt needed)
    limit = math.sin(min(near.km / (2 * EARTH_KM), math.pi / 2)) ** 2
    return and_(*box, hav <= limit)


# ---- sorting ----------------------------------------------------------------------------------------------

_SORT_COLUMN = {
    "string": "value_norm",
    "token": "code",
    "number": "value",
    "quantity": "value",
    "reference": "target_id",
    "uri": "value",
}


def sort_value(key: SortKey, r: FromClause, ctx: Context) -> tuple[Any, Any]:
    """(nullable value, its default) for one sort key; the caller sorts missing values last.

    A repeating element sorts by its lowest value ascending and its highest descending (R4 §3.1.1.5.5).
    """
    if key.kind == "id":
        return ctx.text(r.c.id), ""
    if key.kind == "lastUpdated":
        return r.c.last_updated, 0
    table = TABLES[key.kind]
    agg = func.max if key.descending else func.min
    if key.kind == "date":
        column: Any = table.c.high if key.descending else table.c.low
        default: Any = 0
    else:
        column = table.c[_SORT_COLUMN[key.kind]]
        default = "" if key.kind in ("string", "token", "reference", "uri") else 0.0
        if isinstance(default, str):
            column = ctx.text(column)
    value = (
        select(agg(column))
        .where(table.c.rid == r.c.rid, _hk(table.c.hkey, ctx.hkeys(key.types, key.code)))
        .scalar_subquery()
    )
    return value, default
