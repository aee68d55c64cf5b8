"""Validation of resources against the R4 StructureDefinitions (and, later, IG profiles)."""

from openpayer.fhir.validation.structure import known_resource_types, validate_resource

__all__ = ["known_resource_types", "validate_resource"]
