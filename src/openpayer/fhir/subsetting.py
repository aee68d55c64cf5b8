"""`_summary` and `_elements` (FHIR R4 §3.1.1.5.9 and §3.1.1.5.10): returning part of a resource.

Subsetted resources are tagged SUBSETTED (http://terminology.hl7.org/CodeSystem/v3-ObservationValue) so a
client never mistakes them for the whole resource.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from openpayer.fhir.definitions import read
from openpayer.fhir.errors import BadRequest

SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "subsetted",
}
SUMMARY_MODES = ("true", "false", "text", "data", "count")


@cache
def _elements_by_type() -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """For each resource type: (summary top-level element names, mandatory top-level element names)."""
    table: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
    for entry in read("profiles-resources")["entry"]:
        sd = entry["resource"]
        if sd.get("resourceType") != "StructureDefinition" or sd.get("kind") != "resource":
            continue
        summary: set[str] = set()
        mandatory: set[str] = set()
        for element in sd.get("snapshot", {}).get("element", []):
            parts = element["path"].split(".")
            if len(parts) != 2:
                continue
            name = parts[1].removesuffix("[x]")
            if element.get("isSummary"):
                summary.add(name)
            if element.get("min", 0) > 0:
                mandatory.add(name)
        table[sd["type"]] = (frozenset(summary), frozenset(mandatory))
    return table


def _matches(key: str, names: frozenset[str]) -> bool:
    if key.startswith("_"):
        key = key[1:]
    if key in names:
        return True
    # choice types: valueQuantity belongs to value[x]
    return any(key.startswith(name) and key[len(name) : len(name) + 1].isupper() for name in names)


def _tag(resource: dict[str, Any]) -> dict[str, Any]:
    meta = dict(resource.get("meta") or {})
    tags = [t for t in meta.get("tag", []) if t.get("code") != "SUBSETTED"]
    tags.append(SUBSETTED)
    meta["tag"] = tags
    resource["meta"] = meta
    return resource


def summarize(resource: dict[str, Any], mode: str) -> dict[str, Any]:
    if mode not in SUMMARY_MODES:
        raise BadRequest(f"_summary must be one of {', '.join(SUMMARY_MODES)}")
    if mode == "false":
        return resource
    rtype = resource.get("resourceType", "")
    summary, mandatory = _elements_by_type().get(rtype, (frozenset(), frozenset()))
    if mode == "data":
        out = {k: v for k, v in resource.items() if k != "text"}
    elif mode == "text":
        keep = mandatory | {"id", "meta", "text"}
        out = {k: v for k, v in resource.items() if k == "resourceType" or _matches(k, keep)}
    else:  # true (and count, whose entries are never rendered)
        keep = summary | {"id", "meta"}
        out = {k: v for k, v in resource.items() if k == "resourceType" or _matches(k, keep)}
    return _tag(out)


def select_elements(resource: dict[str, Any], elements: str) -> dict[str, Any]:
    rtype = resource.get("resourceType", "")
    wanted = {
        name.strip().removeprefix(rtype + ".").split(".")[0] for name in elements.split(",") if name.strip()
    }
    _, mandatory = _elements_by_type().get(rtype, (frozenset(), frozenset()))
    keep = frozenset(wanted) | mandatory | {"id", "meta"}
    out = {k: v for k, v in resource.items() if k == "resourceType" or _matches(k, keep)}
    return _tag(out)
