"""Enumerable value-set expansion for the token modifiers `:in` and `:not-in` (R4 §3.1.1.5.6).

Only value sets that can be expanded from the vendored definitions (`load("valuesets")`) are supported: the
compose may include whole code systems that are vendored with `content: complete`, explicit concept lists and
other value sets; `filter`s (is-a, regex …) and external code systems (SNOMED CT, LOINC …) are not
enumerable here, and such a value set is rejected with a clear message rather than half-expanded.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from openpayer.fhir.definitions import load
from openpayer.fhir.errors import BadRequest

MAX_EXPANSION = 10_000


@cache
def _index() -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    value_sets: dict[str, dict[str, Any]] = {}
    code_systems: dict[str, dict[str, Any]] = {}
    for entry in load("valuesets").get("entry", ()):
        resource = entry.get("resource") or {}
        url = resource.get("url")
        if not url:
            continue
        if resource.get("resourceType") == "ValueSet":
            value_sets[url] = resource
        elif resource.get("resourceType") == "CodeSystem":
            code_systems[url] = resource
    return value_sets, code_systems


def _concepts(concepts: Iterable[dict[str, Any]]) -> Iterable[str]:
    for concept in concepts:
        if "code" in concept:
            yield concept["code"]
        yield from _concepts(concept.get("concept", ()))


class NotEnumerable(BadRequest):
    pass


def _expand_vs(url: str, seen: frozenset[str]) -> set[tuple[str | None, str]]:
    value_sets, code_systems = _index()
    canonical = url.split("|", 1)[0]
    vs = value_sets.get(canonical)
    if vs is None:
        raise NotEnumerable(f"Unknown value set {url!r} for :in/:not-in")
    if canonical in seen:
        return set()
    expansion = vs.get("expansion", {}).get("contains")
    if expansion and "compose" not in vs:
        return {(c.get("system"), c["code"]) for c in expansion if "code" in c}
    compose = vs.get("compose") or {}

    def part(item: dict[str, Any]) -> set[tuple[str | None, str]]:
        if item.get("filter"):
            raise NotEnumerable(f"Value set {url!r} uses filters and cannot be enumerated for :in/:not-in")
        codes: set[tuple[str | None, str]] | None = None
        system = item.get("system")
        if system is not None:
            if item.get("concept"):
                codes = {(system, c["code"]) for c in item["concept"] if "code" in c}
            else:
                cs = code_systems.get(system)
                if cs is None or cs.get("content") != "complete":
                    raise NotEnumerable(
                        f"Value set {url!r} includes code system {system!r}, which is not available here"
                    )
                codes = {(system, code) for code in _concepts(cs.get("concept", ()))}
        for nested in item.get("valueSet", ()):
            nested_codes = _expand_vs(nested, seen | {canonical})
            codes = nested_codes if codes is None else codes & nested_codes
        return codes or set()

    result: set[tuple[str | None, str]] = set()
    for item in compose.get("include", ()):
        result |= part(item)
    for item in compose.get("exclude", ()):
        result -= part(item)
    if len(result) > MAX_EXPANSION:
        raise NotEnumerable(f"Value set {url!r} is too large for :in/:not-in ({len(result)} codes)")
    return result


@cache
def expand(url: str) -> frozenset[tuple[str | None, str]]:
    """The (system, code) pairs of a vendored, enumerable value set; BadRequest otherwise."""
    return frozenset(_expand_vs(url, frozenset()))
