"""Walk a resource along a compiled profile (`compiler.Rule` tree) and report what it violates.

Expressions follow the structural validator's FHIRPath form: ``ExplanationOfBenefit.adjudication[2].reason``,
a choice by its JSON key (``Observation.valueQuantity``), a nested resource by its container's path. A
missing element or slice is reported at the element (``Patient.identifier``), naming the slice in the
diagnostics; every diagnostic starts with the profile's name and ``url|version``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from openpayer.fhir.outcome import Issue, Severity
from openpayer.fhir.profiles.compiler import (
    CONTAINS,
    EQUALS,
    EXISTS,
    MEMBER,
    PROFILE,
    TYPE,
    CompiledProfile,
    Matcher,
    Rule,
)
from openpayer.fhir.profiles.invariants import in_expansion
from openpayer.fhir.validation.primitives import show

MAX_ISSUES = 1000
_EXTENSIONS = frozenset({"extension", "modifierExtension"})

# A value found for an element: (value or None for an extension-only primitive, its path, choice suffix)
Item = tuple[Any, str, str]
Resolver = Callable[[str, str], CompiledProfile | None]  # (canonical, package asking) -> profile
Conforms = Callable[[dict[str, Any], str], bool]


class TooManyIssues(Exception):
    pass


def contains(value: Any, pattern: Any) -> bool:
    """FHIR pattern matching: every field of the pattern is in the value (lists: each pattern item in
    some value item); primitives compare equal."""
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        return all(key in value and contains(value[key], sub) for key, sub in pattern.items())
    if isinstance(pattern, list):
        values = value if isinstance(value, list) else [value]
        return all(any(contains(v, p) for v in values) for p in pattern)
    return bool(value == pattern and type(value) is type(pattern)) or (
        isinstance(value, int | float) and isinstance(pattern, int | float) and value == pattern
    )


def navigate(value: Any, segments: tuple[str, ...]) -> list[Any]:
    """The values at a simple FHIRPath (``coding.code``, ``value[x]``, ``extension('url')``), flattened."""
    current = [value]
    for segment in segments:
        found: list[Any] = []
        for item in current:
            if not isinstance(item, dict):
                continue
            if segment.startswith("extension(") and segment.endswith(")"):
                url = segment[len("extension(") : -1].strip("'\"")
                exts = item.get("extension")
                if isinstance(exts, list):
                    found.extend(e for e in exts if isinstance(e, dict) and e.get("url") == url)
                continue
            if segment.endswith("[x]"):
                base = segment[:-3]
                values = [
                    v
                    for k, v in item.items()
                    if k.startswith(base) and k[len(base) : len(base) + 1].isupper()
                ]
            elif segment in item:
                values = [item[segment]]
            else:
                continue
            for v in values:
                if isinstance(v, list):
                    found.extend(v)
                else:
                    found.append(v)
        current = found
    return current


class Checker:
    def __init__(
        self,
        profile: CompiledProfile,
        resource: dict[str, Any],
        root: dict[str, Any],
        resolver: Resolver,
        conforms: Conforms,
    ) -> None:
        self.label = profile.label
        self.profile = profile
        self.resource = resource
        self.root = root
        self.resolver = resolver
        self.conforms = conforms
        self.issues: list[Issue] = []

    def report(self, severity: Severity, code: str, diagnostics: str, expression: str) -> None:
        self.issues.append(Issue(severity, code, f"{self.label}: {diagnostics}", (expression,)))
        if len(self.issues) >= MAX_ISSUES:
            raise TooManyIssues

    def run(self, path: str) -> list[Issue]:
        try:
            self.value(self.resource, self.profile.root, path, is_root=True)
        except TooManyIssues:
            self.issues.append(Issue("error", "too-costly", f"{self.label}: more than {MAX_ISSUES} issues"))
        # An item checked against both its element and its slice can break the same rule twice.
        return list(dict.fromkeys(self.issues))

    # -- elements ----------------------------------------------------------------------------------

    def walk(self, obj: dict[str, Any], rule: Rule, path: str) -> None:
        for child in rule.children.values():
            self.element(obj, child, path)

    def collect(self, obj: dict[str, Any], rule: Rule, path: str) -> list[Item]:
        items: list[Item] = []
        name = rule.name
        if rule.choice:
            n = len(name)
            for key, value in obj.items():
                if key.startswith(name) and key[n : n + 1].isupper():
                    items.append((value, f"{path}.{key}", key[n:]))
                elif (
                    key.startswith("_")
                    and key.startswith(name, 1)
                    and key[n + 1 : n + 2].isupper()
                    and key[1:] not in obj
                ):
                    items.append((None, f"{path}.{key[1:]}", key[n + 1 :]))
            return items
        value = obj.get(name)
        if isinstance(value, list):
            items.extend((v, f"{path}.{name}[{i}]", "") for i, v in enumerate(value))
        elif value is not None:
            items.append((value, f"{path}.{name}", ""))
        elif "_" + name in obj:
            items.append((None, f"{path}.{name}", ""))
        return items

    def element(self, obj: dict[str, Any], rule: Rule, path: str) -> None:
        items = self.collect(obj, rule, path)
        where = f"{path}.{rule.name}"
        count = len(items)
        if rule.check_min and count < rule.min:
            self.report(
                "error",
                "required",
                f"{rule.path} requires at least {rule.min} value{'s' if rule.min > 1 else ''}, found {count}",
                where,
            )
        if rule.check_max and rule.max is not None and count > rule.max:
            self.report("error", "structure", f"{rule.path} allows at most {rule.max}, found {count}", where)
        for value, item_path, suffix in items:
            if rule.types is not None and suffix and suffix not in rule.types:
                allowed = ", ".join(sorted(rule.name + t for t in rule.types))
                self.report("error", "structure", f"{rule.path} is restricted to {allowed}", item_path)
                continue
            self.value(value, rule, item_path)
        if rule.slicing is not None and rule.slices:
            self.slices(items, rule, where)

    def value(self, value: Any, rule: Rule, path: str, is_root: bool = False) -> None:
        if value is None:
            return
        if rule.fixed is not None and value != rule.fixed:
            self.report("error", "value", f"{rule.id} must be exactly {show(rule.fixed)}", path)
        if rule.pattern is not None and not contains(value, rule.pattern):
            self.report("error", "value", f"{rule.id} must match the pattern {show(rule.pattern)}", path)
        if rule.binding is not None:
            self.binding(value, rule, path)
        if rule.profiles and isinstance(value, dict):
            self.extension_profiles(value, rule, path)
        for invariant in rule.invariants:
            if invariant.holds(value, self.resource, self.root, is_root) is False:
                self.report("error", "invariant", f"{invariant.key}: {invariant.human}", path)
        if rule.children and isinstance(value, dict):
            self.walk(value, rule, path)

    def extension_profiles(self, value: dict[str, Any], rule: Rule, path: str) -> None:
        for key in rule.profiles:
            compiled = self.resolver(key, self.profile.package)
            if compiled is None:
                continue
            saved = self.label
            self.label = f"{saved}, extension {compiled.label}"
            try:
                self.value(value, compiled.root, path)
            finally:
                self.label = saved

    def other_extension(self, value: dict[str, Any], path: str) -> None:
        """An extension the profile does not slice for: checked against its definition when shipped."""
        compiled = self.resolver(value["url"], self.profile.package)
        if compiled is not None and compiled.type == "Extension":
            saved = self.label
            self.label = f"{saved}, extension {compiled.label}"
            try:
                self.value(value, compiled.root, path)
            finally:
                self.label = saved

    # -- bindings ----------------------------------------------------------------------------------

    def binding(self, value: Any, rule: Rule, path: str) -> None:
        assert rule.binding is not None
        strength, vs_key, expansion = rule.binding
        if isinstance(value, str):
            if strength == "required" and not in_expansion(value, expansion):
                self.report(
                    "error", "code-invalid", f"{show(value)} is not in the required value set {vs_key}", path
                )
            return
        if not isinstance(value, dict):
            return
        if "coding" in value:
            codings = value["coding"] if isinstance(value["coding"], list) else []
            prefix = f"{path}.coding"
            indexed = True
        elif "code" in value or "system" in value:
            codings, prefix, indexed = [value], path, False
        else:
            return  # text only: the binding cannot be checked
        if not codings or in_expansion(value, expansion):
            return
        wrong = [
            f"{prefix}[{i}].code" if indexed else f"{prefix}.code"
            for i, c in enumerate(codings)
            if isinstance(c, dict) and isinstance(c.get("system"), str) and c["system"] in expansion
        ]
        if strength == "required":
            if wrong:
                for where in wrong:
                    self.report(
                        "error", "code-invalid", f"code is not in the required value set {vs_key}", where
                    )
            else:
                systems = ", ".join(sorted(expansion))
                self.report(
                    "error",
                    "code-invalid",
                    f"no coding from the required value set {vs_key} (systems: {systems})",
                    path,
                )
        elif wrong:
            for where in wrong:
                self.report(
                    "warning", "code-invalid", f"code is not in the extensible value set {vs_key}", where
                )

    # -- slicing -----------------------------------------------------------------------------------

    def slices(self, items: list[Item], rule: Rule, where: str) -> None:
        assert rule.slicing is not None
        assigned: dict[int, list[Item]] = {i: [] for i in range(len(rule.slices))}
        # A slice whose discriminator values could not be found in the snapshot matches nothing, so
        # closed slicing cannot be judged then.
        closed = rule.slicing.closed and all(s.matchers for s in rule.slices)
        for item in items:
            value, item_path, suffix = item
            if value is None or (rule.types is not None and suffix and suffix not in rule.types):
                continue  # no value, or a type already reported
            for i, slice_rule in enumerate(rule.slices):
                if slice_rule.matchers and all(self.matches(value, suffix, m) for m in slice_rule.matchers):
                    assigned[i].append(item)
                    break
            else:
                if closed:
                    self.report(
                        "error",
                        "structure",
                        f"{rule.path} matches none of the slices "
                        f"({', '.join(s.slice_name or '?' for s in rule.slices)}) and the slicing is closed",
                        item_path,
                    )
                elif (
                    rule.name in _EXTENSIONS and isinstance(value, dict) and isinstance(value.get("url"), str)
                ):
                    self.other_extension(value, item_path)
        for i, slice_rule in enumerate(rule.slices):
            found = assigned[i]
            label = f"{rule.path}:{slice_rule.slice_name}"
            if slice_rule.matchers and len(found) < slice_rule.min:
                self.report(
                    "error",
                    "required",
                    f"slice {label} requires at least {slice_rule.min}, found {len(found)}",
                    where,
                )
            if slice_rule.max is not None and len(found) > slice_rule.max:
                self.report(
                    "error",
                    "structure",
                    f"slice {label} allows at most {slice_rule.max}, found {len(found)}",
                    where,
                )
            for value, item_path, suffix in found:
                if slice_rule.types is not None and suffix and suffix not in slice_rule.types:
                    allowed = ", ".join(sorted(rule.name + t for t in slice_rule.types))
                    self.report("error", "structure", f"slice {label} is restricted to {allowed}", item_path)
                    continue
                self.value(value, slice_rule, item_path)

    def matches(self, value: Any, suffix: str, matcher: Matcher) -> bool:
        kind, segments, expected = matcher
        if kind == TYPE and not segments:
            found = suffix or (value.get("resourceType") if isinstance(value, dict) else None)
            return isinstance(found, str) and found[:1].upper() + found[1:] in expected
        values = navigate(value, segments)
        if kind == EQUALS:
            return any(v == expected for v in values)
        if kind == CONTAINS:
            return any(contains(v, expected) for v in values)
        if kind == MEMBER:
            return any(in_expansion(v, expected) for v in values)
        if kind == EXISTS:
            return bool(values) == expected
        if kind == TYPE:
            return any(isinstance(v, dict) and str(v.get("resourceType")) in expected for v in values)
        if kind == PROFILE:
            return any(isinstance(v, dict) and any(self.conforms(v, p) for p in expected) for v in values)
        return False
