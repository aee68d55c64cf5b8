"""What the FHIR API's routes use: the engine's services, the page-size rule and the CapabilityStatement.

Built by the composition root (`openpayer.bootstrap`) and put on `app.state.fhir_api`; the routes reach it
through `FhirBase.services` and never build a service themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from openpayer.config import Settings
from openpayer.fhir.bundles import BundleProcessor
from openpayer.fhir.capabilities import Contributor, OperationInfo, capability_statement
from openpayer.fhir.errors import BadRequest
from openpayer.fhir.operations.registry import OperationRegistry
from openpayer.fhir.paging import CursorSigner
from openpayer.fhir.search.registry import SearchParamRegistry
from openpayer.fhir.search.service import SearchService
from openpayer.fhir.services import FhirService

# Plan-Net 1.1.0 and US Drug Formulary 2.0.1 resource types: public, read-only (45 CFR §156.221 provider
# directory and formulary requirements), served at /{env}/directory.
DIRECTORY_TYPES = frozenset(
    {
        "Endpoint",
        "HealthcareService",
        "InsurancePlan",
        "Location",
        "Organization",
        "OrganizationAffiliation",
        "Practitioner",
        "PractitionerRole",
        "Basic",
        "MedicationKnowledge",
    }
)


@dataclass
class FhirApi:
    """Everything a FHIR route may use; built once per application."""

    settings: Settings
    engine: Engine
    registry: SearchParamRegistry
    signer: CursorSigner
    fhir: FhirService
    search: SearchService
    bundles: BundleProcessor
    resource_types: frozenset[str]
    operations: OperationRegistry[Any]  # the $operations (`api/operations.py` `fhir_operations()`)
    capability_contributors: list[Contributor] = field(default_factory=list)
    _capabilities: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def page_size(self, raw: str | None) -> int:
        if raw is None:
            return self.settings.default_page_size
        if not raw.isdigit():
            raise BadRequest(f"_count must be a non-negative integer, not {raw!r}")
        return max(1, min(int(raw), self.settings.max_page_size))

    def operations_for(self, kind: str) -> list[OperationInfo]:
        return self.operations.infos(kind, self.types_for(kind))

    def types_for(self, kind: str) -> frozenset[str]:
        return DIRECTORY_TYPES if kind == "directory" else self.resource_types

    def capability(self, kind: str, base_url: str) -> dict[str, Any]:
        key = (kind, base_url)
        if key not in self._capabilities:
            self._capabilities[key] = capability_statement(
                kind=kind,
                base_url=base_url,
                resource_types=self.types_for(kind),
                params=self.registry,
                operations=self.operations_for(kind),
                read_only=kind == "directory",
                contributors=self.capability_contributors,
            )
        return self._capabilities[key]
