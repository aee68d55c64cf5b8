"""First pages whose matches are read from the index tables alone (PostgreSQL).

Index rows exist only for the current, undeleted version of a resource, and their key names the environment
and the type (`index_key`); resource rows are never deleted. So when a search has one type, no restriction,
and only plain indexed criteria and chains, its matches need not be checked against `fhir_resource`: the
first criterion's index rows drive, the others probe them by rid, and the resource rows are read for the
page's rows only. Otherwise PostgreSQL checks every match against the type's resource keys, typically by
scanning all of them (`Practitioner?name=mar`: 50,000 keys for 2,290 matches; 7.4 -> 1.5 ms,
docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from sqlalchemy import FromClause, Integer, Select, func, literal_column, or_, select, union_all

from openpayer.fhir.search.params import Chain, Leaf, Node, ParsedQuery
from openpayer.fhir.search.sql import TABLES, Context, _hk, _value_pred, node_clause

_INDEXED_KINDS = frozenset(("string", "token", "date", "number", "quantity", "reference", "uri"))


def index_driven_matches(nodes: Sequence[Node], types: Sequence[str], ctx: Context) -> FromClause | None:
    """The matching rids (a subquery with one column, `rid`), or None when the index alone is not exact."""
    if len(types) != 1 or ctx.restriction is not None or not nodes:
        return None
    if ctx.allowed_types is not None and types[0] not in ctx.allowed_types:
        return None
    first = nodes[0]
    if not isinstance(first, Leaf) or first.kind not in _INDEXED_KINDS:
        return None
    if first.modifier in ("missing", "not", "not-in"):
        return None
    # the others are tested on the driver's rids alone: plain indexed criteria, and chains (`rid IN` the
    # referring index rows); not `_has`, `_id`, `_lastUpdated`, composites or `_list`, which read the row
    if not all(isinstance(n, Chain) or (isinstance(n, Leaf) and n.kind in _INDEXED_KINDS) for n in nodes[1:]):
        return None
    keys = ctx.hkeys(first.types, first.code)
    if first.kind == "token" and first.modifier == "of-type":
        keys = ctx.hkeys(first.types, f"{first.code}|of-type")
    table = _driving(first.kind)
    preds = [_value_pred(first.kind, table, first.modifier, v, ctx) for v in first.values]
    # The other criteria test the driver's index rows before DISTINCT: PostgreSQL may then probe the driver's
    # index with their rids when they are the selective side (a ZIP code's 65 roles against a specialty's
    # 16,000 rows). Tested after DISTINCT, they could not reach inside it, and the driver's rows were read in
    # rid order up to the last match (docs/performance.md, Search, "Ninth session").
    rest = [node_clause(node, table, ctx) for node in nodes[1:]]
    driver = select(table.c.rid).where(_hk(table.c.hkey, keys), or_(*preds), *rest).distinct().subquery("d")
    return select(driver.c.rid).offset(0).subquery("m")


@cache
def _driving(kind: str) -> FromClause:
    """The driving index table under a name of its own, so that another criterion on the same table (two
    tokens) is not correlated with the driver; built once (see `sql._numbered_aliases`)."""
    alias = TABLES[kind].alias("d0")
    alias.c  # noqa: B018  (populated once, before threads share it)
    return alias


def index_driven_page(
    ctx: Context,
    parsed: ParsedQuery,
    stored: FromClause,
    position: Sequence[Any] | None,
    backwards: bool,
    include: Callable[[Select[Any]], Select[Any]] | None = None,
) -> Select[Any] | None:
    """A counted page in rid order (the columns of `pages.page_query`: rid, type, id, the sort key, content,
    total), or None when the search does not qualify. `stored` is an alias of `fhir_resource`.

    With `include` (a first page only), the page is a CTE and `include(its kept rids)` gives rows to follow
    the page's in the same statement; each row then starts with `part` (0: the page, 1: the include)."""
    if parsed.since is not None:
        return None
    m = index_driven_matches(parsed.criteria, parsed.types, ctx)
    if m is None:
        return None
    query = select(m.c.rid, m.c.rid.label("k0"), func.count().over().label("total"))
    if position is not None:
        (bound,) = ctx.bind(position)
        query = query.where(m.c.rid < bound if backwards else m.c.rid > bound)
    order = m.c.rid.desc() if backwards else m.c.rid.asc()
    if include is not None and position is None:
        p = query.order_by(order).limit(parsed.count + 1).cte("p")
        matches = select(
            literal_column("0", Integer).label("part"),
            p.c.rid,
            stored.c.type,
            stored.c.id,
            p.c.k0,
            stored.c.content,
            p.c.total,
        ).join_from(p, stored, stored.c.rid == p.c.rid)
        kept = select(p.c.rid).order_by(p.c.k0).limit(parsed.count)  # the extra row tells only "more"
        both = union_all(matches, include(kept)).subquery("u")
        return select(*both.c).order_by(both.c.part, both.c.k0)
    page = query.order_by(order).limit(parsed.count + 1).subquery("p")
    return (
        select(page.c.rid, stored.c.type, stored.c.id, page.c.k0, stored.c.content, page.c.total)
        .join_from(page, stored, stored.c.rid == page.c.rid)
        .order_by(page.c.k0.desc() if backwards else page.c.k0.asc())
    )
