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
from collections.abc import Collection, Hashable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Protocol

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    Table,
    and_,
    bindparam,
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


class Binder:
    """Names the criteria's values `v0`, `v1`, … in the order the statement is built (see `criteria_plan`)."""

    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values: list[Any] = []

    def bind(self, values: Sequence[Any]) -> list[Any]:
        out: list[Any] = []
        for value in values:
            out.append(bindparam(f"v{len(self.values)}", value))
            self.values.append(value)
        return out


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
    # When set, the values of criteria become named bind parameters (a statement built once per query shape,
    # `openpayer.fhir.search.statements`); otherwise they are inlined as anonymous binds.
    binder: Binder | None = field(default=None, compare=False)

    def bind(self, values: Sequence[Any]) -> Sequence[Any]:
        """The values a predicate compares with: themselves, or named parameters while building a shape."""
        return values if self.binder is None else self.binder.bind(values)

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

    def unguarded(self, types: Collection[str]) -> bool:
        """Whether `guard(resource, types)` lets every row through (no restriction, the types allowed)."""
        return self.restriction is None and (self.allowed_types is None or set(types) <= self.allowed_types)

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


def criteria_plan(nodes: Sequence[Node], ctx: Context) -> tuple[Hashable, list[Any]] | None:
    """(the shape of `nodes`' SQL, their values in the order `criteria_clauses` binds them as `v0`, `v1`, …);
    None when a criterion's SQL depends on its values beyond what a plan records (value sets, `near`,
    composites, `_list`): such a search builds its statement each time."""
    values: list[Any] = []
    shape = tuple(_node_plan(node, ctx, values) for node in nodes)
    if None in shape:
        return None
    if ctx.dialect == "sqlite" and len(nodes) > 1:  # which criterion drives is part of the SQL there
        return (shape, tuple(drive_order(node) for node in nodes)), values
    return shape, values


def _node_plan(node: Node, ctx: Context, values: list[Any]) -> Hashable | None:
    if isinstance(node, Chain):
        targets = tuple((ttype, _node_plan(inner, ctx, values)) for ttype, inner in node.targets)
        return None if any(p is None for _, p in targets) else ("chain", node.code, node.types, targets)
    if isinstance(node, Has):
        inner = _node_plan(node.inner, ctx, values)
        return None if inner is None else ("has", node.source_type, node.ref_code, inner)
    head = (node.code, node.kind, node.types, node.modifier)
    if node.modifier == "missing":
        return (*head, node.values[0] == "true")
    if node.kind == "id":
        values.extend(unescape(v) for v in node.values)
        return (*head, len(node.values))
    tags: list[Hashable] = []
    for value in node.values:
        if node.kind == "lastUpdated":
            plan: Plan | None = _date_plan(value, ctx)
        elif node.kind in ("composite", "list"):
            return None
        else:
            plan = value_plan(node.kind, node.modifier, value, ctx)
        if plan is None:
            return None
        tags.append((plan[0], tuple(type(v) for v in plan[1])))
        values.extend(plan[1])
    return (*head, tuple(tags))


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
    """The reference rows whose target (`target_rid`) meets the criterion. A plain index criterion reads
    the target's index rows by that rid alone: no target row to join, one table fewer for the planner
    (index rows are those of current versions, so the target is not deleted; their keys name its type)."""
    ref, t = ctx.aliases()
    key = _hk(ref.c.hkey, ctx.hkeys(node.types, node.code))
    types = [ttype for ttype, _ in node.targets]
    if ctx.unguarded(types):
        direct = [index_rids(inner, ctx) if isinstance(inner, Leaf) else None for _, inner in node.targets]
        if all(sub is not None for sub in direct):
            tests = [ref.c.target_rid.in_(sub) for sub in direct if sub is not None]
            return r.c.rid.in_(select(ref.c.rid).where(key, or_(*tests)))
    branches = [and_(ref.c.target_type == ttype, node_clause(inner, t, ctx)) for ttype, inner in node.targets]
    sub = (
        select(ref.c.rid)
        .select_from(ref.join(t, t.c.rid == ref.c.target_rid))
        .where(key, t.c.deleted.is_(False), or_(*branches), ctx.guard(t, types))
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
        return _id_clause(leaf, r, ctx)
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
    if not probe and not negate:
        return r.c.rid.in_(_index_select(leaf, table, keys, ctx))
    preds = [_value_pred(leaf.kind, table, leaf.modifier, v, ctx) for v in leaf.values]
    if probe and not negate:  # `hkey + 0`: SQLite may then only reach the rows through the rid index
        hkey = table.c.hkey + 0
        key_match = hkey == keys[0] if len(keys) == 1 else hkey.in_(keys)
        return exists(select(literal(1)).where(table.c.rid == r.c.rid, key_match, or_(*preds)))
    condition = and_(_hk(table.c.hkey, keys), or_(*preds))
    return not_(exists(select(literal(1)).where(table.c.rid == r.c.rid, condition)))


def index_rids(leaf: Leaf, ctx: Context) -> Select[Any] | None:
    """The rids whose index rows meet `leaf`, when it is a plain (positive) index criterion; else None."""
    if leaf.kind not in TABLES or leaf.modifier in ("missing", "not", "not-in"):
        return None
    code = f"{leaf.code}|of-type" if leaf.kind == "token" and leaf.modifier == "of-type" else leaf.code
    return _index_select(leaf, TABLES[leaf.kind], ctx.hkeys(leaf.types, code), ctx)


def _index_select(leaf: Leaf, table: Table, keys: list[int], ctx: Context) -> Select[Any]:
    preds = [_value_pred(leaf.kind, table, leaf.modifier, v, ctx) for v in leaf.values]
    return select(table.c.rid).where(and_(_hk(table.c.hkey, keys), or_(*preds)))


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


def _id_clause(leaf: Leaf, r: FromClause, ctx: Context) -> ColumnElement[bool]:
    if leaf.modifier == "missing":
        return false() if leaf.values[0] == "true" else true()
    ids = list(ctx.bind([unescape(v) for v in leaf.values]))
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


# A value predicate is planned, then built: the plan is (a tag naming the SQL's structure, the literal values
# it compares with), a cheap pure function of the value; the build depends on the tag alone and takes the
# values as given (themselves, or bind parameters). So a statement built once for one search serves every
# search of the same shape with other values (`criteria_plan`, `openpayer.fhir.search.statements`).
Plan = tuple[tuple[Hashable, ...], tuple[Any, ...]]


def _sys_state(system: str | None) -> str:
    return "any" if system is None else "none" if system == "" else "eq"


def value_plan(kind: str, modifier: str | None, value: str, ctx: Context) -> Plan | None:
    """(structure tag, literal values) of one value's predicate; None: not planned (built directly)."""
    if kind == "string":
        text = unescape(value)
        norm = normalize_string(text)
        if modifier == "exact":
            return ("exact",), (norm, text[:512])
        if modifier == "contains":
            return ("contains",), (f"%{like_escape(norm)}%",)
        if not norm:
            return ("true",), ()
        prefix = f"{like_escape(norm)}%"
        if ctx.dialect == "sqlite" and ord(norm[-1]) < 0x10FFFF:
            return ("range",), (norm, norm[:-1] + chr(ord(norm[-1]) + 1), prefix)
        return ("prefix",), (prefix,)
    if kind == "token":
        if modifier == "text":
            return ("text",), (f"{like_escape(normalize_string(unescape(value)))}%",)
        if modifier in ("in", "not-in"):
            return None  # a value set's expansion
        if modifier == "of-type":
            parts = [unescape(p) for p in split_escaped(value, "|")]
            if len(parts) != 3 or not parts[1] or not parts[2]:
                raise BadRequest(f"identifier:of-type expects system|code|value, got {value!r}")
            code = f"{parts[1]}|{parts[2]}"
            return (("of-type", True), (code, parts[0])) if parts[0] else (("of-type", False), (code,))
        token = parse_token(value)
        return _token_plan("token", token.system, token.code)
    if kind == "date":
        return _date_plan(value, ctx)
    if kind == "number":
        return _number_plan(parse_number(value))
    if kind == "quantity":
        q = parse_quantity(value)
        tag, values = _number_plan(q.number)
        if q.system is not None:
            return ("quantity", tag, "system", q.code is not None), (*values, q.system, *_some(q.code))
        return ("quantity", tag, "code", q.code is not None), (*values, *_some(q.code))
    if kind == "reference":
        if modifier == "identifier":
            token = parse_token(value)
            return _token_plan("identifier", token.system, token.code)
        type_modifier = modifier if modifier and modifier[:1].isupper() else None
        ref = parse_reference(value, ctx.base_url, type_modifier)
        if ref.url is not None:
            return ("url",), (ref.url,)
        if ref.target_type is None:
            return ("id",), (ref.target_id,)
        if ctx.base_url:  # the same resource written as an absolute URL on our own base
            url = f"{ctx.base_url.rstrip('/')}/{ref.target_type}/{ref.target_id}"
            return ("local", True), (ref.target_id, ref.target_type, url)
        return ("local", False), (ref.target_id, ref.target_type)
    if kind == "uri":
        text = unescape(value)
        if modifier == "below":
            stem = text.rstrip("/")
            return ("below",), (text, stem, f"{like_escape(stem)}/%")
        if modifier == "above":
            parts = text.split("/")
            start = 3 if "://" in text else 1
            prefixes = sorted(p for p in {"/".join(parts[:i]) for i in range(start, len(parts) + 1)} if p)
            return ("above", len(prefixes)), tuple(prefixes)
        return ("eq",), (text,)
    return None  # special (near): bounds computed in floats from the value; built directly


def _some(value: Any) -> tuple[Any, ...]:
    return () if value is None else (value,)


def _token_plan(tag: str, system: str | None, code: str | None) -> Plan:
    state = _sys_state(system)
    return (tag, state, code is not None), (*(() if state != "eq" else (system,)), *_some(code))


def _date_plan(value: str, ctx: Context) -> Plan:
    prefix, text = split_prefix(value)
    a, b = date_range(text)
    if prefix == "ap":  # overlap with the value widened by 10% of its distance from now (R4 §3.1.1.4.1)
        gap = max(abs(ctx.now - a), abs(ctx.now - b)) // 10
        return ("date", "ap"), (b + gap, a - gap)
    return ("date", prefix), (a, b)


def _number_plan(n: NumberSearch) -> Plan:
    if n.prefix in ("eq", "ne"):
        return ("number", n.prefix), (n.low, n.high)
    if n.prefix in ("gt", "sa", "lt", "eb", "ge", "le"):
        return ("number", n.prefix), (n.value,)
    margin = abs(n.value) * 0.1
    return ("number", "ap"), (n.value - margin, n.value + margin)


def _value_pred(
    kind: str, t: Table | FromClause, modifier: str | None, value: str, ctx: Context
) -> ColumnElement[bool]:
    plan = value_plan(kind, modifier, value, ctx)
    if plan is None:
        if kind == "token":
            return _token_in(t, value)
        if kind == "special":
            return _near_pred(t, value, ctx)
        raise BadRequest(f"Unsupported parameter type {kind}")
    tag, values = plan
    return build_value(kind, t, tag, ctx.bind(values))


def build_value(kind: str, t: Table | FromClause, tag: Any, p: Sequence[Any]) -> ColumnElement[bool]:
    """The predicate of a planned value: its structure from `tag`, its values `p` (literals or parameters)."""
    head = tag[0]
    if kind == "string":
        if head == "exact":
            return and_(t.c.value_norm == p[0], t.c.value_exact == p[1])
        if head == "true":
            return true()
        if head == "range":
            # SQLite does not turn a case-insensitive LIKE into an index range; a BINARY range on the
            # (hkey, value_norm) index does the narrowing (code point order = byte order of UTF-8).
            # PostgreSQL uses the text_pattern_ops index for the LIKE itself.
            like = t.c.value_norm.like(p[2], escape="\\")
            return and_(t.c.value_norm >= p[0], t.c.value_norm < p[1], like)
        return t.c.value_norm.like(p[0], escape="\\")  # contains, prefix
    if kind == "token" and head == "text":
        return t.c.text_norm.like(p[0], escape="\\")
    if head == "of-type":
        return and_(t.c.code == p[0], t.c.system == p[1] if tag[1] else t.c.system.is_(None))
    if head in ("token", "identifier"):
        system, code = (t.c.system, t.c.code) if head == "token" else (t.c.ident_system, t.c.ident_value)
        parts: list[ColumnElement[bool]] = []
        rest = list(p)
        if tag[1] == "none":
            parts.append(system.is_(None))
        elif tag[1] == "eq":
            parts.append(system == rest.pop(0))
        if tag[2]:
            parts.append(code == rest[0])
        return and_(*parts)
    if head == "date":
        return _date_build(t.c.low, t.c.high, tag[1], p)
    if head == "number":
        return _number_build(t.c.value, tag[1], p)
    if head == "quantity":
        n = 2 if tag[1][1] in ("eq", "ne", "ap") else 1
        quantity = [_number_build(t.c.value, tag[1][1], p[:n])]
        if tag[2] == "system":
            quantity.append(t.c.system == p[n])
            if tag[3]:
                quantity.append(t.c.code == p[n + 1])
        elif tag[3]:
            quantity.append(or_(t.c.code == p[n], t.c.unit == p[n]))
        return and_(*quantity)
    if head == "url":
        return t.c.url == p[0]
    if head == "id":
        return t.c.target_id == p[0]
    if head == "local":
        local = and_(t.c.target_id == p[0], t.c.target_type == p[1])
        return or_(local, t.c.url == p[2]) if tag[1] else local
    if head == "below":
        return or_(t.c.value == p[0], t.c.value == p[1], t.c.value.like(p[2], escape="\\"))
    if head == "above":
        return t.c.value.in_(list(p))
    if head == "eq":
        return t.c.value == p[0]
    raise BadRequest(f"Unsupported parameter type {kind}")


def _token_in(t: Table | FromClause, value: str) -> ColumnElement[bool]:
    """`:in` / `:not-in`: the value set's codes (the negation is the caller's)."""
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


def _date_pred(low: Any, high: Any, value: str, ctx: Context) -> ColumnElement[bool]:
    tag, values = _date_plan(value, ctx)
    return _date_build(low, high, str(tag[1]), ctx.bind(values))


def _date_build(low: Any, high: Any, prefix: str, p: Sequence[Any]) -> ColumnElement[bool]:
    a, b = p[0], p[1]
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
    return and_(low <= a, high >= b)  # ap: (upper bound, lower bound) of the widened value


def _number_build(col: Any, prefix: str, p: Sequence[Any]) -> ColumnElement[bool]:
    if prefix == "eq":
        return and_(col >= p[0], col < p[1])
    if prefix == "ne":
        return or_(col < p[0], col >= p[1])
    if prefix in ("gt", "sa"):
        return col > p[0]
    if prefix in ("lt", "eb"):
        return col < p[0]
    if prefix == "ge":
        return col >= p[0]
    if prefix == "le":
        return col <= p[0]
    return and_(col >= p[0], col <= p[1])  # ap: within 10%


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
