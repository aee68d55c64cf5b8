"""Search restrictions the SMART layer adds beside the search engine's `PatientCompartment`.

- `TypeFilter`: only the resource types the token may search (so `_include`, `_revinclude`, `_type` and
  `$everything` never return a type that was not granted).
- `QueryFilter`: SMART v2 granular scopes (`patient/Observation.rs?category=laboratory`): a type reachable
  only through such scopes must also match one of their queries, compiled with the search engine's own
  parser and SQL, so reads, searches and includes all honour it (SMART App Launch 2.2 "Finer-grained
  resource constraints using search parameters").
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, FromClause, and_, false, or_, true

from openpayer.clock import Clock
from openpayer.fhir.errors import FHIRError
from openpayer.fhir.search.params import Registry, parse_query
from openpayer.fhir.search.sql import Context, node_clause


class TypeFilter:
    def __init__(self, types: Collection[str]) -> None:
        self.types = tuple(sorted(types))

    @property
    def key(self) -> str:
        return "types:" + ",".join(self.types)

    def clause(self, resource: FromClause) -> ColumnElement[bool]:
        if not self.types:
            return false()
        return resource.c.type.in_(self.types)

    def clause_for_types(self, resource: FromClause, types: Collection[str]) -> ColumnElement[bool]:
        wanted = set(types)
        if wanted <= set(self.types):
            return true()
        return false() if not wanted & set(self.types) else self.clause(resource)

    def admits(self, resource: dict[str, Any]) -> bool:
        return resource.get("resourceType") in self.types


class QueryFilter:
    def __init__(
        self,
        env: str,
        dialect: str,
        registry: Registry,
        bounded: Mapping[str, Sequence[tuple[tuple[str, str], ...]]],
        clock: Clock,
    ) -> None:
        self.clock = clock  # `ap` date comparisons are relative to now
        self.env = env
        self.dialect = dialect
        self.registry = registry
        self.bounded = {t: list(qs) for t, qs in sorted(bounded.items())}

    @property
    def key(self) -> str:
        return "query:" + ";".join(f"{t}?{q}" for t, qs in self.bounded.items() for q in qs)

    def clause(self, resource: FromClause) -> ColumnElement[bool]:
        return self._clause(resource, self.bounded)

    def clause_for_types(self, resource: FromClause, types: Collection[str]) -> ColumnElement[bool]:
        relevant = {t: qs for t, qs in self.bounded.items() if t in set(types)}
        return self._clause(resource, relevant) if relevant else true()

    def admits(self, resource: dict[str, Any]) -> bool:
        """Older versions of a type reachable only through scope queries are not shown: the queries are
        evaluated in SQL on current rows, and an older version may not have matched them."""
        return resource.get("resourceType") not in self.bounded

    def _clause(
        self, resource: FromClause, bounded: Mapping[str, Sequence[tuple[tuple[str, str], ...]]]
    ) -> ColumnElement[bool]:
        ctx = Context(self.env, "", self.dialect, None, None, self.clock.now_micros())
        allowed: list[ColumnElement[bool]] = []
        for rtype, queries in bounded.items():
            options: list[ColumnElement[bool]] = []
            for query in queries:
                try:
                    parsed = parse_query(
                        self.registry, rtype, list(query), strict=True, default_count=1, max_count=1
                    )
                except FHIRError:
                    continue  # a scope query this server cannot evaluate grants nothing
                if parsed.criteria:
                    options.append(and_(true(), *(node_clause(n, resource, ctx) for n in parsed.criteria)))
            allowed.append(and_(resource.c.type == rtype, or_(false(), *options)))
        return or_(resource.c.type.notin_(list(bounded)), *allowed)
