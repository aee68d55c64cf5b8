"""Derive the compact structure index from the vendored R4 StructureDefinitions and ValueSets.

The vendored bundles take ~0.5 s to parse and ~100 MB once parsed; the validator needs only a few
facts per element (name, cardinality, types, required binding, reference targets). This module boils
them down to a small plain-JSON document (~1 MB), from which `model` builds the runtime element trees.
The document is vendored, built: `openpayer/fhir/data/validation-index.json.gz` (60 KB, parsed in ~10 ms),
written by `scripts/vendor_validation_index.py` from the bundles beside it, so a process does not parse
~100 MB of bundles at its first validation (0.4 s alone, up to a second in a process whose collector
has much to walk). `tests/fhir/validation/test_vendored_index.py` requires it to equal a fresh build.

Index layout (format 1)::

    {"format": 1, "fhirVersion": "4.0.1",
     "resourceTypes": ["Account", ...],                  # concrete resource types
     "nodes": {"Patient": {"kind": "resource", "elements": [...]},
               "Patient.contact": {"kind": "backbone", "elements": [...]},
               "HumanName": {"kind": "type", "elements": [...]}, ...},
     "valueSets": {"http://hl7.org/fhir/ValueSet/administrative-gender": {system: [codes]}}}

An element is ``{"name", "min", "max", "array", "types": [{"code", "node"?, "targets"?}],
"binding"?, "primitiveExtension"?}``; ``max`` is an int or null for "*"; ``node`` names the node that
describes a complex value (a datatype, a backbone path, a contentReference target, or a profile such as
SimpleQuantity); ``targets`` lists the resource types a Reference may point to (absent: any).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

INDEX_FORMAT = 1
FHIR_VERSION = "4.0.1"

_SD_PREFIX = "http://hl7.org/fhir/StructureDefinition/"
_FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
_SYSTEM_PREFIX = "http://hl7.org/fhirpath/System."
# Value sets larger than this are not worth enumerating (and none of R4's required ones are).
_MAX_EXPANSION = 5000
# Datatype profiles that core elements use (e.g. Range.low is a SimpleQuantity).
_TYPE_PROFILES = ("SimpleQuantity", "MoneyQuantity")
_CODED_TYPES = frozenset({"code", "Coding", "CodeableConcept"})


def _resources(bundle: Any, resource_type: str) -> Iterator[dict[str, Any]]:
    for entry in bundle.get("entry", []):
        resource = entry.get("resource") or {}
        if resource.get("resourceType") == resource_type:
            yield resource


def _structure_definitions(bundles: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """R4 4.0.1 definitions only: the republished bundle also carries R4B's SubscriptionStatus."""
    found: dict[str, dict[str, Any]] = {}
    for bundle in bundles:
        for sd in _resources(bundle, "StructureDefinition"):
            if sd.get("fhirVersion", FHIR_VERSION) == FHIR_VERSION:
                found[sd["id"]] = sd
    return found


def _type_code(element: dict[str, Any], type_entry: dict[str, Any]) -> str:
    """FHIR type of an element; System.* codes (ids, Extension.url, primitive values) via their extension."""
    code: str = type_entry["code"]
    if not code.startswith(_SYSTEM_PREFIX):
        return code
    if element.get("base", {}).get("path") == "Resource.id":
        return "id"  # R4 writes Resource.id as System.String, but the spec defines it as an id (§2.6.1)
    for ext in type_entry.get("extension", []):
        if ext.get("url") == _FHIR_TYPE_EXT:
            return str(ext["valueUrl"])
    return "string"


def _targets(type_entry: dict[str, Any]) -> list[str] | None:
    names = [p.rsplit("/", 1)[-1] for p in type_entry.get("targetProfile", [])]
    if not names or "Resource" in names:
        return None
    return sorted(set(names))


def _max(value: str) -> int | None:
    return None if value == "*" else int(value)


class _Expander:
    """Enumerates the codes of value sets whose content is fully listed in the vendored definitions."""

    def __init__(self, valuesets_bundle: Any) -> None:
        self.value_sets = {vs["url"]: vs for vs in _resources(valuesets_bundle, "ValueSet")}
        self.code_systems = {cs["url"]: cs for cs in _resources(valuesets_bundle, "CodeSystem")}
        self._cache: dict[str, dict[str, set[str]] | None] = {}

    def expand(self, url: str) -> dict[str, set[str]] | None:
        """``{system: codes}``, or None when the value set cannot be enumerated locally."""
        if url not in self._cache:
            self._cache[url] = None  # guards against include cycles
            self._cache[url] = self._expand(url)
        return self._cache[url]

    def _system_codes(self, system: str) -> set[str] | None:
        cs = self.code_systems.get(system)
        if cs is None or cs.get("content") != "complete":
            return None
        codes: set[str] = set()
        stack = list(cs.get("concept", []))
        while stack:
            concept = stack.pop()
            codes.add(concept["code"])
            stack.extend(concept.get("concept", []))
        return codes

    def _part(self, clause: dict[str, Any]) -> dict[str, set[str]] | None:
        if "filter" in clause or ("valueSet" in clause and "system" in clause):
            return None  # filters and intersections are beyond a local enumeration
        result: dict[str, set[str]] = {}
        system = clause.get("system")
        if system is not None:
            if "concept" in clause:
                codes: set[str] | None = {c["code"] for c in clause["concept"]}
            else:
                codes = self._system_codes(system)
            if codes is None:
                return None
            result[system] = codes
        for ref in clause.get("valueSet", []):
            sub = self.expand(ref.split("|", 1)[0])
            if sub is None:
                return None
            for sys_url, sub_codes in sub.items():
                result.setdefault(sys_url, set()).update(sub_codes)
        return result

    def _expand(self, url: str) -> dict[str, set[str]] | None:
        vs = self.value_sets.get(url)
        if vs is None:
            return None
        compose = vs.get("compose")
        if not compose:
            return None
        result: dict[str, set[str]] = {}
        for clause in compose.get("include", []):
            part = self._part(clause)
            if part is None:
                return None
            for system, codes in part.items():
                result.setdefault(system, set()).update(codes)
        for clause in compose.get("exclude", []):
            if "concept" not in clause or "system" not in clause:
                return None
            result.get(clause["system"], set()).difference_update(c["code"] for c in clause["concept"])
        if sum(len(codes) for codes in result.values()) > _MAX_EXPANSION:
            return None
        return result


class _Builder:
    def __init__(self, sds: dict[str, dict[str, Any]], expander: _Expander) -> None:
        self.sds = sds
        self.expander = expander
        self.nodes: dict[str, dict[str, Any]] = {}
        self.value_sets: dict[str, dict[str, list[str]]] = {}

    def binding(self, element: dict[str, Any], codes: list[str]) -> str | None:
        binding = element.get("binding")
        if not binding or binding.get("strength") != "required" or not _CODED_TYPES.intersection(codes):
            return None
        url, _, version = str(binding.get("valueSet", "")).partition("|")
        vs = self.expander.value_sets.get(url)
        if vs is None or (version and vs.get("version") != version):
            return None  # not vendored, or vendored in another version: skip rather than guess
        if url not in self.value_sets:
            expansion = self.expander.expand(url)
            if expansion is None:
                return None
            self.value_sets[url] = {system: sorted(codes) for system, codes in sorted(expansion.items())}
        return url

    def add_structure(self, name: str, kind: str, sd: dict[str, Any]) -> None:
        elements = [e for e in sd["snapshot"]["element"] if "sliceName" not in e]
        root = elements[0]["path"]
        children: dict[str, list[dict[str, Any]]] = {}
        for element in elements[1:]:
            parent, _, _ = element["path"].rpartition(".")
            children.setdefault(parent, []).append(element)

        def node_name(path: str) -> str:
            return name if path == root else path

        for parent, members in children.items():
            self.nodes[node_name(parent)] = {
                "kind": kind if parent == root else "backbone",
                "elements": [self.element(e, root, name, children) for e in members],
            }
        if root not in children:
            self.nodes[name] = {"kind": kind, "elements": []}

    def element(
        self, element: dict[str, Any], root: str, name: str, children: dict[str, list[dict[str, Any]]]
    ) -> dict[str, Any]:
        path: str = element["path"]
        base_max = element.get("base", {}).get("max", element["max"])
        out: dict[str, Any] = {
            "name": path.rpartition(".")[2],
            "min": element["min"],
            "max": _max(element["max"]),
            "array": base_max != "1",
        }
        types: list[dict[str, Any]] = []
        if "contentReference" in element:
            target = element["contentReference"].lstrip("#")
            types.append({"code": "BackboneElement", "node": name if target == root else target})
        elif path in children:
            types.append({"code": element["type"][0]["code"], "node": path})
        else:
            for type_entry in element.get("type", []):
                types.append(self.type_ref(element, type_entry))
        out["types"] = types
        binding = self.binding(element, [t["code"] for t in types])
        if binding:
            out["binding"] = binding
        # `_name` siblings exist for FHIR primitives only; Element.id and Extension.url are XML attributes.
        raw_code = element.get("type", [{}])[0].get("code", "")
        if not raw_code.startswith(_SYSTEM_PREFIX) or element.get("base", {}).get("path") == "Resource.id":
            out["primitiveExtension"] = True
        return out

    def type_ref(self, element: dict[str, Any], type_entry: dict[str, Any]) -> dict[str, Any]:
        code = _type_code(element, type_entry)
        ref: dict[str, Any] = {"code": code}
        sd = self.sds.get(code)
        if sd is not None and sd["kind"] == "complex-type":
            ref["node"] = code
            for profile in type_entry.get("profile", []):
                profile_name = profile.rsplit("/", 1)[-1]
                if profile_name in _TYPE_PROFILES:
                    ref["node"] = profile_name
        if code == "Reference":
            targets = _targets(type_entry)
            if targets is not None:
                ref["targets"] = targets
        return ref


def build_index(resources_bundle: Any, types_bundle: Any, valuesets_bundle: Any) -> dict[str, Any]:
    """The structure index (see module docstring) from the three vendored definition bundles."""
    sds = _structure_definitions([types_bundle, resources_bundle])
    builder = _Builder(sds, _Expander(valuesets_bundle))
    resource_types: list[str] = []
    for sd_id, sd in sorted(sds.items()):
        kind, abstract = sd["kind"], sd.get("abstract", False)
        if kind == "resource" and not abstract:
            resource_types.append(sd_id)
            builder.add_structure(sd_id, "resource", sd)
        elif kind == "complex-type" and (not abstract or sd_id == "Element"):
            if sd.get("derivation") == "constraint" and sd_id not in _TYPE_PROFILES:
                continue
            builder.add_structure(sd_id, "type", sd)
    return {
        "format": INDEX_FORMAT,
        "fhirVersion": FHIR_VERSION,
        "resourceTypes": resource_types,
        "nodes": dict(sorted(builder.nodes.items())),
        "valueSets": dict(sorted(builder.value_sets.items())),
    }


VENDORED_INDEX = "validation-index"  # openpayer/fhir/data/validation-index.json.gz


def build_index_from_vendored() -> dict[str, Any]:
    """Build from ``openpayer/fhir/data``, bypassing ``definitions.load``'s cache to free ~100 MB after."""
    from openpayer.fhir.definitions import read

    return build_index(read("profiles-resources"), read("profiles-types"), read("valuesets"))


def read_vendored_index() -> dict[str, Any]:
    """The index `scripts/vendor_validation_index.py` wrote (what `build_index_from_vendored` returns)."""
    from openpayer.fhir.definitions import read

    index: dict[str, Any] = read(VENDORED_INDEX)
    if index.get("format") != INDEX_FORMAT or index.get("fhirVersion") != FHIR_VERSION:
        raise RuntimeError(
            f"{VENDORED_INDEX}.json.gz is format {index.get('format')} for FHIR {index.get('fhirVersion')}, "
            f"not format {INDEX_FORMAT} for {FHIR_VERSION}: run scripts/vendor_validation_index.py"
        )
    return index
