"""The search-parameter registry: for each concrete resource type and code, what the parameter is.

Sources, in the order they are considered:

1. the FHIR R4 core SearchParameters (``definitions.load("search-parameters")``, 1,378 definitions);
2. the SearchParameters of the implementation guides we serve, vendored as ``ig-search-parameters.json.gz`` by
   ``scripts/vendor_ig_search_parameters.py`` (CARIN BB 2.0.0, PDex 2.0.0, Plan-Net 1.1.0, US Drug Formulary
   2.0.1, US Core 6.1.0 and 3.1.1).

Expansion. A definition whose base is ``Resource`` or ``DomainResource`` (``_id``, ``_lastUpdated``, ``_tag``,
``_profile``, ``_security``, ``_source``) is expanded onto every concrete type (``DomainResource`` ones skip
``Bundle``, ``Binary`` and ``Parameters``), with ``Resource.`` in the expression rewritten to the type. A
definition with several bases keeps, per base, only the ``|`` branches of its expression that start with that
base (or with no type at all, e.g. ``name | alias``). ``_text``, ``_content``, ``_query`` and ``_filter`` are
not supported and never enter the registry; neither does a definition left without an expression.

Precedence when several definitions have the same base and code (:func:`merge_rule` decides):

* Expressions are compared as *sets of union branches* after normalisation: whitespace dropped, ``x as T``
  and ``x.as(T)`` written ``x.ofType(T)``, redundant parentheses removed, relative branches prefixed with
  the base.
* Same type and same branch set: a duplicate; the definition already held is kept whole (the core one, or
  the IG of higher precedence), targets included: US Core 3.1.1 lists ``Group`` as a target of
  ``Observation.subject.where(resolve() is Patient)``, which core rightly does not.
* Core against IG with a different expression: the core definition is kept unless the IG's branch set is a
  strict superset of the core's and the type is the same (the IG then only widens what is indexed).
* IG against IG: the strict superset wins, otherwise the IG of higher precedence. Precedence is the order of
  :data:`IG_PRECEDENCE`; within one IG, the newer version wins (US Core 6.1.0 over 3.1.1).

Modifiers and comparators are the R4 defaults for the parameter type (FHIR R4 §3.1.1.5) plus any the
definition declares (IGs often list only a subset, e.g. Plan-Net ``modifier: [text]``, which does not
withdraw ``:missing``). The query builder decides which of them it implements.
"""

from __future__ import annotations

import gzip
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from types import MappingProxyType
from typing import Any

import orjson
from fhirpathpy.models import models as _fhirpath_models

from openpayer.fhir import definitions

log = logging.getLogger(__name__)

UNSUPPORTED_CODES = frozenset({"_text", "_content", "_query", "_filter"})
ABSTRACT_BASES = frozenset({"Resource", "DomainResource"})
# Resources that derive from Resource directly, not from DomainResource.
NON_DOMAIN_RESOURCES = frozenset({"Bundle", "Binary", "Parameters"})

# IG package ids, highest precedence first (see the module docstring).
IG_PRECEDENCE: tuple[str, ...] = (
    "hl7.fhir.us.carin-bb",
    "hl7.fhir.us.davinci-pdex",
    "hl7.fhir.us.davinci-pdex-plan-net",
    "hl7.fhir.us.davinci-drug-formulary",
    "hl7.fhir.us.core",
)
PACKAGE_SOURCE = "http://hl7.org/fhir/StructureDefinition/package-source"

# FHIR R4 §3.1.1.5: the modifiers and prefixes each parameter type supports.
_ORDERED_COMPARATORS = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
DEFAULT_MODIFIERS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "string": ("missing", "exact", "contains"),
        "token": ("missing", "text", "not", "above", "below", "in", "not-in", "of-type"),
        "reference": ("missing", "type", "identifier", "above", "below"),
        "uri": ("missing", "above", "below"),
        "date": ("missing",),
        "number": ("missing",),
        "quantity": ("missing",),
        "composite": ("missing",),
        "special": ("missing",),
    }
)
DEFAULT_COMPARATORS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"date": _ORDERED_COMPARATORS, "number": _ORDERED_COMPARATORS, "quantity": _ORDERED_COMPARATORS}
)


@dataclass(frozen=True, slots=True)
class SearchParam:
    code: str  # e.g. "patient"
    base: str  # one concrete resource type
    type: str  # number|date|string|token|reference|composite|quantity|uri|special
    expression: str | None  # FHIRPath restricted to this base
    url: str
    targets: tuple[str, ...] = ()  # reference target types
    components: tuple[tuple[str, str], ...] = ()  # composite: (component code, relative FHIRPath)
    modifiers: tuple[str, ...] = ()
    comparators: tuple[str, ...] = ()


class SearchParamRegistry:
    """Read-only lookup of :class:`SearchParam` by resource type and code."""

    __slots__ = ("__weakref__", "_by_type", "_empty")

    def __init__(self, params: Iterable[SearchParam]) -> None:
        by_type: dict[str, dict[str, SearchParam]] = {}
        for param in params:
            by_type.setdefault(param.base, {})[param.code] = param
        self._by_type: dict[str, Mapping[str, SearchParam]] = {
            rtype: MappingProxyType(dict(sorted(codes.items()))) for rtype, codes in sorted(by_type.items())
        }
        self._empty: Mapping[str, SearchParam] = MappingProxyType({})

    def get(self, resource_type: str, code: str) -> SearchParam | None:
        return self._by_type.get(resource_type, self._empty).get(code)

    def for_type(self, resource_type: str) -> Mapping[str, SearchParam]:
        return self._by_type.get(resource_type, self._empty)

    def types(self) -> frozenset[str]:
        return frozenset(self._by_type)

    def __iter__(self) -> Iterator[SearchParam]:
        for codes in self._by_type.values():
            yield from codes.values()

    def __len__(self) -> int:
        return sum(len(codes) for codes in self._by_type.values())


# --- resource types --------------------------------------------------------------------------------------


@cache
def concrete_resource_types() -> frozenset[str]:
    """The 146 concrete R4 resource types, from the R4 model fhirpathpy evaluates choice types with."""
    type2parent: dict[str, str] = _fhirpath_models["r4"]["type2Parent"]
    return frozenset(
        name
        for name, parent in type2parent.items()
        if parent == "DomainResource" or (parent == "Resource" and name != "DomainResource")
    )


# --- expressions -----------------------------------------------------------------------------------------


def split_union(expression: str) -> list[str]:
    """Split a FHIRPath expression on its top-level ``|`` (not inside parentheses, brackets or strings)."""
    return list(_split_union(expression))


@lru_cache(maxsize=4096)
def _split_union(expression: str) -> tuple[str, ...]:
    """Cached: the registry splits a definition once per base it applies to (`Resource` ones: 146)."""
    if "|" not in expression:
        return (expression.strip(),) if expression.strip() else ()
    parts: list[str] = []
    depth = 0
    quoted = False
    start = 0
    for i, ch in enumerate(expression):
        if ch == "'" and (i == 0 or expression[i - 1] != "\\"):
            quoted = not quoted
        elif quoted:
            continue
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append(expression[start:i].strip())
            start = i + 1
    parts.append(expression[start:].strip())
    return tuple(p for p in parts if p)


_LEADING_NAME = re.compile(r"^\(*\s*([A-Za-z_][A-Za-z0-9_]*)")


def restrict_expression(expression: str | None, base: str, declared_base: str) -> str | None:
    """Keep the union branches of ``expression`` that apply to ``base``; ``Resource.`` becomes ``base.``."""
    if not expression:
        return None
    types = concrete_resource_types()
    kept: list[str] = []
    for branch in split_union(expression):
        match = _LEADING_NAME.match(branch)
        if match is None:
            kept.append(branch)
            continue
        name = match.group(1)
        if name == base:
            kept.append(branch)
        elif name in ABSTRACT_BASES and declared_base in ABSTRACT_BASES:
            kept.append(branch[: match.start(1)] + base + branch[match.end(1) :])
        elif name in types or name in ABSTRACT_BASES:
            continue  # a branch for another base
        else:
            kept.append(branch)  # relative to the resource, e.g. ``name | alias``
    return " | ".join(kept) if kept else None


_AS_OPERATOR = re.compile(r"\s+as\s+([A-Za-z][A-Za-z0-9]*)")
_AS_FUNCTION = re.compile(r"\.as\(\s*([A-Za-z][A-Za-z0-9]*)\s*\)")


def normalize_as(expression: str) -> str:
    """Write ``x as T`` and ``x.as(T)`` as ``x.ofType(T)``.

    FHIRPath makes ``as`` an error on a collection of more than one item; R4 uses it on repeating elements
    (``Goal.target.due as date``), and R5 rewrote those expressions with ``ofType``, which is what indexing
    needs. Both the compiled extractors and the fhirpathpy fallback evaluate the rewritten form.
    """
    expression = _AS_FUNCTION.sub(r".ofType(\1)", expression)
    return _AS_OPERATOR.sub(r".ofType(\1)", expression)


def _strip_parens(branch: str) -> str:
    while branch.startswith("(") and branch.endswith(")"):
        depth = 0
        for i, ch in enumerate(branch):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and i < len(branch) - 1:
                return branch  # the parentheses close before the end: not redundant
        branch = branch[1:-1].strip()
    return branch


def branch_set(expression: str | None, base: str) -> frozenset[str]:
    """The normalised union branches of an expression, for comparing definitions."""
    if not expression:
        return frozenset()
    out = set()
    for branch in split_union(normalize_as(expression)):
        branch = re.sub(r"\s+", "", _strip_parens(branch))
        match = _LEADING_NAME.match(branch)
        if match and match.group(1) != base and match.group(1) not in concrete_resource_types():
            branch = f"{base}.{branch}"
        out.add(branch)
    return frozenset(out)


# --- building ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Candidate:
    param: SearchParam
    source: str  # "core" or the IG package id
    version: str  # the IG package version ("" for core)


def _package_of(entry: Mapping[str, Any]) -> tuple[str, str]:
    for ext in entry.get("extension", ()):
        if ext.get("url") == PACKAGE_SOURCE:
            parts = {e["url"]: e.get("valueId") or e.get("valueString") for e in ext.get("extension", ())}
            return str(parts.get("packageId", "")), str(parts.get("version", ""))
    return "", ""


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version))


def _precedence(candidate: _Candidate) -> tuple[int, tuple[int, ...]]:
    rank = IG_PRECEDENCE.index(candidate.source) if candidate.source in IG_PRECEDENCE else len(IG_PRECEDENCE)
    return rank, tuple(-v for v in _version_key(candidate.version))


def merge_rule(held: _Candidate, new: _Candidate) -> tuple[_Candidate, str]:
    """Decide between two definitions of the same base and code; returns the winner and why."""
    p_held, p_new = held.param, new.param
    b_held, b_new = branch_set(p_held.expression, p_held.base), branch_set(p_new.expression, p_new.base)
    if p_held.type == p_new.type and b_held == b_new:
        return held, "duplicate"
    superset = p_held.type == p_new.type and b_new > b_held
    if held.source == "core":
        return (new, "ig-superset") if superset else (held, "core-preferred")
    if superset:
        return new, "ig-superset"
    if b_held > b_new and p_held.type == p_new.type:
        return held, "held-superset"
    return (held, "precedence") if _precedence(held) <= _precedence(new) else (new, "precedence")


def _params_of(resource: Mapping[str, Any], url_to_code: Mapping[str, str]) -> Iterator[SearchParam]:
    code = resource.get("code")
    ptype = resource.get("type")
    if not code or not ptype or code in UNSUPPORTED_CODES:
        return
    types = concrete_resource_types()
    for declared in resource.get("base", ()):
        if declared == "Resource":
            bases: Iterable[str] = sorted(types)
        elif declared == "DomainResource":
            bases = sorted(types - NON_DOMAIN_RESOURCES)
        elif declared in types:
            bases = (declared,)
        else:
            log.debug("search parameter %s has unknown base %s", resource.get("url"), declared)
            continue
        for base in bases:
            expression = restrict_expression(resource.get("expression"), base, declared)
            if expression is None:
                continue
            components = tuple(
                (_component_code(c.get("definition", ""), url_to_code), c.get("expression", ""))
                for c in resource.get("component", ())
            )
            yield SearchParam(
                code=code,
                base=base,
                type=ptype,
                expression=expression,
                url=resource.get("url", ""),
                targets=tuple(resource.get("target", ())),
                components=components,
                modifiers=_merged(DEFAULT_MODIFIERS.get(ptype, ()), resource.get("modifier")),
                comparators=_merged(DEFAULT_COMPARATORS.get(ptype, ()), resource.get("comparator")),
            )


def _merged(defaults: tuple[str, ...], declared: Iterable[str] | None) -> tuple[str, ...]:
    # Plan-Net declares ``ofType`` where R4 spells ``of-type``.
    extra = ("of-type" if m == "ofType" else m for m in declared or ())
    return tuple(dict.fromkeys((*defaults, *extra)))


def _component_code(definition: str, url_to_code: Mapping[str, str]) -> str:
    if definition in url_to_code:
        return url_to_code[definition]
    log.debug("composite component %s is not a known SearchParameter", definition)
    return definition.rsplit("/", 1)[-1]


def _entries(bundle: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    entries = bundle.get("entry", ())
    return [e for e in entries if e.get("resource", {}).get("resourceType") == "SearchParameter"]


def build_registry(
    core: Mapping[str, Any], ig: Mapping[str, Any] | None = None, *, decisions: list[str] | None = None
) -> SearchParamRegistry:
    """Build a registry from the core Bundle and the vendored IG Bundle (see the module docstring).

    ``decisions``, when given, receives one line per merge of two definitions (for tests and audits).
    """
    core_entries = _entries(core)
    ig_entries = _entries(ig) if ig else []
    url_to_code = {e["resource"]["url"]: e["resource"]["code"] for e in core_entries + ig_entries}
    held: dict[tuple[str, str], _Candidate] = {}
    candidates: list[_Candidate] = [
        _Candidate(p, "core", "") for e in core_entries for p in _params_of(e["resource"], url_to_code)
    ]
    ig_candidates = [
        _Candidate(p, *_package_of(e)) for e in ig_entries for p in _params_of(e["resource"], url_to_code)
    ]
    # IGs in precedence order so that "held" is always the one of higher precedence among equals.
    candidates.extend(sorted(ig_candidates, key=_precedence))
    for cand in candidates:
        key = (cand.param.base, cand.param.code)
        if key not in held:
            held[key] = cand
            continue
        winner, why = merge_rule(held[key], cand)
        if decisions is not None:
            loser = held[key] if winner is cand else cand
            decisions.append(f"{key[0]}.{key[1]}: {why}: {_label(winner)} over {_label(loser)}")
        held[key] = winner
    return SearchParamRegistry(c.param for c in held.values())


def _label(candidate: _Candidate) -> str:
    source = f"{candidate.source}#{candidate.version}" if candidate.version else candidate.source
    return f"{source} {candidate.param.url} ({candidate.param.expression})"


def load_ig_bundle() -> Mapping[str, Any]:
    data = resources.files("openpayer.fhir").joinpath("data", "ig-search-parameters.json.gz").read_bytes()
    bundle: Mapping[str, Any] = orjson.loads(gzip.decompress(data))
    return bundle


@cache
def default_registry() -> SearchParamRegistry:
    """The registry of R4 core plus the served IGs; built once per process."""
    return build_registry(definitions.load("search-parameters"), load_ig_bundle())
