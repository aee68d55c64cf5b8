"""Literal reference formats (FHIR R4 §2.3.0 "Resource References", invariant ref-1).

A ``Reference.reference`` is one of: ``Type/id`` or ``Type/id/_history/vid`` (relative to the server
base), an absolute URL (``https://host/fhir/Patient/1``), ``urn:uuid:`` / ``urn:oid:`` (resolved within a
Bundle), ``#id`` (a contained resource; ``#`` alone is the container), and, inside transaction or batch
Bundles only, a conditional reference ``Type?search-params`` (R4 §3.1.0.11.2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ID = r"[A-Za-z0-9\-\.]{1,64}"
_LOCAL_ID = re.compile(_ID)
_RELATIVE = re.compile(rf"([A-Za-z]+)/({_ID})(/_history/{_ID})?")
_FHIR_URL_TAIL = re.compile(rf"/([A-Z][A-Za-z]+)/{_ID}(/_history/{_ID})?$")
_ABSOLUTE_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^ \t\n\r]+")
_CONDITIONAL = re.compile(r"([A-Za-z]+)\?[^ \t\n\r]*")
_URN_UUID = re.compile(
    r"urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_URN_OID = re.compile(r"urn:oid:[0-2](\.(0|[1-9][0-9]*))+")

LOCAL = "local"
RELATIVE = "relative"
ABSOLUTE = "absolute"
URN = "urn"
CONDITIONAL = "conditional"


@dataclass(frozen=True, slots=True)
class Literal:
    """What a reference string is; ``resource_type`` is None where the string does not say."""

    form: str
    resource_type: str | None = None


_LOCAL = Literal(LOCAL)
_URN = Literal(URN)
# (form, resource type) -> its Literal, made once: a frozen dataclass costs a call per field to make, and
# every reference of every resource validated is parsed. Bounded: the types are known resource types.
_LITERALS: dict[tuple[str, str | None], Literal] = {}


def _literal(form: str, resource_type: str | None) -> Literal:
    found = _LITERALS.get((form, resource_type))
    if found is None:
        found = _LITERALS[(form, resource_type)] = Literal(form, resource_type)
    return found


def parse_reference(value: str, resource_types: frozenset[str]) -> Literal | str:
    """A parsed `Literal`, or the reason the string is not a valid reference."""
    if value[0] == "#":
        if value == "#" or _LOCAL_ID.fullmatch(value, 1):
            return _LOCAL
        return "a local reference must be '#' followed by the id of a contained resource"
    match = _RELATIVE.fullmatch(value)
    if match:
        if match[1] not in resource_types:
            return f"{match[1]!r} is not a known resource type"
        return _literal(RELATIVE, match[1])
    if value.startswith("urn:uuid:"):
        return _URN if _URN_UUID.fullmatch(value) else "malformed urn:uuid: reference"
    if value.startswith("urn:oid:"):
        return _URN if _URN_OID.fullmatch(value) else "malformed urn:oid: reference"
    if _ABSOLUTE_URL.fullmatch(value):
        tail = _FHIR_URL_TAIL.search(value)
        found = tail[1] if tail and tail[1] in resource_types else None
        return _literal(ABSOLUTE, found)
    match = _CONDITIONAL.fullmatch(value)
    if match and match[1] in resource_types:
        return _literal(CONDITIONAL, match[1])
    return "expected Type/id, Type/id/_history/vid, an absolute URL, urn:uuid:, urn:oid: or #id"
