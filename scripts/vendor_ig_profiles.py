"""Vendor the implementation guides' profiles, in a compact form, into the openpayer package.

Reads the IG packages under ``../shared/ig/`` (provenance in ``../shared/SOURCES.md``) and the vendored
FHIR R4 definitions (``src/openpayer/fhir/data/``), and writes ``src/openpayer/fhir/data/ig-profiles.json.gz``
for `openpayer.fhir.profiles`: one JSON object (format 1) with

- ``profiles``: ``{"url|version": profile}`` for every StructureDefinition with ``derivation=constraint``
  in the packages (resource profiles and extension definitions). A profile is ``{"url", "version",
  "name", "type", "kind", "package", "elements": [...]}``, where ``elements`` keeps, in snapshot order,
  only the snapshot elements that say something the base R4 definition does not (tighter cardinality,
  slicing and slices, fixed/pattern values, narrower choice types, extension profiles, required or
  extensible bindings that differ from the base, constraints not in R4) and their ancestors, each cut
  down to ``id``, ``path``, ``min``, ``max``, ``baseMin``, ``baseMax`` and whichever of ``sliceName``,
  ``slicing``, ``fixed``/``pattern`` (``[json key, value]``), ``types`` (codes, on choice elements),
  ``profiles`` (extension definitions, resolved to ``url|version``), ``binding`` (``[strength,
  value-set key]``) and ``constraints`` (``[key, severity, human, expression]``) apply;
- ``canonical``: ``{url: ["url|version", ...]}``, newest version first;
- ``packages``: ``{"name#version": {dependency name: version}}`` (from each ``package.json``);
- ``valueSets``: ``{"url|version": {system: [codes] | "*"}}``, the expansion of every value set a kept
  binding or a constraint's ``memberOf()`` names, from the packages' ValueSets and CodeSystems and R4's
  (``"*"``: any code of that system, for an include the package cannot enumerate: a filter or a code
  system that is not shipped). Value sets that cannot be found at all are left out (not checked).

References between packages (an extension's profile, a binding's value set) resolve to the same package,
else the version the package depends on (``package.json``), else the newest shipped. The output is
deterministic (sorted keys, gzip without name or timestamp). Run from the repository root::

    .venv/bin/python scripts/vendor_ig_profiles.py [--shared ../shared] [--check]
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "src" / "openpayer" / "fhir" / "data"
OUTPUT = DATA / "ig-profiles.json.gz"
FOLDERS = (
    "carin-bb-2.0.0",
    "pdex-2.0.0",
    "plan-net-1.1.0",
    "us-core-3.1.1",
    "us-core-6.1.0",
    "us-drug-formulary-2.0.1",
)
_MEMBER_OF = re.compile(r"memberOf\('([^']+)'\)")
_CODED = frozenset({"code", "Coding", "CodeableConcept", "Quantity"})


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in re.split(r"[.-]", version))


def _read_gz(name: str) -> Any:
    return json.loads(gzip.decompress((DATA / f"{name}.json.gz").read_bytes()))


class Registry:
    """Conformance resources by canonical URL and version, with each package's dependency versions."""

    def __init__(self, shared: Path) -> None:
        self.by_url: dict[str, dict[str, dict[str, Any]]] = {}  # resourceType -> url|version -> resource
        self.package_of: dict[str, str] = {}  # url|version -> package id
        self.deps: dict[str, dict[str, str]] = {}  # package id -> {package name: version}
        self.packages: dict[str, str] = {}  # package id -> folder
        for folder in FOLDERS:
            meta = json.loads((shared / "ig" / folder / "package.json").read_text())
            package = f"{meta['name']}#{meta['version']}"
            self.packages[package] = folder
            self.deps[package] = dict(meta.get("dependencies", {}))
            for path in sorted((shared / "ig" / folder).glob("*.json")):
                resource = json.loads(path.read_text(encoding="utf-8-sig"))
                if resource.get("resourceType") in ("StructureDefinition", "ValueSet", "CodeSystem"):
                    self.add(resource, package)
        for bundle in (_read_gz("valuesets"), _read_gz("profiles-types"), _read_gz("profiles-resources")):
            for entry in bundle["entry"]:
                resource = entry["resource"]
                if resource["resourceType"] in ("ValueSet", "CodeSystem", "StructureDefinition"):
                    self.add(resource, "hl7.fhir.r4.core#4.0.1")

    def add(self, resource: dict[str, Any], package: str) -> None:
        key = f"{resource['url']}|{resource.get('version', '')}"
        table = self.by_url.setdefault(resource["resourceType"], {})
        if key not in table:
            table[key] = resource
            self.package_of[key] = package

    def resolve(self, rtype: str, reference: str, package: str) -> str | None:
        """``url|version`` of the resource `reference` names from `package`, or None when not shipped."""
        url, _, version = reference.partition("|")
        table = self.by_url.get(rtype, {})
        candidates = [k for k in table if k.rpartition("|")[0] == url]
        if not candidates:
            return None
        if version:
            exact = [k for k in candidates if k.rpartition("|")[2] == version]
            return exact[0] if exact else None
        for key in candidates:
            if self.package_of[key] == package:
                return key
        for name, dep_version in self.deps.get(package, {}).items():
            for key in candidates:
                if self.package_of[key] == f"{name}#{dep_version}":
                    return key
        return max(candidates, key=lambda k: _version_key(k.rpartition("|")[2]))


class Expander:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.done: dict[str, dict[str, Any] | None] = {}

    def expand(self, key: str) -> dict[str, Any] | None:
        if key not in self.done:
            self.done[key] = None  # include cycles
            self.done[key] = self._expand(key)
        return self.done[key]

    def _system(self, system: str, package: str) -> set[str] | None:
        key = self.registry.resolve("CodeSystem", system, package)
        cs = self.registry.by_url["CodeSystem"].get(key) if key else None
        if cs is None or cs.get("content") != "complete":
            return None
        codes: set[str] = set()
        stack = list(cs.get("concept", []))
        while stack:
            concept = stack.pop()
            codes.add(concept["code"])
            stack.extend(concept.get("concept", []))
        return codes

    def _expand(self, key: str) -> dict[str, Any] | None:
        vs = self.registry.by_url["ValueSet"][key]
        package = self.registry.package_of[key]
        result: dict[str, Any] = {}

        def merge(system: str, codes: Any) -> None:
            if codes == "*" or result.get(system) == "*":
                result[system] = "*"
            else:
                result.setdefault(system, set()).update(codes)

        compose = vs.get("compose")
        if not compose:
            contains = vs.get("expansion", {}).get("contains")
            if not contains:
                return None
            for item in contains:
                merge(item["system"], {item["code"]})
            return result
        for clause in compose.get("include", []):
            system = clause.get("system")
            if system is not None:
                if "concept" in clause and "filter" not in clause:
                    merge(system, {c["code"] for c in clause["concept"]})
                else:
                    codes = None if "filter" in clause else self._system(system, package)
                    merge(system, "*" if codes is None else codes)
            for ref in clause.get("valueSet", []):
                sub_key = self.registry.resolve("ValueSet", ref, package)
                sub = self.expand(sub_key) if sub_key else None
                if sub is None:
                    return None
                for sub_system, codes in sub.items():
                    if system is None:
                        merge(sub_system, codes)
        for clause in compose.get("exclude", []):
            codes = result.get(clause.get("system"))
            if isinstance(codes, set) and "concept" in clause and "filter" not in clause:
                codes.difference_update(c["code"] for c in clause["concept"])
        return result


class BaseIndex:
    """R4 snapshot elements by path, to tell what a profile adds to the base definition."""

    def __init__(self, registry: Registry) -> None:
        self.elements: dict[str, dict[str, Any]] = {}
        self.constraints: set[tuple[str, str]] = set()
        for key, sd in registry.by_url["StructureDefinition"].items():
            if registry.package_of[key] != "hl7.fhir.r4.core#4.0.1" or sd.get("derivation") == "constraint":
                continue
            for element in sd.get("snapshot", {}).get("element", []):
                self.elements.setdefault(element["path"], element)
                for constraint in element.get("constraint", []):
                    self.constraints.add((constraint["key"], constraint.get("expression", "")))


def _max(value: str) -> int | None:
    return None if value == "*" else int(value)


def _prefixed(element: dict[str, Any], prefix: str) -> list[str]:
    return [k for k in element if k.startswith(prefix) and k[len(prefix) : len(prefix) + 1].isupper()]


class ProfileCompactor:
    def __init__(self, registry: Registry, base: BaseIndex) -> None:
        self.registry = registry
        self.base = base
        self.value_sets: set[str] = set()
        self.skipped_bindings: set[str] = set()

    def compact(self, key: str, sd: dict[str, Any]) -> dict[str, Any]:
        package = self.registry.package_of[key]
        elements = sd["snapshot"]["element"]
        out: dict[str, dict[str, Any]] = {}
        relevant: set[str] = set()
        for i, element in enumerate(elements):
            compact, interesting = self.element(element, package, root=i == 0)
            out[element["id"]] = compact
            if interesting:
                relevant.add(element["id"])
        keep: set[str] = set()
        for element_id in relevant:
            parts = element_id.split(".")
            for n in range(1, len(parts) + 1):
                keep.add(".".join(parts[:n]))
                last = parts[n - 1]
                if ":" in last:  # the sliced element itself
                    keep.add(".".join([*parts[: n - 1], last.split(":", 1)[0]]))
        kept = [out[e["id"]] for e in elements if e["id"] in keep or e is elements[0]]
        return {
            "url": sd["url"],
            "version": sd.get("version", ""),
            "name": sd["name"],
            "type": sd["type"],
            "kind": sd["kind"],
            "package": package,
            "elements": kept,
        }

    def element(self, element: dict[str, Any], package: str, root: bool) -> tuple[dict[str, Any], bool]:
        base = element.get("base", {})
        base_el = self.base.elements.get(base.get("path", ""), {})
        out: dict[str, Any] = {
            "id": element["id"],
            "path": element["path"],
            "min": element.get("min", 0),
            "max": _max(element.get("max", "*")),
            "baseMin": base.get("min", element.get("min", 0)),
            "baseMax": _max(base.get("max", element.get("max", "*"))),
        }
        interesting = root
        if out["min"] > out["baseMin"] or (
            out["max"] is not None and (out["baseMax"] is None or out["max"] < out["baseMax"])
        ):
            interesting = True
        if "sliceName" in element:
            out["sliceName"] = element["sliceName"]
            interesting = True
        if "slicing" in element:
            slicing = element["slicing"]
            out["slicing"] = {
                "discriminator": [[d["type"], d["path"]] for d in slicing.get("discriminator", [])],
                "rules": slicing.get("rules", "open"),
                "ordered": bool(slicing.get("ordered", False)),
            }
            interesting = True
        for prefix in ("fixed", "pattern"):
            keys = _prefixed(element, prefix)
            if keys:
                out[prefix] = [keys[0][len(prefix) :], element[keys[0]]]
                interesting = True
        types = element.get("type", [])
        codes = [t["code"] for t in types]
        base_codes = [t["code"] for t in base_el.get("type", [])]
        narrowed = bool(base_codes) and set(codes) != set(base_codes)
        if element["path"].endswith("[x]") or narrowed:
            out["types"] = codes
            interesting = interesting or narrowed
        profiles: list[str] = []
        for type_entry in types:
            if type_entry["code"] == "Extension":
                for profile in type_entry.get("profile", []):
                    resolved = self.registry.resolve("StructureDefinition", profile, package)
                    profiles.append(resolved or profile)
        if profiles:
            out["profiles"] = profiles
            interesting = True
        binding = element.get("binding")
        if binding and binding.get("strength") in ("required", "extensible") and _CODED.intersection(codes):
            base_binding = base_el.get("binding", {})
            same = (binding.get("valueSet"), binding.get("strength")) == (
                base_binding.get("valueSet"),
                base_binding.get("strength"),
            )
            vs_key = self.registry.resolve("ValueSet", binding.get("valueSet", ""), package)
            if vs_key is None:
                self.skipped_bindings.add(binding.get("valueSet", ""))
            elif not same or "sliceName" in element or element["id"] != element["path"]:
                out["binding"] = [binding["strength"], vs_key]
                self.value_sets.add(vs_key)
                interesting = True
        constraints = []
        for constraint in element.get("constraint", []):
            expression = constraint.get("expression", "")
            if (constraint["key"], expression) in self.base.constraints or not expression:
                continue
            constraints.append(
                [constraint["key"], constraint["severity"], constraint.get("human", ""), expression]
            )
            for url in _MEMBER_OF.findall(expression):
                vs_key = self.registry.resolve("ValueSet", url, package)
                if vs_key:
                    self.value_sets.add(vs_key)
        if constraints:
            out["constraints"] = constraints
            interesting = True
        return out, interesting


def build(shared: Path) -> tuple[dict[str, Any], dict[str, int]]:
    registry = Registry(shared)
    compactor = ProfileCompactor(registry, BaseIndex(registry))
    profiles: dict[str, Any] = {}
    for key, sd in sorted(registry.by_url["StructureDefinition"].items()):
        if registry.package_of[key].startswith("hl7.fhir.r4.core#") or sd.get("derivation") != "constraint":
            continue
        profiles[key] = compactor.compact(key, sd)
    canonical: dict[str, list[str]] = {}
    for key in profiles:
        canonical.setdefault(key.rpartition("|")[0], []).append(key)
    for keys in canonical.values():
        keys.sort(key=lambda k: _version_key(k.rpartition("|")[2]), reverse=True)
    expander = Expander(registry)
    value_sets: dict[str, Any] = {}
    for vs_key in sorted(compactor.value_sets):
        expansion = expander.expand(vs_key)
        if expansion is not None:
            value_sets[vs_key] = {
                system: codes if codes == "*" else sorted(codes)
                for system, codes in sorted(expansion.items())
            }
    stats = {
        "profiles": len(profiles),
        "elements": sum(len(p["elements"]) for p in profiles.values()),
        "valueSets": len(value_sets),
        "valueSetsNotExpandable": len(compactor.value_sets) - len(value_sets),
        "bindingsToUnshippedValueSets": len(compactor.skipped_bindings),
    }
    document = {
        "format": 1,
        "fhirVersion": "4.0.1",
        "packages": {
            package: dict(sorted(registry.deps[package].items())) for package in sorted(registry.packages)
        },
        "profiles": profiles,
        "canonical": dict(sorted(canonical.items())),
        "valueSets": value_sets,
    }
    return document, stats


def encode(document: dict[str, Any]) -> bytes:
    raw = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return gzip.compress(raw, compresslevel=9, mtime=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    parser.add_argument("--check", action="store_true", help="verify the vendored file is up to date")
    args = parser.parse_args(argv)
    document, stats = build(args.shared)
    data = encode(document)
    if args.check:
        current = OUTPUT.read_bytes() if OUTPUT.exists() else b""
        if current != data:
            print(
                f"{OUTPUT.relative_to(REPO)} is out of date; run scripts/vendor_ig_profiles.py",
                file=sys.stderr,
            )
            return 1
        print(f"{OUTPUT.relative_to(REPO)} is up to date")
        return 0
    OUTPUT.write_bytes(data)
    print(f"wrote {OUTPUT.relative_to(REPO)} ({len(data):,} bytes): {json.dumps(stats)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
