"""The vendored conformance index of the served implementation guides (read-only, loaded once).

Everything is derived from the IG packages by `scripts/vendor_ig_conformance.py`; nothing is listed by
hand here, so supported profiles and required searches cannot drift from the guides.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

import orjson

Api = Literal["fhir", "directory"]
DATA_FILE = "ig-conformance.json.gz"


@dataclass(frozen=True, slots=True)
class Guide:
    key: str  # short name: carin-bb, us-core-3.1.1, us-core-6.1.0, pdex, plan-net, formulary
    folder: str  # folder of the package under ../shared/ig
    package: str  # npm package id, e.g. hl7.fhir.us.carin-bb
    version: str
    canonical: str  # the ImplementationGuide resource's URL
    title: str
    api: Api  # the base that serves it
    server: str  # canonical of its server CapabilityStatement


@dataclass(frozen=True, slots=True)
class Profile:
    url: str
    type: str
    name: str
    guide: str


@dataclass(frozen=True, slots=True)
class Expected:
    """One thing a statement lists, with its expectation (SHALL, SHOULD, MAY; None when not given)."""

    value: str
    expectation: str | None


@dataclass(frozen=True, slots=True)
class SearchParamUse:
    name: str
    definition: str | None
    type: str
    expectation: str | None


@dataclass(frozen=True, slots=True)
class ResourceRequirements:
    type: str
    expectation: str | None
    profiles: tuple[str, ...]
    search_params: tuple[SearchParamUse, ...]
    combinations: tuple[tuple[tuple[str, ...], str | None], ...]  # (parameter names, expectation)
    includes: tuple[Expected, ...]
    revincludes: tuple[Expected, ...]
    operations: tuple[tuple[str, str, str | None], ...]  # (name, definition, expectation)


@dataclass(frozen=True, slots=True)
class Statement:
    guide: str
    url: str
    version: str
    resources: tuple[ResourceRequirements, ...]

    def resource(self, rtype: str) -> ResourceRequirements | None:
        return next((r for r in self.resources if r.type == rtype), None)


@dataclass(frozen=True, slots=True)
class ParamDefinition:
    url: str
    code: str
    base: tuple[str, ...]
    type: str
    expression: str | None
    target: tuple[str, ...]
    chain: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ConformanceIndex:
    guides: tuple[Guide, ...]
    profiles: tuple[Profile, ...]
    statements: tuple[Statement, ...]
    definitions: dict[str, ParamDefinition]
    parameters: dict[str, dict[str, str]]  # guide -> "Type:code" -> SearchParameter URL (used by the guide)

    def parameter(self, guide: str, rtype: str, code: str) -> ParamDefinition | None:
        """The definition of `rtype`'s `code` as the guide uses it (search, include, chain), if known."""
        url = self.parameters.get(guide, {}).get(f"{rtype}:{code}")
        return self.definitions.get(url) if url else None

    def guide(self, key: str) -> Guide:
        for guide in self.guides:
            if guide.key == key:
                return guide
        raise KeyError(key)

    def statement(self, key: str) -> Statement:
        for statement in self.statements:
            if statement.guide == key:
                return statement
        raise KeyError(key)

    def guides_for(self, api: str) -> Iterator[Guide]:
        return (g for g in self.guides if g.api == api)

    def profiles_by_type(self, api: str) -> dict[str, list[str]]:
        """Resource type -> profile canonicals of the guides served on `api` (sorted, no duplicates)."""
        keys = {g.key for g in self.guides_for(api)}
        found: dict[str, set[str]] = {}
        for profile in self.profiles:
            if profile.guide in keys:
                found.setdefault(profile.type, set()).add(profile.url)
        return {rtype: sorted(urls) for rtype, urls in sorted(found.items())}


def _expected(items: list[dict[str, Any]]) -> tuple[Expected, ...]:
    return tuple(Expected(i["value"], i["expectation"]) for i in items)


def _resource(raw: dict[str, Any]) -> ResourceRequirements:
    return ResourceRequirements(
        type=raw["type"],
        expectation=raw["expectation"],
        profiles=tuple(raw["profiles"]),
        search_params=tuple(
            SearchParamUse(p["name"], p["definition"], p["type"], p["expectation"])
            for p in raw["searchParams"]
        ),
        combinations=tuple((tuple(c["required"]), c["expectation"]) for c in raw["combinations"]),
        includes=_expected(raw["includes"]),
        revincludes=_expected(raw["revincludes"]),
        operations=tuple((o["name"], o["definition"], o["expectation"]) for o in raw["operations"]),
    )


def parse_index(raw: dict[str, Any]) -> ConformanceIndex:
    return ConformanceIndex(
        guides=tuple(Guide(**g) for g in raw["guides"]),
        profiles=tuple(Profile(**p) for p in raw["profiles"]),
        statements=tuple(
            Statement(s["guide"], s["url"], s["version"], tuple(_resource(r) for r in s["resources"]))
            for s in raw["statements"]
        ),
        definitions={
            url: ParamDefinition(
                url,
                d["code"],
                tuple(d["base"]),
                d["type"],
                d["expression"],
                tuple(d["target"]),
                tuple(d["chain"]),
            )
            for url, d in raw["definitions"].items()
        },
        parameters=raw["parameters"],
    )


@cache
def load_index() -> ConformanceIndex:
    data = resources.files("openpayer.conformance").joinpath("data", DATA_FILE).read_bytes()
    return parse_index(orjson.loads(gzip.decompress(data)))
