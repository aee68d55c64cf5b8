"""What the served implementation guides add to the generated CapabilityStatement (a `Contributor`).

- `instantiates`: the server CapabilityStatements of the guides the base serves (Patient Access: CARIN BB
  `c4bb`, US Core server 3.1.1 and 6.1.0, PDex server; directory: Plan-Net and US Drug Formulary server).
  A canonical served in two versions (US Core) is given with `|version`.
- `implementationGuide`: the guides' ImplementationGuide canonicals, with `|version`.
- per resource: `supportedProfile` = the guides' profiles of that type; the `_include`/`_revinclude` values
  the guides list are added to the generated lists when the engine knows the parameter.

All of it comes from the vendored index (`openpayer.conformance.metadata`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from openpayer.conformance.metadata import ConformanceIndex, load_index
from openpayer.fhir.capabilities import ParamSource


class ConformanceContributor:
    """`(kind, base_url, statement) -> None`; `kind` is the API: `fhir` or `directory`."""

    def __init__(self, params: ParamSource, index: ConformanceIndex | None = None) -> None:
        self.params = params
        self.index = index or load_index()

    def __call__(self, kind: str, base_url: str, statement: dict[str, Any]) -> None:
        guides = list(self.index.guides_for(kind))
        if not guides:
            return
        versions = Counter(g.server for g in guides)
        instantiates = [g.server if versions[g.server] == 1 else f"{g.server}|{g.version}" for g in guides]
        statement["instantiates"] = _merged(statement.get("instantiates", []), instantiates)
        statement["implementationGuide"] = _merged(
            statement.get("implementationGuide", []), [f"{g.canonical}|{g.version}" for g in guides]
        )
        profiles = self.index.profiles_by_type(kind)
        includes, revincludes = self._listed(kind)
        for rest in statement.get("rest", []):
            for entry in rest.get("resource", []):
                rtype = entry["type"]
                if rtype in profiles:
                    entry["supportedProfile"] = _merged(entry.get("supportedProfile", []), profiles[rtype])
                if rtype in includes:
                    entry["searchInclude"] = _merged(entry.get("searchInclude", []), includes[rtype])
                if rtype in revincludes:
                    entry["searchRevInclude"] = _merged(entry.get("searchRevInclude", []), revincludes[rtype])

    def _listed(self, kind: str) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        """The `_include` and `_revinclude` values of the guides on `kind` whose parameter the engine has."""
        includes: dict[str, list[str]] = {}
        revincludes: dict[str, list[str]] = {}
        for guide in self.index.guides_for(kind):
            for resource in self.index.statement(guide.key).resources:
                for item in resource.includes:
                    if self._known(item.value):
                        includes.setdefault(resource.type, []).append(item.value)
                for item in resource.revincludes:
                    if self._known(item.value):
                        revincludes.setdefault(resource.type, []).append(item.value)
        return includes, revincludes

    def _known(self, value: str) -> bool:
        parts = value.split(":")
        if len(parts) < 2 or parts[1] == "*":
            return False
        param = self.params.for_type(parts[0]).get(parts[1])
        return param is not None and param.type == "reference"


def _merged(existing: list[str], added: list[str]) -> list[str]:
    return list(dict.fromkeys([*existing, *added]))
