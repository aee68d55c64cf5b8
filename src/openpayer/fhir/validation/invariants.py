"""The few R4 invariants checked in plain Python (no FHIRPath engine on the write path).

Chosen because they guard structure that other code relies on: Bundle semantics (bdl-*) for the
transaction and search code, ext-1 for extensions, obs-6/obs-7 for Observation values. The dom-* and
ref-1 rules need the whole-resource context and live in `structure`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Report = Callable[[str, str, str], None]  # (issue code, diagnostics, expression)

_REQUEST_TYPES = frozenset({"batch", "transaction", "history"})
_RESPONSE_TYPES = frozenset({"batch-response", "transaction-response", "history"})


def has_choice(obj: Mapping[str, Any], base: str) -> bool:
    """Whether ``base[x]`` is present, as a value or as an extension-only ``_baseX``."""
    n = len(base)
    for key in obj:
        if not isinstance(key, str):
            continue
        if key.startswith(base) and key[n : n + 1].isupper():
            return True
        if key.startswith("_") and key.startswith(base, 1) and key[n + 1 : n + 2].isupper():
            return True
    return False


def extension(obj: Mapping[str, Any], path: str, report: Report) -> None:
    """ext-1: "Must have either extensions or value[x], not both"."""
    if ("extension" in obj) == has_choice(obj, "value"):
        report("invariant", "ext-1: an extension must have either extensions or value[x], not both", path)


def observation(obj: Mapping[str, Any], path: str, report: Report) -> None:
    """obs-6 (dataAbsentReason only without a value) and obs-7 (no value when a component repeats code)."""
    has_value = has_choice(obj, "value")
    if has_value and "dataAbsentReason" in obj:
        report(
            "invariant",
            "obs-6: dataAbsentReason SHALL only be present if Observation.value[x] is not present",
            f"{path}.dataAbsentReason",
        )
    components = obj.get("component")
    code = obj.get("code")
    if not has_value or not isinstance(components, list) or not isinstance(code, dict):
        return
    codings = code.get("coding")
    if not isinstance(codings, list) or not codings:
        return
    for component in components:
        comp_code = component.get("code") if isinstance(component, dict) else None
        comp_codings = comp_code.get("coding") if isinstance(comp_code, dict) else None
        if isinstance(comp_codings, list) and any(c in codings for c in comp_codings):
            report(
                "invariant",
                "obs-7: when a component has the same code as the Observation, Observation.value[x] "
                "SHALL NOT be present",
                path,
            )
            return


def bundle(obj: Mapping[str, Any], path: str, report: Report) -> None:
    """bdl-1..5 and bdl-7..12 of R4 Bundle."""
    kind = obj.get("type")
    if not isinstance(kind, str):
        return
    if "total" in obj and kind not in ("searchset", "history"):
        report("invariant", "bdl-1: total only when a search or history", f"{path}.total")
    entries = obj.get("entry")
    if not isinstance(entries, list):
        entries = []
    wants_request = kind in _REQUEST_TYPES
    wants_response = kind in _RESPONSE_TYPES
    full_urls: set[str] = set()
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        where = f"{path}.entry[{i}]"
        if "search" in entry and kind != "searchset":
            report("invariant", "bdl-2: entry.search only when a search", f"{where}.search")
        if ("request" in entry) != wants_request:
            report(
                "invariant",
                "bdl-3: entry.request mandatory for batch/transaction/history, otherwise prohibited",
                where,
            )
        if ("response" in entry) != wants_response:
            report(
                "invariant",
                "bdl-4: entry.response mandatory for batch-response/transaction-response/history, "
                "otherwise prohibited",
                where,
            )
        if "resource" not in entry and "request" not in entry and "response" not in entry:
            report("invariant", "bdl-5: must be a resource unless there's a request or response", where)
        full_url = entry.get("fullUrl")
        if isinstance(full_url, str):
            if "/_history/" in full_url:
                report(
                    "invariant", "bdl-8: fullUrl cannot be a version specific reference", f"{where}.fullUrl"
                )
            if kind != "history":
                key = full_url + "|" + _version_id(entry.get("resource"))
                if key in full_urls:
                    report(
                        "invariant",
                        f"bdl-7: fullUrl {full_url!r} must be unique in a bundle, or else entries with the "
                        "same fullUrl must have different meta.versionId",
                        f"{where}.fullUrl",
                    )
                full_urls.add(key)
    first = entries[0].get("resource") if entries and isinstance(entries[0], dict) else None
    first_type = first.get("resourceType") if isinstance(first, dict) else None
    if kind == "document":
        identifier = obj.get("identifier")
        if not isinstance(identifier, dict) or "system" not in identifier or "value" not in identifier:
            report("invariant", "bdl-9: a document must have an identifier with a system and a value", path)
        if "timestamp" not in obj:
            report("invariant", "bdl-10: a document must have a date", path)
        if first_type != "Composition":
            report("invariant", "bdl-11: a document must have a Composition as the first resource", path)
    elif kind == "message" and first_type != "MessageHeader":
        report("invariant", "bdl-12: a message must have a MessageHeader as the first resource", path)


def _version_id(resource: object) -> str:
    meta = resource.get("meta") if isinstance(resource, dict) else None
    version = meta.get("versionId") if isinstance(meta, dict) else None
    return version if isinstance(version, str) else ""
