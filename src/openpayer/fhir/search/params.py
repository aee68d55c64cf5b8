"""Parsing a FHIR search query (name/value pairs) into a typed, validated plan (FHIR R4 §3.1.1).

The plan is independent of SQL: `sql.py` turns its criteria into SQLAlchemy clauses, `service.py` executes
it. Unknown or unsupported parameters and modifiers are collected: in strict mode (`Prefer:
handling=strict`) they raise one `BadRequest` listing all of them; in lenient mode they are dropped from the
plan (and from the self link) and reported as warning issues. Malformed values of known parameters are
always an error.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Protocol

from openpayer.fhir.errors import BadRequest
from openpayer.fhir.outcome import Issue
from openpayer.fhir.search.values import split_escaped

MAX_CHAIN_DEPTH = 3
MAX_HAS_DEPTH = 2
MAX_INCLUDE_ITERATIONS = 3
# Bounds on the work one request may ask for (docs/apis.md, "Limits"); past them the answer is 400. SQLite
# refuses an expression deeper than 1000 nodes, and about 500 ORed values of one parameter reached it.
MAX_VALUES_PER_PARAMETER = 100  # comma-separated values of one parameter (ORed)
MAX_CRITERIA = 20  # search criteria in one request (ANDed), chained and `_has` criteria included
MAX_VALUES_PER_REQUEST = 200  # the values of all its criteria together
MAX_IDS = 1000  # `_id` values (one IN list, a page of resources at most): outside the two limits above
MAX_INCLUDES = 10  # distinct `_include` / `_revinclude` values (a repeated one counts once)
MAX_SORT_KEYS = 5

SUMMARY_VALUES = ("true", "text", "data", "count", "false")
TOTAL_VALUES = ("none", "estimate", "accurate")
# Parameters that are not search criteria and never reach the plan.
TRANSPORT_PARAMS = frozenset({"_format", "_pretty", "_page_token"})
UNSUPPORTED_PARAMS = frozenset({"_text", "_content", "_query", "_filter", "_containedType", "_score"})
# The modifiers this engine implements, per parameter type; `type` stands for `:[ResourceType]`.
SUPPORTED_MODIFIERS: Mapping[str, frozenset[str]] = {
    "string": frozenset({"missing", "exact", "contains"}),
    "token": frozenset({"missing", "text", "not", "in", "not-in", "of-type"}),
    "reference": frozenset({"missing", "identifier", "type"}),
    "uri": frozenset({"missing", "above", "below"}),
    "date": frozenset({"missing"}),
    "number": frozenset({"missing"}),
    "quantity": frozenset({"missing"}),
    "composite": frozenset({"missing"}),
    "special": frozenset({"missing"}),
    "id": frozenset({"missing", "not"}),
    "lastUpdated": frozenset({"missing"}),
    "list": frozenset(),
}
SORTABLE_KINDS = frozenset(
    {"string", "token", "date", "number", "quantity", "reference", "uri", "id", "lastUpdated"}
)


class ParamDef(Protocol):
    """What the engine needs of a `registry.SearchParam`."""

    @property
    def code(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def targets(self) -> tuple[str, ...]: ...
    @property
    def components(self) -> tuple[tuple[str, str], ...]: ...
    @property
    def modifiers(self) -> tuple[str, ...]: ...


class Registry(Protocol):
    def get(self, resource_type: str, code: str) -> ParamDef | None: ...


# ---- the plan ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Leaf:
    """One parameter on the searched resource; `values` are ORed (still escaped, commas split)."""

    code: str
    kind: str  # the SearchParameter type; "id" / "lastUpdated" (fhir_resource columns), "list" (`_list`)
    types: tuple[str, ...]  # resource types whose index keys apply (several for system search)
    modifier: str | None
    values: tuple[str, ...]
    components: tuple[tuple[str, str], ...] = ()  # composite: (component code, component kind)


@dataclass(frozen=True, slots=True)
class Chain:
    """`ref[:Type].<criterion>`: a reference whose target satisfies the criterion (§3.1.1.4.12)."""

    code: str
    types: tuple[str, ...]
    targets: tuple[tuple[str, Node], ...]  # (target type, criterion on that type); ORed


@dataclass(frozen=True, slots=True)
class Has:
    """`_has:Source:ref:<criterion>`: some Source referring to us by `ref` satisfies it (§3.1.1.4.13)."""

    source_type: str
    ref_code: str
    inner: Node


Node = Leaf | Chain | Has


@dataclass(frozen=True, slots=True)
class SortKey:
    code: str
    kind: str
    types: tuple[str, ...]
    descending: bool


@dataclass(frozen=True, slots=True)
class IncludeSpec:
    source_type: str | None  # None: `*`
    code: str | None  # None: every reference parameter (`*`)
    target_type: str | None
    iterate: bool
    reverse: bool


@dataclass(slots=True)
class ParsedQuery:
    types: tuple[str, ...]  # the searched types (one for type-level search)
    system: bool
    criteria: list[Node] = field(default_factory=list)  # ANDed
    sort: list[SortKey] = field(default_factory=list)
    count: int = 50
    includes: list[IncludeSpec] = field(default_factory=list)
    summary: str | None = None
    elements: tuple[str, ...] | None = None
    total: str | None = None
    since: str | None = None  # $everything `_since`
    normalized: list[tuple[str, str]] = field(default_factory=list)  # what was applied, for links/cursors
    issues: list[Issue] = field(default_factory=list)


class Unsupported(Exception):
    """A parameter or modifier that the server does not know or does not support."""


# ---- entry point --------------------------------------------------------------------------------------


@cache
def all_resource_types() -> frozenset[str]:
    from openpayer.fhir.search.registry import concrete_resource_types

    return concrete_resource_types()


def parse_query(
    registry: Registry,
    resource_type: str | None,
    params: Sequence[tuple[str, str]],
    *,
    strict: bool,
    default_count: int,
    max_count: int,
    allowed_types: Collection[str] | None = None,
    extra_control: Collection[str] = (),
) -> ParsedQuery:
    problems: list[str] = []
    system = resource_type is None
    types: tuple[str, ...]
    if resource_type is not None:
        if resource_type not in all_resource_types():
            raise BadRequest(f"Unknown resource type {resource_type!r}")
        types = (resource_type,)
    else:
        types = tuple(sorted(allowed_types if allowed_types is not None else all_resource_types()))
        for name, value in params:
            if name == "_type":
                wanted = [t.strip() for t in value.split(",") if t.strip()]
                unknown = [t for t in wanted if t not in all_resource_types()]
                if unknown:
                    raise BadRequest(f"Unknown resource type(s) in _type: {', '.join(unknown)}")
                types = tuple(sorted(set(wanted) & set(types))) if wanted else types
    query = ParsedQuery(types=types, system=system, count=default_count)
    if system and not types:
        raise BadRequest("None of the requested resource types may be searched")
    for name, value in params:
        if name in TRANSPORT_PARAMS:
            continue
        try:
            if name.startswith("_") and _control(registry, query, name, value, max_count, extra_control):
                continue
            query.criteria.append(resolve(registry, name, value, types, depth=0))
            query.normalized.append((name, value))
            if len(query.criteria) > MAX_CRITERIA:
                raise BadRequest(f"A search may have at most {MAX_CRITERIA} criteria")
            if sum(_value_count(node) for node in query.criteria) > MAX_VALUES_PER_REQUEST:
                raise BadRequest(
                    f"A search may have at most {MAX_VALUES_PER_REQUEST} values in all its criteria"
                )
        except Unsupported as exc:
            problems.append(str(exc))
    if problems:
        if strict:
            raise BadRequest(
                "Unknown or unsupported search parameters: " + "; ".join(problems),
                [Issue("error", "not-supported", p) for p in problems],
            )
        query.issues.extend(Issue("warning", "not-supported", f"Ignored: {p}") for p in problems)
    return query


def _control(
    registry: Registry,
    query: ParsedQuery,
    name: str,
    value: str,
    max_count: int,
    extra_control: Collection[str],
) -> bool:
    """Handle result/control parameters; False when `name` is a search criterion instead."""
    base, _, modifier = name.partition(":")
    if base == "_count":
        try:
            count = int(value)
        except ValueError:
            raise BadRequest(f"_count must be a non-negative integer, not {value!r}") from None
        if count < 0:
            raise BadRequest(f"_count must be a non-negative integer, not {value!r}")
        query.count = min(count, max_count)
        _replace(query, "_count", str(query.count))
    elif base == "_type":
        if not query.system:
            raise Unsupported("_type (only on system search)")
        query.normalized.append((name, value))
    elif base == "_sort":
        parts = [part for part in value.split(",") if part.strip()]
        if len(parts) > MAX_SORT_KEYS:
            raise BadRequest(f"_sort may name at most {MAX_SORT_KEYS} parameters")
        query.sort = [_sort_key(registry, query.types, part) for part in parts]
        _replace(query, "_sort", value)
    elif base in ("_include", "_revinclude"):
        if modifier not in ("", "iterate", "recurse"):
            raise Unsupported(f"{name} (modifier {modifier!r})")
        spec = _include_spec(registry, value, reverse=base == "_revinclude", iterate=bool(modifier))
        if spec in query.includes:
            return True  # the same include again adds nothing but work
        if len(query.includes) >= MAX_INCLUDES:
            raise BadRequest(f"A search may have at most {MAX_INCLUDES} distinct _include and _revinclude")
        query.includes.append(spec)
        query.normalized.append((name, value))
    elif base == "_summary":
        if value not in SUMMARY_VALUES:
            raise BadRequest(f"_summary must be one of {', '.join(SUMMARY_VALUES)}")
        query.summary = None if value == "false" else value
        _replace(query, "_summary", value)
    elif base == "_elements":
        query.elements = tuple(e.strip() for e in value.split(",") if e.strip())
        _replace(query, "_elements", value)
    elif base == "_total":
        if value not in TOTAL_VALUES:
            raise BadRequest(f"_total must be one of {', '.join(TOTAL_VALUES)}")
        query.total = value
        _replace(query, "_total", value)
    elif base == "_contained":
        if value != "false":
            raise Unsupported("_contained")
    elif base in extra_control:
        if base == "_since":
            query.since = value
        _replace(query, base, value)
    elif base in UNSUPPORTED_PARAMS:
        raise Unsupported(name)
    else:
        return False
    return True


def _value_count(node: Node) -> int:
    """The values a client sent in one criterion (a chain resolved for several target types counts once)."""
    if isinstance(node, Leaf):
        return 0 if node.kind == "id" else len(node.values)
    if isinstance(node, Chain):
        return max((_value_count(inner) for _, inner in node.targets), default=0)
    return _value_count(node.inner)


def _replace(query: ParsedQuery, name: str, value: str) -> None:
    query.normalized = [(n, v) for n, v in query.normalized if n != name]
    query.normalized.append((name, value))


# ---- criteria ----------------------------------------------------------------------------------------------


def _lookup(registry: Registry, types: Sequence[str], code: str) -> tuple[str, ParamDef]:
    """The parameter `code` on every type in `types`, which must agree on its kind."""
    if code == "_id":
        return "id", _PseudoParam("_id", "id")
    if code == "_lastUpdated":
        return "lastUpdated", _PseudoParam("_lastUpdated", "lastUpdated")
    if code == "_list":
        return "list", _PseudoParam("_list", "list", modifiers=())
    found: ParamDef | None = None
    for rtype in types:
        param = registry.get(rtype, code)
        if param is None:
            where = rtype if len(types) == 1 else f"all of the searched types ({rtype} lacks it)"
            raise Unsupported(f"{code} (not a search parameter of {where})")
        if found is not None and found.type != param.type:
            raise Unsupported(f"{code} (differs in type across the searched types)")
        found = param
    if found is None:
        raise Unsupported(code)
    return found.type, found


@dataclass(frozen=True, slots=True)
class _PseudoParam:
    code: str
    type: str
    targets: tuple[str, ...] = ()
    components: tuple[tuple[str, str], ...] = ()
    modifiers: tuple[str, ...] = ("missing", "not")


def resolve(registry: Registry, name: str, value: str, types: tuple[str, ...], *, depth: int) -> Node:
    """Resolve one `name=value` criterion against `types`."""
    if name.startswith("_has:"):
        return _resolve_has(registry, name, value, types, depth)
    if "." in name:
        return _resolve_chain(registry, name, value, types, depth)
    code, _, modifier = name.partition(":")
    kind, param = _lookup(registry, types, code)
    mod = modifier or None
    if mod is not None:
        _check_modifier(param, kind, mod, name)
        if mod == "missing" and value not in ("true", "false"):
            raise BadRequest(f"{name} must be true or false")
    components: tuple[tuple[str, str], ...] = ()
    if kind == "composite":
        parts = []
        for comp_code, _expr in param.components:
            comp_kind, _ = _lookup(registry, types, comp_code)
            if comp_kind in ("composite", "special"):
                raise Unsupported(f"{name} (component {comp_code} of type {comp_kind})")
            parts.append((comp_code, comp_kind))
        components = tuple(parts)
    values = tuple(v for v in split_escaped(value, ",") if v != "")
    if not values:
        raise BadRequest(f"Search parameter {name} has no value")
    limit = MAX_IDS if kind == "id" else MAX_VALUES_PER_PARAMETER
    if len(values) > limit:
        raise BadRequest(f"Search parameter {name} may have at most {limit} values")
    if kind == "list" and any(v.startswith("$") for v in values):
        raise Unsupported(f"{name}={value} (functional lists such as $current-allergies)")
    return Leaf(code, kind, types, mod, values, components)


def _check_modifier(param: ParamDef, kind: str, mod: str, name: str) -> None:
    supported = SUPPORTED_MODIFIERS.get(kind, frozenset())
    declared = set(param.modifiers)
    if kind == "reference" and mod[:1].isupper():
        if mod not in all_resource_types() or (param.targets and mod not in param.targets):
            raise Unsupported(f"{name} ({mod} is not a target type of {param.code})")
        return
    if mod not in supported or (declared and mod not in declared and kind not in ("id", "lastUpdated")):
        raise Unsupported(f"{name} (modifier :{mod} is not supported on {kind} parameters)")


def _ref_targets(param: ParamDef, qualifier: str | None, name: str) -> tuple[str, ...]:
    targets = tuple(param.targets) or tuple(sorted(all_resource_types()))
    if qualifier is None:
        return targets
    if qualifier not in all_resource_types() or (param.targets and qualifier not in param.targets):
        raise Unsupported(f"{name} ({qualifier} is not a target type of {param.code})")
    return (qualifier,)


def _resolve_chain(registry: Registry, name: str, value: str, types: tuple[str, ...], depth: int) -> Node:
    head, _, rest = name.partition(".")
    if depth >= MAX_CHAIN_DEPTH:
        raise Unsupported(f"{name} (chains deeper than {MAX_CHAIN_DEPTH} levels)")
    code, _, qualifier = head.partition(":")
    kind, param = _lookup(registry, types, code)
    if kind != "reference":
        raise Unsupported(f"{name} ({code} is not a reference parameter and cannot be chained)")
    targets: list[tuple[str, Node]] = []
    failures: list[str] = []
    for target in _ref_targets(param, qualifier or None, name):
        try:
            targets.append((target, resolve(registry, rest, value, (target,), depth=depth + 1)))
        except Unsupported as exc:
            failures.append(str(exc))
    if not targets:
        raise Unsupported(f"{name} (no target type of {code} supports {rest}: {'; '.join(failures[:3])})")
    return Chain(code, types, tuple(targets))


def _resolve_has(registry: Registry, name: str, value: str, types: tuple[str, ...], depth: int) -> Node:
    parts = name.split(":", 3)
    if len(parts) != 4 or not all(parts[1:]):
        raise BadRequest(f"Invalid _has parameter {name!r} (expected _has:Type:reference:parameter)")
    _, source, ref_code, rest = parts
    if depth >= MAX_HAS_DEPTH:
        raise Unsupported(f"{name} (_has nested deeper than {MAX_HAS_DEPTH} levels)")
    if source not in all_resource_types():
        raise Unsupported(f"{name} (unknown resource type {source})")
    ref = registry.get(source, ref_code)
    if ref is None or ref.type != "reference":
        raise Unsupported(f"{name} ({ref_code} is not a reference parameter of {source})")
    if ref.targets and not set(types) & set(ref.targets):
        raise Unsupported(f"{name} ({source}.{ref_code} cannot refer to {', '.join(types)})")
    return Has(source, ref_code, resolve(registry, rest, value, (source,), depth=depth + 1))


# ---- sort and include ---------------------------------------------------------------------------------


def _sort_key(registry: Registry, types: tuple[str, ...], part: str) -> SortKey:
    text = part.strip()
    descending = text.startswith("-")
    code = text.lstrip("-")
    kind, _ = _lookup(registry, types, code)
    if kind not in SORTABLE_KINDS:
        raise Unsupported(f"_sort={code} (cannot sort on {kind} parameters)")
    return SortKey(code, kind, types, descending)


def _include_spec(registry: Registry, value: str, *, reverse: bool, iterate: bool) -> IncludeSpec:
    if value == "*":
        return IncludeSpec(None, None, None, iterate, reverse)
    parts = value.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise BadRequest(f"Invalid _include/_revinclude value {value!r} (expected Type:parameter[:Target])")
    source, code = parts[0], parts[1]
    target = parts[2] if len(parts) == 3 else None
    if source not in all_resource_types():
        raise Unsupported(f"{'_revinclude' if reverse else '_include'}={value} (unknown type {source})")
    if code == "*":
        return IncludeSpec(source, None, target, iterate, reverse)
    param = registry.get(source, code)
    if param is None or param.type != "reference":
        raise Unsupported(f"{'_revinclude' if reverse else '_include'}={value} (not a reference parameter)")
    if target is not None and (
        target not in all_resource_types() or (param.targets and target not in param.targets)
    ):
        raise Unsupported(f"{'_revinclude' if reverse else '_include'}={value} ({target} is not a target)")
    return IncludeSpec(source, code, target, iterate, reverse)
