"""Conformance test support: the required searches of a guide, and their expected results worked out here.

`cases_for` turns a guide's server CapabilityStatement (from the vendored index) into concrete cases: each
SHALL search parameter alone, each SHALL (or unqualified) combination, each `_include` / `_revinclude`,
and for parameters that declare `chain` names the forward chains and reverse chains (`_has`). `Runner.run`
picks the query values from the loaded data, asks the server over HTTP, and compares the ids it returns
with the ids computed from the same data by `oracle.py` (a small evaluator of the SearchParameters' FHIRPath
expressions and the R4 matching rules). It never calls the search engine for expected results.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import select

from openpayer.conformance.metadata import ConformanceIndex, ParamDefinition, Statement
from openpayer.db import read_connection, write_transaction
from openpayer.fhir.errors import FHIRError
from openpayer.fhir.storage import codec
from openpayer.fhir.storage.tables import fhir_resource

if TYPE_CHECKING:
    from openpayer.bootstrap import Services

SHARED = (Path(__file__).resolve().parents[2] / ".." / "shared").resolve()
ENV = "sandbox"


def _sibling(name: str) -> ModuleType:
    """A module beside this one (the tests are imported with --import-mode=importlib, not as a package)."""
    qualified = f"openpayer_conformance_{name}"
    if qualified not in sys.modules:
        spec = importlib.util.spec_from_file_location(qualified, Path(__file__).with_name(f"{name}.py"))
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[qualified] = module
        spec.loader.exec_module(module)
    return sys.modules[qualified]


oracle = _sibling("oracle")
Key = tuple[str, str]  # (resource type, id)
EXTRA_PARAMS = {
    "_id": ParamDefinition("_id", "_id", (), "token", "id", (), ()),
    "_lastUpdated": ParamDefinition("_lastUpdated", "_lastUpdated", (), "date", "meta.lastUpdated", (), ()),
}
ASKED = ("SHALL", None)  # expectations a case is made for (None: the statement does not qualify it)
CANDIDATES = 8  # query values tried per search case (the most discriminating one is asked)


class NoData(Exception):
    """No loaded resource has the values this case needs; the case cannot be exercised on this data."""


@dataclass(frozen=True, slots=True)
class Case:
    kind: str  # search | include | revinclude | chain | has
    rtype: str  # the type searched
    params: tuple[str, ...] = ()  # search: the parameter names; chain/has: the reference parameter
    detail: str = ""  # include/revinclude value; chain: the chained parameter; has: the source type
    exact_dates: bool = False  # search: dates as the element's own value (`date=2020-01-01T10:00:00Z`)

    @property
    def id(self) -> str:
        if self.kind == "search":
            return f"{self.rtype}?{'+'.join(self.params)}" + ("[exact-date]" if self.exact_dates else "")
        if self.kind == "chain":
            return f"{self.rtype}?{self.params[0]}.{self.detail}"
        if self.kind == "has":
            return f"{self.rtype}?_has:{self.detail}:{self.params[0]}"
        return f"{self.rtype}?_{self.kind}={self.detail}"


@dataclass
class Dataset:
    """What is loaded in one environment of a store, as read back from the database (not by search)."""

    name: str
    env: str
    client: Any  # a TestClient (authorised on /fhir)
    headers: dict[str, str]
    resources: dict[Key, dict[str, Any]]
    rejected: dict[str, str] = field(default_factory=dict)

    def of_type(self, rtype: str) -> list[dict[str, Any]]:
        return [self.resources[k] for k in sorted(k for k in self.resources if k[0] == rtype)]


# ---- cases -------------------------------------------------------------------------------------------------


def cases_for(index: ConformanceIndex, guide: str, served: Iterable[str] | None = None) -> list[Case]:
    statement = index.statement(guide)
    allowed = set(served) if served is not None else None
    cases: dict[str, Case] = {}

    def add(case: Case) -> None:
        if allowed is None or case.rtype in allowed:
            cases.setdefault(case.id, case)

    for res in statement.resources:
        for use in res.search_params:
            if use.expectation == "SHALL":
                add(Case("search", res.type, (use.name,)))
        for names, expectation in res.combinations:
            if expectation in ASKED:
                add(Case("search", res.type, names))
                if any(_kind(index, statement, res.type, n) == "date" for n in names):
                    add(Case("search", res.type, names, exact_dates=True))
        for item in res.includes:
            if item.expectation in ASKED and not item.value.endswith("*"):
                add(Case("include", res.type, (), item.value))
        for item in res.revincludes:
            if item.expectation in ASKED:
                add(Case("revinclude", res.type, (), item.value))
        for use in res.search_params:
            definition = index.definitions.get(use.definition or "")
            if use.expectation != "SHALL" or definition is None or not definition.chain:
                continue
            for chained in definition.chain:
                add(Case("chain", res.type, (use.name,), chained))
            for target in definition.target:
                add(Case("has", target, (use.name,), res.type))
    return list(cases.values())


def _kind(index: ConformanceIndex, statement: Statement, rtype: str, name: str) -> str | None:
    found = param(index, statement, rtype, name)
    return found.type if found else None


def param(index: ConformanceIndex, statement: Statement, rtype: str, name: str) -> ParamDefinition | None:
    if name in EXTRA_PARAMS:
        return EXTRA_PARAMS[name]
    found = index.parameter(statement.guide, rtype, name)
    if found is None:
        found = next((d for s in index.statements if (d := index.parameter(s.guide, rtype, name))), None)
    return found


# ---- running a case ----------------------------------------------------------------------------------------


@dataclass
class Outcome:
    query: list[tuple[str, str]]
    expected_matches: set[Key]
    got_matches: set[Key]
    expected_included: set[Key] = field(default_factory=set)
    got_included: set[Key] = field(default_factory=set)


class Runner:
    def __init__(self, index: ConformanceIndex, guide: str, api: str, data: Dataset) -> None:
        self.index = index
        self.statement = index.statement(guide)
        self.api = api
        self.data = data

    # -- helpers --
    def definition(self, rtype: str, name: str) -> ParamDefinition:
        found = param(self.index, self.statement, rtype, name)
        if found is None:
            raise NoData(f"no SearchParameter definition for {rtype}.{name} in the vendored index")
        return found

    def values(self, resource: dict[str, Any], name: str) -> list[Any]:
        definition = self.definition(resource["resourceType"], name)
        return oracle.evaluate(resource, definition.expression, resource["resourceType"])

    def pick(self, resource: dict[str, Any], name: str, exact: bool = False) -> str | None:
        kind = self.definition(resource["resourceType"], name).type
        for value in self.values(resource, name):
            query = oracle.query_value(kind, value, self.data.resources.__contains__, exact)
            if query is not None:
                return query
        return None

    def satisfies(self, resource: dict[str, Any], name: str, query: str) -> bool:
        kind = self.definition(resource["resourceType"], name).type
        return any(oracle.matches(kind, value, query) for value in self.values(resource, name))

    def targets(self, resource: dict[str, Any], name: str) -> list[Key]:
        keys = (oracle.ref_key(v) for v in self.values(resource, name))
        return [k for k in keys if k is not None and k in self.data.resources]

    def ask(self, rtype: str, query: list[tuple[str, str]]) -> tuple[set[Key], set[Key]]:
        url: str | None = f"/{self.data.env}/{self.api}/{rtype}"
        params: list[tuple[str, str]] | None = [*query, ("_count", "500")]
        matched: set[Key] = set()
        included: set[Key] = set()
        pages = 0
        while url is not None:
            response = self.data.client.get(url, params=params, headers=self.data.headers)
            assert response.status_code == 200, (query, response.status_code, response.text[:800])
            bundle = response.json()
            for entry in bundle.get("entry", []):
                resource = entry["resource"]
                key = (resource["resourceType"], resource["id"])
                mode = entry.get("search", {}).get("mode", "match")
                if mode == "match":
                    matched.add(key)
                elif mode == "include":
                    included.add(key)
            url = next((link["url"] for link in bundle.get("link", []) if link["relation"] == "next"), None)
            params = None
            pages += 1
            assert pages < 100, "paging does not end"
        return matched, included

    # -- cases --
    def run(self, case: Case) -> Outcome:
        if case.kind == "search":
            return self._search(case)
        if case.kind in ("include", "revinclude"):
            return self._include(case)
        if case.kind == "chain":
            return self._chain(case)
        return self._has(case)

    def _search(self, case: Case) -> Outcome:
        pool = self.data.of_type(case.rtype)
        candidates: list[list[tuple[str, str]]] = []
        for resource in pool:
            picked = [(name, self.pick(resource, name, case.exact_dates)) for name in case.params]
            if all(value is not None for _, value in picked):
                candidates.append([(name, str(value)) for name, value in picked])
        if not candidates:
            raise NoData(f"no {case.rtype} has values for {' + '.join(case.params)}")
        step = max(1, len(candidates) // CANDIDATES)

        def expected_for(criteria: list[tuple[str, str]]) -> set[Key]:
            return {
                (r["resourceType"], r["id"])
                for r in pool
                if all(self.satisfies(r, name, value) for name, value in criteria)
            }

        # the most selective-but-not-trivial query among a sample: closest to half of the type
        scored = [(abs(len(expected_for(c)) - len(pool) / 2), i, c) for i, c in enumerate(candidates[::step])]
        criteria = min(scored)[2]
        expected = expected_for(criteria)
        matched, _ = self.ask(case.rtype, criteria)
        return Outcome(criteria, expected, matched)

    def _include(self, case: Case) -> Outcome:
        parts = case.detail.split(":")
        source, name = parts[0], parts[1]
        target_type = parts[2] if len(parts) > 2 else None
        pool = self.data.of_type(case.rtype)
        query: list[tuple[str, str]] = []
        if case.kind == "include" and source == case.rtype:
            # searched and included of one type (formulary plans and formularies, organizations and their
            # parents): ask for the linking resources by `_id`, so that their targets are not matches too
            linked = {k for r in pool for k in self.targets(r, name)}
            linking = [
                r for r in pool if self.targets(r, name) and (r["resourceType"], r["id"]) not in linked
            ]
            if linking:
                pool = linking
                query.append(("_id", ",".join(r["id"] for r in pool)))
        expected_matches = {(r["resourceType"], r["id"]) for r in pool}
        expected: set[Key] = set()
        if case.kind == "include":
            for resource in pool:
                expected.update(k for k in self.targets(resource, name) if target_type in (None, k[0]))
        else:
            for resource in self.data.of_type(source):
                if any(k in expected_matches for k in self.targets(resource, name)):
                    expected.add((source, resource["id"]))
        if not expected:
            raise NoData(f"no loaded {case.rtype} is linked by {case.detail}")
        query.append((f"_{case.kind}", case.detail))
        matched, included = self.ask(case.rtype, query)
        return Outcome(query, expected_matches, matched, expected - expected_matches, included)

    def _chain(self, case: Case) -> Outcome:
        name, chained = case.params[0], case.detail
        value = None
        for resource in self.data.of_type(case.rtype):
            for key in self.targets(resource, name):
                target = self.data.resources[key]
                if param(self.index, self.statement, key[0], chained) is None:
                    continue
                value = self.pick(target, chained)
                if value is not None:
                    break
            if value is not None:
                break
        if value is None:
            raise NoData(f"no {case.rtype}.{name} target has a value for {chained}")

        def hit(key: Key) -> bool:
            if param(self.index, self.statement, key[0], chained) is None:
                return False
            return self.satisfies(self.data.resources[key], chained, value)

        expected = {
            (r["resourceType"], r["id"])
            for r in self.data.of_type(case.rtype)
            if any(map(hit, self.targets(r, name)))
        }
        query = [(f"{name}.{chained}", value)]
        matched, _ = self.ask(case.rtype, query)
        return Outcome(query, expected, matched)

    def _has(self, case: Case) -> Outcome:
        name, source = case.params[0], case.detail
        res = self.statement.resource(source)
        candidates = [
            u.name
            for u in (res.search_params if res else ())
            if u.expectation == "SHALL" and u.type != "reference" and not u.name.startswith("_")
        ] + ["_id"]
        chosen: tuple[str, str] | None = None
        for resource in self.data.of_type(source):
            if not any(k[0] == case.rtype for k in self.targets(resource, name)):
                continue
            for criterion in candidates:
                value = self.pick(resource, criterion)
                if value is not None:
                    chosen = (criterion, value)
                    break
            if chosen:
                break
        if chosen is None:
            raise NoData(f"no {source} refers to a {case.rtype} by {name} and has a value to filter on")
        criterion, value = chosen
        expected: set[Key] = set()
        for resource in self.data.of_type(source):
            if self.satisfies(resource, criterion, value):
                expected.update(k for k in self.targets(resource, name) if k[0] == case.rtype)
        query = [(f"_has:{source}:{name}:{criterion}", value)]
        matched, _ = self.ask(case.rtype, query)
        return Outcome(query, expected, matched)


# ---- supplements: links the examples lack, derived from the examples ---------------------------------------


def first(stored: dict[Key, dict[str, Any]], rtype: str) -> dict[str, Any] | None:
    keys = sorted(k for k in stored if k[0] == rtype)
    return dict(stored[keys[0]]) if keys else None


def provenances(stored: dict[Key, dict[str, Any]], types: Iterable[str]) -> list[dict[str, Any]]:
    """A Provenance for the first resource of each type that no Provenance targets yet."""
    targeted = {
        oracle.ref_key(t)
        for (rtype, _), r in stored.items()
        if rtype == "Provenance"
        for t in r.get("target", [])
    }
    agent = first(stored, "Organization")
    out = []
    for rtype in types:
        resource = first(stored, rtype)
        if resource is None or any(k is not None and k[0] == rtype for k in targeted) or agent is None:
            continue
        out.append(
            {
                "resourceType": "Provenance",
                "id": f"links-provenance-{rtype.lower()}",
                "target": [{"reference": f"{rtype}/{resource['id']}"}],
                "recorded": "2024-01-15T10:00:00Z",
                "agent": [{"who": {"reference": f"Organization/{agent['id']}"}}],
            }
        )
    return out


# ---- loading -----------------------------------------------------------------------------------------------


def source(spec: str | Path) -> Path:
    """A source: a path under ../shared, or (a `Path`) a file of the tests themselves."""
    return spec if isinstance(spec, Path) else SHARED / spec


def _files(spec: str | Path) -> list[Path]:
    path = source(spec)
    if path.is_dir():
        return sorted(path.glob("*.json"))
    return [path]


def reason(error: FHIRError) -> str:
    return "; ".join(sorted({issue.diagnostics for issue in error.issues}))


def load(services: Services, sources: list[str | Path]) -> dict[str, str]:
    """Write the files' resources into ENV; returns what was rejected (name -> reason)."""
    rejected: dict[str, str] = {}
    base = f"http://testserver/{ENV}/fhir"
    for spec in sources:
        for path in _files(spec):
            body = orjson.loads(path.read_bytes().removeprefix(b"\xef\xbb\xbf"))
            if body.get("resourceType") == "Bundle" and body.get("type") in ("transaction", "batch"):
                try:
                    services.bundles.process(ENV, body, base_url=base)
                except FHIRError as error:
                    rejected[path.name] = reason(error)
                continue
            if body.get("resourceType") == "Bundle":
                items = [(f"{path.name}#{i}", e.get("resource")) for i, e in enumerate(body.get("entry", []))]
            else:
                items = [(path.name, body)]
            for name, resource in items:
                if not isinstance(resource, dict) or "id" not in resource:
                    continue
                try:
                    services.fhir.update(ENV, resource["resourceType"], resource["id"], resource)
                except FHIRError as error:
                    rejected[name] = reason(error)
    return rejected


def stored(services: Services, env: str = ENV) -> dict[tuple[str, str], dict[str, Any]]:
    """Every current resource of `env`, read straight from the table (not through search)."""
    r = fhir_resource
    query = select(r.c.type, r.c.id, r.c.content).where(r.c.env == env, r.c.deleted.is_(False))
    with read_connection(services.engine) as conn:
        return {(row.type, row.id): orjson.loads(codec.decode(row.content)) for row in conn.execute(query)}


def system_token(services: Services, env: str = ENV) -> str:
    """A `system/*.rs` access token of a freshly registered backend client (5 minutes)."""
    auth = services.auth
    client_id, _ = auth.clients.register(
        env, name="conformance tests", redirect_uris=[], scopes=["system/*.rs"]
    )
    with write_transaction(services.engine) as conn:
        return auth.tokens.issue(
            conn,
            env=env,
            kind="access",
            client_id=client_id,
            scope="system/*.rs",
            expires_at=int(time.time()) + 300,
        )
