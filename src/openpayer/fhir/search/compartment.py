"""The Patient compartment (FHIR R4 CompartmentDefinition `patient`) as SQL restrictions.

A resource is in Patient/X's compartment when one of the parameters the definition lists for its type
refers to Patient/X (Patient/X itself is in it too). Membership is an `EXISTS` over `fhir_idx_reference` with
the index keys of exactly those parameters, so a reference through any other element (e.g.
`Observation.focus`) never brings another patient's data in.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Select, and_, false, or_, select, true, union_all

from openpayer.fhir.definitions import load
from openpayer.fhir.search.extract import extract_index
from openpayer.fhir.search.sql import Restriction, admits_older_version, restriction_clause
from openpayer.fhir.storage.tables import fhir_resource, idx_reference, index_key

# The one list of non-patient resource types a member's (patient-context) app may read alongside the
# compartment: what it needs to interpret its records (CMS Patient Access; Coverage's payor; Plan-Net's
# directory types that its claims and care team refer to). The SMART guard and the search engine use it.
DEFAULT_EXTRA_TYPES: tuple[str, ...] = (
    "Organization",
    "Practitioner",
    "PractitionerRole",
    "Location",
    "Medication",
    "HealthcareService",
    "Endpoint",
    "InsurancePlan",
    "MedicationKnowledge",
)


# Beyond R4's CompartmentDefinition, which lists Device without a parameter: US Core's Implantable Device
# profile (and PDex) serve a member's devices to patient apps through `Device.patient`, and HAPI and
# Medplum treat that reference as compartment membership.
COMPARTMENT_ADDITIONS: dict[str, tuple[str, ...]] = {"Device": ("patient",)}


@cache
def compartment_params() -> dict[str, tuple[str, ...]]:
    """Resource type -> the reference parameters that put it in a Patient's compartment."""
    definition = load("compartmentdefinition-patient")
    params = {
        entry["code"]: tuple(entry["param"]) for entry in definition.get("resource", ()) if entry.get("param")
    }
    for rtype, extra in COMPARTMENT_ADDITIONS.items():
        params[rtype] = tuple(dict.fromkeys((*params.get(rtype, ()), *extra)))
    return params


def compartment_types() -> frozenset[str]:
    return frozenset(compartment_params()) | {"Patient"}


@cache
def non_patient_types() -> frozenset[str]:
    """Types the definition lists without parameters: never in any patient's compartment."""
    definition = load("compartmentdefinition-patient")
    listed = frozenset(e["code"] for e in definition.get("resource", ()) if not e.get("param"))
    return listed - {"Patient"} - frozenset(COMPARTMENT_ADDITIONS)


@cache
def _keys(env: str, types: frozenset[str] | None) -> tuple[int, ...]:
    return tuple(
        sorted(
            index_key(env, rtype, code)
            for rtype, codes in compartment_params().items()
            if types is None or rtype in types
            for code in codes
        )
    )


def member_rids(
    env: str, patient_id: str, types: Collection[str] | None = None, base_url: str | None = None
) -> Select[tuple[int]]:
    """The rids of Patient/`patient_id` and of the rows in its compartment (of `types` when given).

    With `base_url`, references written as absolute URLs on our own base (`{base_url}/Patient/X`, indexed
    by URL) count too.

    Not correlated with any outer row: PostgreSQL and SQLite compute it once from the (target_id,
    target_type) / (hkey, target_id, target_type) indexes and the (env, type, id) key, and drive from it.
    """
    wanted = frozenset(types) if types is not None else None
    parts: list[Select[tuple[int]]] = []
    if wanted is None or "Patient" in wanted:
        patient = fhir_resource.alias()
        parts.append(
            select(patient.c.rid).where(
                patient.c.env == env, patient.c.type == "Patient", patient.c.id == patient_id
            )
        )
    keys = list(_keys(env, wanted))
    if keys:
        ref = idx_reference.alias()
        parts.append(
            select(ref.c.rid).where(
                ref.c.target_id == patient_id, ref.c.target_type == "Patient", ref.c.hkey.in_(keys)
            )
        )
        if base_url:
            by_url = idx_reference.alias()
            absolute = f"{base_url.rstrip('/')}/Patient/{patient_id}"
            parts.append(select(by_url.c.rid).where(by_url.c.hkey.in_(keys), by_url.c.url == absolute))
    if not parts:
        return select(fhir_resource.c.rid).where(false())
    if len(parts) == 1:
        return parts[0]
    return select(union_all(*parts).subquery().c.rid)


def references_patient(resource: dict[str, Any], patient_id: str, base_url: str | None = None) -> bool:
    """`resource` (a body, e.g. an older version) is Patient/`patient_id` or in its compartment: the Python
    twin of `member_rids`, through the same index extraction and compartment parameters."""
    rtype = resource.get("resourceType")
    if rtype == "Patient":
        return bool(resource.get("id") == patient_id)
    params = compartment_params().get(str(rtype))
    if not params:
        return False
    absolute = f"{base_url.rstrip('/')}/Patient/{patient_id}" if base_url else None
    return any(
        ref.param in params
        and (
            (ref.target_type == "Patient" and ref.target_id == patient_id)
            or (absolute is not None and ref.url == absolute)
        )
        for ref in extract_index(resource).references
    )


def membership_clause(
    resource: FromClause,
    env: str,
    patient_id: str,
    types: Collection[str] | None = None,
    base_url: str | None = None,
) -> ColumnElement[bool]:
    """`resource` (an alias of fhir_resource) is Patient/`patient_id` or in its compartment.

    `types`, when known, are the only types `resource` can have: the subquery then leaves out what cannot
    apply (e.g. an Observation search only looks at the index keys of Observation's compartment params).
    """
    return resource.c.rid.in_(member_rids(env, patient_id, types, base_url))


class CompartmentMembership:
    """Restriction: exactly the members of Patient/X's compartment (for `Patient/X/Type?...` searches)."""

    def __init__(self, patient_id: str, *, env: str, base_url: str | None = None) -> None:
        self.patient_id = patient_id
        self.env = env
        self.base_url = base_url

    @property
    def key(self) -> str:
        return f"compartment:Patient/{self.patient_id}"

    def clause(self, resource: FromClause) -> ColumnElement[bool]:
        return membership_clause(resource, self.env, self.patient_id, None, self.base_url)

    def clause_for_types(self, resource: FromClause, types: Collection[str]) -> ColumnElement[bool]:
        return membership_clause(resource, self.env, self.patient_id, types, self.base_url)

    def admits(self, resource: dict[str, Any]) -> bool:
        return references_patient(resource, self.patient_id, self.base_url)


class PatientCompartment:
    """Restriction for patient-context access (SMART `patient/*` scopes).

    Rows in Patient/X's compartment, plus rows of the listed non-patient types (`extra_types`), both decided
    in SQL. `env` is needed because the index keys of the compartment parameters depend on it; `base_url`
    (optional) also admits references written as absolute URLs on our own base.
    """

    def __init__(
        self,
        patient_id: str,
        *,
        env: str,
        extra_types: Collection[str] = DEFAULT_EXTRA_TYPES,
        base_url: str | None = None,
    ) -> None:
        leaking = set(extra_types) & compartment_types()
        if leaking:
            raise ValueError(f"compartment types cannot be extra types: {', '.join(sorted(leaking))}")
        self.patient_id = patient_id
        self.env = env
        self.extra_types = tuple(sorted(set(extra_types)))
        self.base_url = base_url

    @property
    def key(self) -> str:
        return f"patient:{self.patient_id}:{','.join(self.extra_types)}"

    def clause(self, resource: FromClause) -> ColumnElement[bool]:
        member = membership_clause(resource, self.env, self.patient_id, None, self.base_url)
        if not self.extra_types:
            return member
        return or_(member, resource.c.type.in_(self.extra_types))

    def clause_for_types(self, resource: FromClause, types: Collection[str]) -> ColumnElement[bool]:
        """The same condition when `resource` is known to be one of `types` (smaller SQL, better plans)."""
        wanted = frozenset(types)
        if wanted <= set(self.extra_types):
            return true()
        member = membership_clause(resource, self.env, self.patient_id, wanted, self.base_url)
        extra = sorted(wanted & set(self.extra_types))
        return or_(member, resource.c.type.in_(extra)) if extra else member

    def admits(self, resource: dict[str, Any]) -> bool:
        if resource.get("resourceType") in self.extra_types:
            return True
        return references_patient(resource, self.patient_id, self.base_url)


class AllOf:
    """Several restrictions at once (e.g. a compartment search under a SMART restriction)."""

    def __init__(self, *parts: Restriction | None) -> None:
        self.parts = tuple(p for p in parts if p is not None)

    @property
    def key(self) -> str:
        return "&".join(p.key for p in self.parts)

    def clause(self, resource: FromClause) -> ColumnElement[bool]:
        return and_(true(), *(p.clause(resource) for p in self.parts))

    def clause_for_types(self, resource: FromClause, types: Collection[str]) -> ColumnElement[bool]:
        return and_(true(), *(restriction_clause(p, resource, types) for p in self.parts))

    def admits(self, resource: dict[str, Any]) -> bool:
        return all(admits_older_version(p, resource) for p in self.parts)
