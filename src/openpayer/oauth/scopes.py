"""SMART App Launch scopes (2.2 §"Scopes and Launch Context"), v1 and v2 syntax, and what they grant here.

The Patient Access API is read-only, so a resource scope grants at most read (`r`) and search (`s`).
Requests are normalised consistently: a v1 scope keeps v1 syntax (`patient/X.read`), a v2 scope keeps v2
syntax with only `r`/`s` kept (`patient/X.cruds` → `patient/X.rs`); scopes that grant nothing here
(writes only, EHR launch, unknown types, malformed text) are dropped, and the token response's `scope` says
exactly what was granted. `user/` scopes are treated as the member's own data (this API is patient-facing).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

OPENID = "openid"
FHIR_USER = "fhirUser"
PROFILE = "profile"
OFFLINE = "offline_access"
ONLINE = "online_access"
LAUNCH_PATIENT = "launch/patient"
MEMBER_SPECIAL = frozenset({OPENID, FHIR_USER, PROFILE, OFFLINE, ONLINE, LAUNCH_PATIENT})

_RESOURCE = re.compile(
    r"^(?P<ctx>patient|user|system)/(?P<type>\*|[A-Z][A-Za-z]{1,63})\.(?P<perm>read|write|\*|c?r?u?d?s?)"
    r"(?:\?(?P<query>[^\s]+))?$"
)
_QUERY_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-.:]*$")


@dataclass(frozen=True, slots=True)
class ResourceScope:
    """One granted resource scope: context, type (`*` for all), `r`/`s` permissions, optional v2 query."""

    context: str  # patient | user | system
    resource_type: str
    perms: frozenset[str]
    query: tuple[tuple[str, str], ...] = ()
    v1: bool = False
    raw_query: str = ""  # the query exactly as requested, so the granted scope echoes it unchanged

    @property
    def text(self) -> str:
        if self.v1:
            return f"{self.context}/{self.resource_type}.read"
        perms = "".join(p for p in "rs" if p in self.perms)
        suffix = f"?{self.raw_query or urlencode(self.query)}" if self.query else ""
        return f"{self.context}/{self.resource_type}.{perms}{suffix}"

    def covers(self, other: ResourceScope) -> bool:
        """Whether this (registered) scope allows everything `other` (requested) asks for."""
        return (
            self.context == other.context
            and self.resource_type in ("*", other.resource_type)
            and other.perms <= self.perms
            and (not self.query or self.query == other.query)
        )


def parse_resource_scope(text: str, known_types: Collection[str] | None = None) -> ResourceScope | None:
    """A resource scope reduced to what this read-only API grants, or None if it grants nothing."""
    if known_types is None or isinstance(known_types, frozenset):
        return _parse_resource_scope_cached(text, known_types)
    return _parse_resource_scope(text, known_types)


# Every grant and every token's access check parses the same few scope strings; the result is immutable.
# Bounded, since the strings come from requests.
@functools.lru_cache(maxsize=2048)
def _parse_resource_scope_cached(text: str, known_types: frozenset[str] | None) -> ResourceScope | None:
    return _parse_resource_scope(text, known_types)


def _parse_resource_scope(text: str, known_types: Collection[str] | None) -> ResourceScope | None:
    match = _RESOURCE.match(text)
    if match is None:
        return None
    rtype, perm, raw_query = match["type"], match["perm"], match["query"]
    if known_types is not None and rtype != "*" and rtype not in known_types:
        return None
    v1 = perm in ("read", "write", "*")
    if v1:
        if raw_query or perm == "write":
            return None
        perms = frozenset("rs")
    else:
        perms = frozenset(perm) & frozenset("rs")
        if not perms:
            return None
    query: tuple[tuple[str, str], ...] = ()
    if raw_query:
        try:
            pairs = parse_qsl(raw_query, keep_blank_values=False, strict_parsing=True)
        except ValueError:
            return None
        if not pairs or rtype == "*" or any(not _QUERY_KEY.match(k) for k, _ in pairs):
            return None
        query = tuple(pairs)
    return ResourceScope(match["ctx"], rtype, perms, query, v1, raw_query or "")


@dataclass(slots=True)
class ScopeSet:
    """A parsed scope string: granted resource scopes, special scopes, and what was dropped."""

    resources: list[ResourceScope] = field(default_factory=list)
    special: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    @property
    def granted(self) -> list[str]:
        seen: dict[str, None] = {}
        for text in [*self.special, *(r.text for r in self.resources)]:
            seen.setdefault(text, None)
        return list(seen)

    def __str__(self) -> str:
        return " ".join(self.granted)

    def has(self, name: str) -> bool:
        return name in self.special


def parse_scopes(
    text: str | None,
    *,
    contexts: Collection[str] = ("patient", "user"),
    known_types: Collection[str] | None = None,
    special: Collection[str] = MEMBER_SPECIAL,
) -> ScopeSet:
    """Split and normalise a space-delimited scope string (RFC 6749 §3.3) for the given launch contexts."""
    result = ScopeSet()
    for item in dict.fromkeys((text or "").split()):
        if item in special:
            result.special.append(item)
            continue
        parsed = parse_resource_scope(item, known_types)
        if parsed is None or parsed.context not in contexts:
            result.dropped.append(item)
        else:
            result.resources.append(parsed)
    return result


@dataclass(frozen=True, slots=True)
class Access:
    """What a token may read: resource type → the queries that bound it (`None` = unbounded)."""

    scopes: tuple[ResourceScope, ...]

    @classmethod
    def from_scope(cls, scope: str) -> Access:
        parsed = parse_scopes(scope, contexts=("patient", "user", "system"))
        return cls(tuple(parsed.resources))

    def allows(self, resource_type: str, interaction: str) -> bool:
        """`interaction` is `r` (read) or `s` (search)."""
        return any(s.resource_type in ("*", resource_type) and interaction in s.perms for s in self.scopes)

    def allows_in(self, context: str, resource_type: str, interaction: str) -> bool:
        """`allows`, counting only the scopes of one launch context (`patient`, `user` or `system`)."""
        return any(
            s.context == context and s.resource_type in ("*", resource_type) and interaction in s.perms
            for s in self.scopes
        )

    @property
    def searches_everything(self) -> bool:
        return any(s.resource_type == "*" and "s" in s.perms for s in self.scopes)

    def types_with(self, perm: str) -> frozenset[str]:
        return frozenset(s.resource_type for s in self.scopes if s.resource_type != "*" and perm in s.perms)

    def bounded_types(self) -> dict[str, list[tuple[tuple[str, str], ...]]]:
        """Types that may only be reached through granular (v2 query) scopes, with their queries."""
        bounded: dict[str, list[tuple[tuple[str, str], ...]]] = {}
        free = {s.resource_type for s in self.scopes if not s.query}
        for s in self.scopes:
            if s.query and s.resource_type not in free and "*" not in free:
                bounded.setdefault(s.resource_type, []).append(s.query)
        return bounded


# Plain-language names for the consent page (CMS asks that members understand what they share).
FRIENDLY = {
    "*": "All of your health plan records",
    "ExplanationOfBenefit": "Claims and explanations of benefits",
    "Coverage": "Insurance coverage",
    "Patient": "Your demographic information (name, birth date, address)",
    "Observation": "Lab results, vital signs and other observations",
    "Condition": "Conditions and diagnoses",
    "MedicationRequest": "Prescriptions",
    "MedicationDispense": "Pharmacy fills",
    "AllergyIntolerance": "Allergies",
    "Immunization": "Immunizations",
    "Procedure": "Procedures",
    "Encounter": "Visits and encounters",
    "DiagnosticReport": "Diagnostic reports",
    "DocumentReference": "Clinical documents and notes",
    "CarePlan": "Care plans",
    "CareTeam": "Care teams",
    "Goal": "Health goals",
    "Device": "Implanted devices",
    "Provenance": "Where your records came from",
    "Organization": "Organizations in your records (payers, hospitals)",
    "Practitioner": "Clinicians in your records",
    "PractitionerRole": "Clinician roles in your records",
    "Location": "Locations in your records",
    "Medication": "Medications in your records",
}


def describe(scope: ResourceScope) -> str:
    name = FRIENDLY.get(scope.resource_type) or re.sub(r"(?<!^)(?=[A-Z])", " ", scope.resource_type)
    verbs = {"r": "read", "s": "search"}
    how = " and ".join(verbs[p] for p in "rs" if p in scope.perms)
    detail = f" (only {', '.join(f'{k} {v}' for k, v in scope.query)})" if scope.query else ""
    return f"{name}{detail}: {how}"


def granted_within(requested: Iterable[str], original: str) -> list[str]:
    """Refresh-time narrowing (RFC 6749 §6): the requested scopes that the original grant contains."""
    allowed = set(original.split())
    return [s for s in dict.fromkeys(requested) if s in allowed]
