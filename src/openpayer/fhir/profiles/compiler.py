"""Compile a vendored profile (its kept snapshot elements) into a tree of `Rule`s, once per profile.

A `Rule` is one element definition: the JSON property it governs, its cardinality (checked only where
the profile is stricter than the base definition: the structural validator checks the rest), fixed and
pattern values, allowed choice types, binding, extension profiles, invariants, its child rules, and (for a
sliced element) its slices, each with the matchers its discriminators compile to.
"""

from __future__ import annotations

import logging
from typing import Any

from openpayer.fhir.profiles.invariants import Invariant, compile_invariant
from openpayer.fhir.profiles.store import Expansion, Store

logger = logging.getLogger(__name__)

# Matcher kinds, for a slice discriminator: (kind, path segments, expected)
EQUALS = "equals"  # fixed[x] at the path: the value equals it
CONTAINS = "contains"  # pattern[x] at the path: the value contains it
MEMBER = "member"  # a binding at the path: the value's code is in the value set
TYPE = "type"  # the value's type (choice key suffix or resourceType) is one of these
EXISTS = "exists"  # the path has a value (expected True) or none (False)
PROFILE = "profile"  # the resource declares or conforms to one of these profiles

Matcher = tuple[str, tuple[str, ...], Any]


class Slicing:
    __slots__ = ("closed", "discriminators", "ordered")

    def __init__(self, spec: dict[str, Any]) -> None:
        self.discriminators: list[tuple[str, str]] = [(d[0], d[1]) for d in spec["discriminator"]]
        self.closed = spec["rules"] == "closed"
        self.ordered = bool(spec["ordered"])


class Rule:
    __slots__ = (
        "base_max",
        "base_min",
        "binding",
        "check_max",
        "check_min",
        "children",
        "choice",
        "fixed",
        "id",
        "invariants",
        "matchers",
        "max",
        "min",
        "name",
        "path",
        "pattern",
        "profiles",
        "slice_name",
        "slices",
        "slicing",
        "types",
    )

    def __init__(self, element: dict[str, Any]) -> None:
        self.id: str = element["id"]
        self.path: str = element["path"]
        name = self.path.rpartition(".")[2]
        self.choice = name.endswith("[x]")
        self.name = name[:-3] if self.choice else name
        self.min: int = element["min"]
        self.max: int | None = element["max"]
        self.base_min: int = element["baseMin"]
        self.base_max: int | None = element["baseMax"]
        self.check_min = self.min > self.base_min
        self.check_max = self.max is not None and (self.base_max is None or self.max < self.base_max)
        self.slice_name: str | None = element.get("sliceName")
        self.slicing = Slicing(element["slicing"]) if "slicing" in element else None
        self.fixed: Any = element["fixed"][1] if "fixed" in element else None
        self.pattern: Any = element["pattern"][1] if "pattern" in element else None
        types = element.get("types")
        self.types: frozenset[str] | None = frozenset(_type_suffix(t) for t in types) if types else None
        self.profiles: list[str] = list(element.get("profiles", ()))
        self.binding: tuple[str, str, Expansion] | None = None
        self.invariants: list[Invariant] = []
        self.children: dict[str, Rule] = {}
        self.slices: list[Rule] = []
        self.matchers: list[Matcher] = []

    def child(self, segment: str) -> Rule | None:
        return self.children.get(segment[:-3] if segment.endswith("[x]") else segment)


class CompiledProfile:
    __slots__ = ("key", "label", "package", "root", "type", "url", "version")

    def __init__(self, key: str, spec: dict[str, Any], root: Rule) -> None:
        self.key = key
        self.url: str = spec["url"]
        self.version: str = spec["version"]
        self.type: str = spec["type"]
        self.package: str = spec["package"]
        self.label = f"{spec['name']} ({key})"
        self.root = root


def _type_suffix(code: str) -> str:
    """``dateTime`` -> ``DateTime``: how a choice type appears in a JSON key (``effectiveDateTime``)."""
    return code[:1].upper() + code[1:]


def compile_profile(key: str, store: Store, stats: dict[str, int]) -> CompiledProfile:
    spec = store.profiles[key]
    elements: list[dict[str, Any]] = spec["elements"]
    rules: dict[str, Rule] = {}
    root: Rule | None = None
    for element in elements:
        rule = Rule(element)
        binding = element.get("binding")
        if binding is not None:
            expansion = store.value_set(binding[1])
            if expansion is not None:
                rule.binding = (binding[0], binding[1], expansion)
        for key_, severity, human, expression in element.get("constraints", ()):
            invariant = compile_invariant(key_, severity, human, expression, rule.path, store, stats)
            if invariant is not None:
                rule.invariants.append(invariant)
        rules[rule.id] = rule
        if root is None:
            root = rule
            continue
        parent_id, _, last = rule.id.rpartition(".")
        if ":" in last and rule.slice_name is not None:
            sliced = rules.get(f"{parent_id}.{last.split(':', 1)[0]}")
            if sliced is not None:
                sliced.slices.append(rule)
            continue
        parent = rules.get(parent_id)
        if parent is not None:
            parent.children[rule.name] = rule
    assert root is not None
    for rule in rules.values():
        if rule.slicing is not None:
            for slice_rule in rule.slices:
                slice_rule.matchers = _matchers(rule, slice_rule, store)
    return CompiledProfile(key, spec, root)


def _matchers(sliced: Rule, slice_rule: Rule, store: Store) -> list[Matcher]:
    matchers: list[Matcher] = []
    assert sliced.slicing is not None
    for kind, path in sliced.slicing.discriminators:
        segments = () if path == "$this" else tuple(path.split("."))
        matcher = _matcher(kind, segments, slice_rule, store)
        if matcher is None:
            logger.debug("no discriminator value for %s (%s %s)", slice_rule.id, kind, path)
            continue
        matchers.append(matcher)
    return matchers


def _matcher(kind: str, segments: tuple[str, ...], slice_rule: Rule, store: Store) -> Matcher | None:
    if kind == "type":
        target: Rule | None = slice_rule
        for segment in segments:  # e.g. "resource" of a Bundle.entry slice
            target = target.child(segment) if target is not None else None
        if target is not None and target.types:
            return (TYPE, segments, target.types)
        if not segments and slice_rule.choice and slice_rule.slice_name:  # "value[x]:valueQuantity"
            return (TYPE, segments, frozenset({slice_rule.slice_name[len(slice_rule.name) :]}))
        return None
    if kind == "profile":
        return (PROFILE, segments, tuple(slice_rule.profiles)) if slice_rule.profiles else None
    # value / pattern / exists: find the deepest rule on the path that carries a value
    node: Rule | None = slice_rule
    best: Matcher | None = None
    for depth in range(len(segments) + 1):
        if node is None:
            break
        rest = segments[depth:]
        if kind == "exists":
            if depth == len(segments):
                return (EXISTS, segments, node.min > 0)
        elif node.fixed is not None:
            best = (EQUALS, segments, _navigate_pattern(node.fixed, rest))
        elif node.pattern is not None:
            best = (CONTAINS, segments, _navigate_pattern(node.pattern, rest))
        elif depth == len(segments) and node.binding is not None and node.binding[0] == "required":
            best = best or (MEMBER, segments, node.binding[2])
        if depth < len(segments):
            node = node.child(segments[depth])
    if best is None and segments == ("url",) and slice_rule.profiles:
        return (EQUALS, segments, slice_rule.profiles[0].partition("|")[0])
    if best is not None and best[0] in (EQUALS, CONTAINS) and best[2] is _MISSING:
        return None
    return best


_MISSING = object()


def _navigate_pattern(value: Any, rest: tuple[str, ...]) -> Any:
    """The part of a fixed/pattern value at a relative path (``coding.code`` of a CodeableConcept)."""
    for segment in rest:
        if isinstance(value, list):
            value = value[0] if value else _MISSING
        if not isinstance(value, dict) or segment not in value:
            return _MISSING
        value = value[segment]
    return value
