"""A small profile checker for the seed tests, driven by the IG snapshots in ../shared/ig.

It is not a full FHIR validator. For every profile a resource claims in ``meta.profile`` it checks, on the
snapshot: cardinality (min and max) of elements and slices, fixed and pattern values, required bindings to
IG value sets that can be expanded locally (enumerated codes, whole code systems, nested value sets), and
the profile's own FHIRPath invariants (through fhirpathpy; those using resolve() or memberOf() are
skipped). Slices are matched by their value/pattern discriminators; type-discriminated slices are matched
by JSON key.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from fhirpathpy import compile as compile_fhirpath
from fhirpathpy.models import models

R4 = models["r4"]

Json = Any
BASE_CONSTRAINTS = ("ele-", "dom-", "ext-", "ref-", "txt-", "inv-", "sdf-", "per-", "qty-", "eob-", "obs-")


class Profiles:
    def __init__(self, ig_root: Path) -> None:
        self.sds: dict[str, Json] = {}
        self.valuesets: dict[str, Json] = {}
        self.codesystems: dict[str, set[str]] = {}
        self._expansions: dict[tuple[str, bool], dict[str, set[str] | None] | None] = {}
        for path in sorted(ig_root.glob("*/*.json")):
            data = json.loads(path.read_text())
            kind = data.get("resourceType")
            if kind == "StructureDefinition" and data.get("snapshot"):
                self.sds.setdefault(data["url"], data)
            elif kind == "ValueSet":
                self.valuesets.setdefault(data["url"], data)
            elif kind == "CodeSystem" and data.get("content") == "complete":
                self.codesystems[data["url"]] = _codes(data.get("concept", []))

    # --- value sets -----------------------------------------------------------------------------------
    def expand(
        self, url: str, _seen: frozenset[str] = frozenset(), approximate: bool = False
    ) -> dict[str, set[str] | None] | None:
        """{system: codes or None for any code of the system}; None when not expandable here.

        ``approximate`` widens a filtered include (e.g. RxNorm TTY = SCD) to the whole code system."""
        if not _seen and (url, approximate) in self._expansions:
            return self._expansions[(url, approximate)]
        result = self._expand(url, _seen, approximate)
        if not _seen:
            self._expansions[(url, approximate)] = result
        return result

    def _expand(
        self, url: str, _seen: frozenset[str], approximate: bool
    ) -> dict[str, set[str] | None] | None:
        vs = self.valuesets.get(url.split("|")[0])
        if vs is None or url in _seen:
            return None
        out: dict[str, set[str] | None] = {}
        for inc in vs.get("compose", {}).get("include", []):
            for nested in inc.get("valueSet", []):
                sub = self.expand(nested, _seen | {url}, approximate)
                if sub is None:
                    return None
                for system, codes in sub.items():
                    _merge(out, system, codes)
            system = inc.get("system")
            if not system:
                continue
            if inc.get("filter"):
                if not approximate:
                    return None
                _merge(out, system, None)
                continue
            if inc.get("concept"):
                _merge(out, system, {c["code"] for c in inc["concept"]})
            else:
                _merge(out, system, self.codesystems.get(system))
        return out

    # --- checking -------------------------------------------------------------------------------------
    def check(self, resource: Json) -> list[str]:
        problems = []
        for url in resource.get("meta", {}).get("profile", []):
            sd = self.sds.get(url.split("|")[0])
            if sd is None:
                problems.append(f"unknown profile {url}")
                continue
            problems += [f"{sd['name']}: {p}" for p in self._check(resource, sd)]
        for ext in _extensions(resource):
            sd = self.sds.get(ext.get("url", ""))
            if sd is not None and sd.get("type") == "Extension":
                problems += [f"{sd['name']}: {p}" for p in self._check(ext, sd)]
        return problems

    def _check(self, resource: Json, sd: Json) -> list[str]:
        by_id, relevant = _elements(sd["url"], self)
        problems: list[str] = []
        memo: dict[tuple[str, ...], list[Json]] = {}
        for el in relevant:
            segments = el["id"].split(".")[1:]
            parents = _nodes(resource, segments[:-1], by_id, sd["type"], memo)
            if not parents:
                continue
            last = segments[-1]
            for parent in parents:
                values = _children(parent, last, el["id"], by_id)
                if len(values) < el.get("min", 0):
                    problems.append(f"{el['id']}: {len(values)} < min {el['min']}")
                if el.get("max") not in (None, "*") and len(values) > int(el["max"]):
                    problems.append(f"{el['id']}: {len(values)} > max {el['max']}")
                for value in values:
                    problems += _fixed(el, value)
                    problems += self._binding(el, value)
        problems += self._invariants(resource, sd)
        return problems

    def _binding(self, el: Json, value: Json) -> list[str]:
        binding = el.get("binding")
        if not binding or binding.get("strength") != "required" or "valueSet" not in binding:
            return []
        expansion = self.expand(binding["valueSet"])
        if expansion is None:
            return []
        codings = _codings(value)
        if codings is None:
            return []
        for system, code in codings:
            for s, codes in expansion.items():
                if (system is None or s == system) and (codes is None or code in codes):
                    return []
        return [f"{el['id']}: {codings} not in {binding['valueSet']}"]

    def in_valueset(self, value: Json, url: str) -> bool:
        expansion = self.expand(url, approximate=True)
        codings = _codings(value)
        if expansion is None or codings is None:
            return False
        return any(
            (system is None or s == system) and (codes is None or code in codes)
            for system, code in codings
            for s, codes in expansion.items()
        )

    def _invariants(self, resource: Json, sd: Json) -> list[str]:
        problems = []
        by_id, _ = _elements(sd["url"], self)
        env = {"resource": resource, "rootResource": resource}
        for el, key, expr in _constraints(sd):
            segments = el["id"].split(".")[1:]
            try:
                if not segments:
                    results = [_fhirpath(expr, True)(resource, env)]
                elif ":" not in el["id"]:
                    results = [_fhirpath(f"{el['path']}.all({expr})", True)(resource, env)]
                else:  # inside a slice: evaluate on the slice's own nodes
                    nodes = _nodes(resource, segments, by_id, sd["type"])
                    fn = _fhirpath(expr, False)
                    results = [fn(node, env) for node in nodes if isinstance(node, dict)]
            except Exception:  # unsupported FHIRPath: not checkable here
                continue
            if any(r == [False] for r in results):
                problems.append(f"invariant {key} failed: {expr}")
        return problems


_ELEMENTS: dict[str, tuple[dict[str, Json], list[Json]]] = {}
_CONSTRAINTS: dict[str, list[tuple[Json, str, str]]] = {}


def _constraints(sd: Json) -> list[tuple[Json, str, str]]:
    """(element, key, expression) of the profile's own error invariants that fhirpathpy can evaluate."""
    if sd["url"] not in _CONSTRAINTS:
        elements = sd["snapshot"]["element"]
        unsliced = {
            (e["path"], c["key"]) for e in elements if ":" not in e["id"] for c in e.get("constraint", [])
        }
        found = []
        for el in elements:
            for con in el.get("constraint", []):
                key, expr = con["key"], con.get("expression")
                if con.get("severity") != "error" or not expr or key.startswith(BASE_CONSTRAINTS):
                    continue
                if "resolve()" in expr or "memberOf" in expr or "conformsTo" in expr:
                    continue
                if ":" in el["id"] and (el["path"], key) in unsliced:
                    continue  # inherited from the unsliced element, evaluated there
                found.append((el, key, expr))
        _CONSTRAINTS[sd["url"]] = found
    return _CONSTRAINTS[sd["url"]]


def _elements(url: str, profiles: Profiles) -> tuple[dict[str, Json], list[Json]]:
    """The snapshot by id, and the elements that constrain anything this checker looks at."""
    if url not in _ELEMENTS:
        elements = profiles.sds[url]["snapshot"]["element"]
        relevant = [
            el
            for el in elements[1:]
            if el.get("min", 0) >= 1
            or (el.get("max") not in (None, "*") and (":" in el["id"] or el["max"] == "0"))
            or any(k.startswith(("fixed", "pattern")) for k in el)
            or el.get("binding", {}).get("strength") == "required"
        ]
        for el in relevant:
            el["_fixed"] = [(k, v) for k, v in el.items() if k.startswith(("fixed", "pattern"))]
        _ELEMENTS[url] = ({e["id"]: e for e in elements}, relevant)
    return _ELEMENTS[url]


@cache
def _fhirpath(expr: str, with_model: bool) -> Any:
    return compile_fhirpath(expr, R4 if with_model else None)


def _extensions(node: Json) -> list[Json]:
    """Every extension (at any depth) of a resource."""
    found: list[Json] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("extension", "modifierExtension") and isinstance(value, list):
                found += [v for v in value if isinstance(v, dict)]
            found += _extensions(value)
    elif isinstance(node, list):
        for item in node:
            found += _extensions(item)
    return found


def _codes(concepts: list[Json]) -> set[str]:
    out: set[str] = set()
    for c in concepts:
        out.add(c["code"])
        out |= _codes(c.get("concept", []))
    return out


def _merge(out: dict[str, set[str] | None], system: str, codes: set[str] | None) -> None:
    if system in out and out[system] is None:
        return
    if codes is None:
        out[system] = None
    else:
        out[system] = (out.get(system) or set()) | codes


def _codings(value: Json) -> list[tuple[str | None, str]] | None:
    if isinstance(value, str):
        return [(None, value)]
    if isinstance(value, dict) and "coding" in value:
        return [(c.get("system"), c.get("code")) for c in value["coding"]]
    if isinstance(value, dict) and "code" in value and "system" in value:
        return [(value["system"], value["code"])]
    return None


def _nodes(
    resource: Json,
    segments: list[str],
    by_id: dict[str, Json],
    root: str,
    memo: dict[tuple[str, ...], list[Json]] | None = None,
) -> list[Json]:
    key = tuple(segments)
    if memo is not None and key in memo:
        return memo[key]
    if memo is not None and segments:
        nodes = []
        for node in _nodes(resource, segments[:-1], by_id, root, memo):
            if isinstance(node, dict):
                nodes += _children(node, segments[-1], ".".join([root, *segments]), by_id)
        memo[key] = nodes
        return nodes
    nodes = [resource]
    for i, seg in enumerate(segments):
        nxt = []
        for node in nodes:
            if isinstance(node, dict):
                nxt += _children(node, seg, ".".join([root, *segments[: i + 1]]), by_id)
        nodes = nxt
        if not nodes:
            break
    return nodes


def _children(node: Json, segment: str, element_id: str, by_id: dict[str, Json]) -> list[Json]:
    name, _, slice_name = segment.partition(":")
    if name.endswith("[x]"):
        stem = name[:-3]
        keys = [k for k in node if k.startswith(stem) and k[len(stem) : len(stem) + 1].isupper()]
        if slice_name:  # a type slice: "value[x]:valueQuantity"
            keys = [k for k in keys if k == slice_name]
        values = [node[k] for k in keys]
        return values
    raw = node.get(name)
    values = [] if raw is None else raw if isinstance(raw, list) else [raw]
    if not slice_name:
        return values
    return [v for v in values if _in_slice(v, element_id, by_id)]


def _in_slice(value: Json, slice_id: str, by_id: dict[str, Json]) -> bool:
    base_id = slice_id.rsplit(":", 1)[0]
    base = by_id.get(base_id) or {}
    discriminators = base.get("slicing", {}).get("discriminator", [])
    slice_el = by_id.get(slice_id, {})
    if not discriminators:
        return False
    for disc in discriminators:
        path = disc["path"]
        target = slice_el if path == "$this" else by_id.get(f"{slice_id}.{path}")
        actual = value if path == "$this" else _path_value(value, path)
        if actual is None:
            return False
        expected = None
        if target is not None:
            expected = next((v for k, v in target.items() if k.startswith(("fixed", "pattern"))), None)
        if expected is None and path == "url":
            profiles = [p for t in slice_el.get("type", []) for p in t.get("profile", [])]
            expected = profiles[0] if profiles else None
        if expected is not None:
            if not _matches(expected, actual):
                return False
            continue
        binding = (target or {}).get("binding", {})
        if binding.get("strength") == "required" and _PROFILES is not None:
            if not _PROFILES.in_valueset(actual, binding["valueSet"]):
                return False
            continue
        return False
    return True


def _path_value(value: Json, path: str) -> Json:
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
    return value


def _matches(pattern: Json, actual: Json) -> bool:
    if isinstance(pattern, dict):
        return isinstance(actual, dict) and all(_matches(v, actual.get(k)) for k, v in pattern.items())
    if isinstance(pattern, list):
        items = actual if isinstance(actual, list) else [actual]
        return all(any(_matches(p, a) for a in items) for p in pattern)
    return pattern == actual


def _fixed(el: Json, value: Json) -> list[str]:
    for key, expected in el.get("_fixed", ()):
        if key.startswith("fixed") and value != expected:
            return [f"{el['id']}: {value!r} != fixed {expected!r}"]
        if key.startswith("pattern") and not _matches(expected, value):
            return [f"{el['id']}: {value!r} does not match pattern {expected!r}"]
    return []


_PROFILES: Profiles | None = None


@cache
def profiles_at(root: str) -> Profiles:
    global _PROFILES
    _PROFILES = Profiles(Path(root))
    return _PROFILES
