"""Search results and their `searchset` Bundle bytes.

Stored resource bytes are spliced into the Bundle as they are (no parse/re-serialise round trip); only
subsetted matches (`_summary`, `_elements`) are parsed, trimmed and tagged SUBSETTED by
`openpayer.fhir.subsetting`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal

import orjson

from openpayer.clock import to_instant
from openpayer.fhir.outcome import Issue, operation_outcome
from openpayer.fhir.subsetting import select_elements, summarize

Mode = Literal["match", "include", "outcome"]


@dataclass(frozen=True, slots=True)
class Entry:
    resource_type: str
    id: str
    full_url: str
    body: bytes  # the resource JSON bytes, as stored (or subsetted)


@dataclass(slots=True)
class SearchResult:
    matches: list[Entry] = field(default_factory=list)
    included: list[Entry] = field(default_factory=list)
    total: int | None = None
    links: list[tuple[str, str]] = field(default_factory=list)  # (relation, absolute URL), self first
    issues: list[Issue] = field(default_factory=list)
    at: int = 0  # when the search ran (microseconds): the Bundle's meta.lastUpdated

    def link(self, relation: str) -> str | None:
        return next((url for rel, url in self.links if rel == relation), None)


def subset(body: bytes, summary: str | None, elements: tuple[str, ...] | None) -> bytes:
    """Apply `_summary` (true/text/data) or `_elements` to one resource's bytes."""
    if summary in (None, "false", "count") and not elements:
        return body
    resource = orjson.loads(body)
    if summary in ("true", "text", "data"):
        resource = summarize(resource, summary)
    elif elements:
        resource = select_elements(resource, ",".join(elements))
    return orjson.dumps(resource)


def _entry(entry: Entry, mode: Mode) -> bytes:
    head = orjson.dumps(entry.full_url)
    return (
        b'{"fullUrl":' + head + b',"resource":' + entry.body + b',"search":{"mode":"' + mode.encode() + b'"}}'
    )


def render_searchset(result: SearchResult) -> bytes:
    """The searchset Bundle JSON bytes for `result`."""
    head: dict[str, object] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": to_instant(result.at)},
        "type": "searchset",
    }
    if result.total is not None:
        head["total"] = result.total
    if result.links:
        head["link"] = [{"relation": rel, "url": url} for rel, url in result.links]
    entries = [_entry(e, "match") for e in result.matches]
    entries.extend(_entry(e, "include") for e in result.included)
    if result.issues:
        outcome = orjson.dumps(operation_outcome(result.issues))
        entries.append(b'{"resource":' + outcome + b',"search":{"mode":"outcome"}}')
    start = orjson.dumps(head)
    if not entries:
        return start
    return start[:-1] + b',"entry":[' + b",".join(entries) + b"]}"
