"""`$validate` (FHIR R4 §2.42 Resource-validate): validate a resource without storing it.

Answers 200 with an OperationOutcome listing every issue found by the same validator that guards writes
(an `information` "All OK" issue when there is none), then by the profile validator
(`openpayer.fhir.profiles`): against the `profile` parameter when given (``?profile=`` or the Parameters
`profile`), else against the profiles the resource claims in ``meta.profile``.
"""

from __future__ import annotations

from typing import Any

from openpayer.fhir.capabilities import OperationInfo
from openpayer.fhir.errors import BadRequest
from openpayer.fhir.outcome import Issue, operation_outcome
from openpayer.fhir.profiles import validate_against_profiles
from openpayer.fhir.services import FhirService

DEFINITION = "http://hl7.org/fhir/OperationDefinition/Resource-validate"


def info(resource_types: tuple[str, ...]) -> OperationInfo:
    return OperationInfo("validate", DEFINITION, resource_types)


def resource_from_input(body: Any) -> tuple[dict[str, Any], str | None]:
    """Accept the resource itself or a Parameters with `resource` (and optional `mode`, `profile`)."""
    if not isinstance(body, dict):
        raise BadRequest("$validate takes a resource or a Parameters resource")
    if body.get("resourceType") != "Parameters":
        return body, None
    resource, profile = None, None
    for parameter in body.get("parameter", []) or []:
        if not isinstance(parameter, dict):
            continue
        if parameter.get("name") == "resource":
            resource = parameter.get("resource")
        elif parameter.get("name") == "profile":
            profile = parameter.get("valueUri") or parameter.get("valueCanonical")
    if not isinstance(resource, dict):
        raise BadRequest("The Parameters of $validate need a `resource` parameter")
    return resource, profile


def validate(
    service: FhirService, rtype: str, resource: dict[str, Any], rid: str | None, profile: str | None = None
) -> dict[str, Any]:
    issues: list[Issue] = []
    if resource.get("resourceType") != rtype:
        issues.append(
            Issue("error", "invalid", f"Expected a {rtype}, got {resource.get('resourceType')!r}", (rtype,))
        )
    if rid is not None and resource.get("id") not in (None, rid):
        issues.append(
            Issue("error", "invalid", f"The id does not match the URL id '{rid}'", (f"{rtype}.id",))
        )
    issues.extend(service.validator(resource))
    issues.extend(
        validate_against_profiles(resource, [profile] if isinstance(profile, str) and profile else None)
    )
    return operation_outcome(issues)
