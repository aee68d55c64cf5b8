"""The CapabilityStatement (FHIR R4 §3.1.0.13 `capabilities`), generated from what the server supports.

Nothing here is hand-written per type: resource types come from the served base, search parameters from
the registry the search engine uses, operations from the operation registry, so the statement cannot
drift from the behaviour. Extra content (SMART security, instantiated IG statements, profiles) is
contributed by other domains through `CapabilityContributor`s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from openpayer import __version__

SERVER_NAME = "OpenPayer"


class ParamSource(Protocol):
    def for_type(self, resource_type: str) -> Mapping[str, Any]: ...


# `_list` (FHIR R4 §3.1.1.4.3) is defined by the search page, not by a SearchParameter resource.
LIST_PARAM = {
    "name": "_list",
    "type": "special",
    "documentation": "Resources listed in List/[id] (List.entry.item); "
    "functional lists ($current-...) are not supported.",
}


@dataclass(frozen=True, slots=True)
class OperationInfo:
    name: str  # without "$"
    definition: str  # canonical URL of the OperationDefinition
    types: tuple[str, ...]  # resource types it is declared on; () = system level


Contributor = Callable[[str, str, dict[str, Any]], None]  # (kind, base_url, statement) -> mutate


def capability_statement(
    *,
    kind: str,
    base_url: str,
    resource_types: Iterable[str],
    params: ParamSource,
    operations: Iterable[OperationInfo],
    read_only: bool,
    contributors: Iterable[Contributor] = (),
    software_date: str | None = None,
) -> dict[str, Any]:
    interactions = ["read", "vread", "search-type", "history-instance", "history-type"]
    if not read_only:
        interactions += ["create", "update", "patch", "delete"]
    ops = list(operations)
    resources = []
    for rtype in sorted(resource_types):
        entry: dict[str, Any] = {
            "type": rtype,
            "interaction": [{"code": code} for code in interactions],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": not read_only,
            "conditionalCreate": not read_only,
            "conditionalRead": "full-support",
            "conditionalUpdate": not read_only,
            "conditionalDelete": "not-supported" if read_only else "single",
            "referencePolicy": ["literal", "logical", "local"],
            "searchParam": [
                *(
                    {"name": code, "definition": param.url, "type": param.type}
                    for code, param in sorted(params.for_type(rtype).items())
                ),
                LIST_PARAM,
            ],
        }
        includes = sorted(
            f"{rtype}:{code}" for code, param in params.for_type(rtype).items() if param.type == "reference"
        )
        entry["searchInclude"] = ["*", *includes]
        entry["searchRevInclude"] = ["*"]
        type_ops = [op for op in ops if rtype in op.types]
        if type_ops:
            entry["operation"] = [{"name": op.name, "definition": op.definition} for op in type_ops]
        resources.append(entry)
    rest: dict[str, Any] = {
        "mode": "server",
        "resource": resources,
        "interaction": [{"code": "search-system"}]
        + ([] if read_only else [{"code": "transaction"}, {"code": "batch"}, {"code": "history-system"}]),
    }
    system_ops = [op for op in ops if not op.types]
    if system_ops:
        rest["operation"] = [{"name": op.name, "definition": op.definition} for op in system_ops]
    statement: dict[str, Any] = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": software_date or datetime.now(UTC).date().isoformat(),  # generated now, from the code
        "publisher": SERVER_NAME,
        "kind": "instance",
        "software": {"name": SERVER_NAME, "version": __version__},
        "implementation": {"description": f"{SERVER_NAME} {kind} API", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["json", "application/fhir+json"],
        "patchFormat": [] if read_only else ["application/json-patch+json"],
        "rest": [rest],
    }
    if not statement["patchFormat"]:
        del statement["patchFormat"]
    for contribute in contributors:
        contribute(kind, base_url, statement)
    return statement
