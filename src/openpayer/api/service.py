"""What the FHIR API's routes use: the engine's services, the page-size rule and the CapabilityStatement.

Built by the composition root (`openpayer.bootstrap`) and put on `app.state.fhir_api`; the routes reach it
through `FhirBase.services` and never build a service themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from openpayer.api.context import DIRECTORY_TYPES
from openpayer.api.operations import OperationRoutes
from openpayer.api.search_routes import SearchRoutes
from openpayer.config import Settings
from openpayer.fhir.bundles import BundleProcessor
from openpayer.fhir.capabilities import Contributor, OperationInfo, capability_statement
from openpayer.fhir.errors import BadRequest
from openpayer.fhir.operations import member_match as member_match_op
from openpayer.fhir.operations import validate as validate_op
from openpayer.fhir.paging import CursorSigner
from openpayer.fhir.search.registry import SearchParamRegistry
from openpayer.fhir.search.service import SearchService
from openpayer.fhir.services import FhirService


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
    capability_contributors: list[Contributor] = field(default_factory=list)
    search_routes: SearchRoutes = field(default_factory=SearchRoutes)
    operations: OperationRoutes = field(default_factory=OperationRoutes)
    _capabilities: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def page_size(self, raw: str | None) -> int:
        if raw is None:
            return self.settings.default_page_size
        if not raw.isdigit():
            raise BadRequest(f"_count must be a non-negative integer, not {raw!r}")
        return max(1, min(int(raw), self.settings.max_page_size))

    def operations_for(self, kind: str) -> list[OperationInfo]:
        types = tuple(sorted(self.types_for(kind)))
        ops = [validate_op.info(types)]
        if kind == "fhir":
            ops.append(
                OperationInfo(
                    "everything", "http://hl7.org/fhir/OperationDefinition/Patient-everything", ("Patient",)
                )
            )
            ops.append(member_match_op.info())
        return ops

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
