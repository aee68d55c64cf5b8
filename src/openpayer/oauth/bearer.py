"""A checked bearer token and what it may reach (`Grant`), built once per token and cached beside it.

The restrictions are SQL predicates the FHIR engine applies inside every query: the patient's compartment
(with the non-patient types a patient's app needs), the types the token may search, and SMART v2 granular
scope queries (`oauth/restrictions.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from openpayer.clock import Clock
from openpayer.fhir.search.compartment import DEFAULT_EXTRA_TYPES, AllOf, PatientCompartment
from openpayer.fhir.search.params import Registry
from openpayer.fhir.search.sql import Restriction
from openpayer.oauth.restrictions import QueryFilter, TypeFilter
from openpayer.oauth.scopes import Access
from openpayer.oauth.tokens import TokenInfo

# Non-patient types a patient's app may read: the search engine's one list (fhir/search/compartment.py).
EXTRA_TYPES = DEFAULT_EXTRA_TYPES


@dataclass(frozen=True, slots=True)
class Grant:
    """A checked token with what it may reach; cached beside the token."""

    info: TokenInfo
    access: Access
    search: Restriction | None  # for searches (types the token may search)
    read: Restriction | None  # for reads (compartment and granular queries; types checked apart)
    env: str = ""
    bounded: frozenset[str] = frozenset()  # types reachable only through granular (v2 query) scopes

    @property
    def backend(self) -> bool:
        """A SMART Backend Services token: issued to a client for itself, for no member and no patient."""
        return self.info.member_id is None and self.info.patient_id is None


def grant_for(env: str, info: TokenInfo, *, dialect: str, registry: Registry, clock: Clock) -> Grant:
    access = Access.from_scope(info.scope)
    searchable = None if access.searches_everything else access.types_with("s")
    parts: list[Restriction | None] = []
    if info.patient_id is not None:
        parts.append(PatientCompartment(info.patient_id, env=env, extra_types=EXTRA_TYPES))
    bounded = access.bounded_types()
    query = QueryFilter(env, dialect, registry, bounded, clock) if bounded else None
    search_parts = [*parts, TypeFilter(searchable) if searchable is not None else None, query]
    read_parts = [*parts, query]
    search = AllOf(*search_parts) if any(search_parts) else None
    read = AllOf(*read_parts) if any(read_parts) else None
    return Grant(info, access, search, read, env, frozenset(bounded))
