"""Batch and transaction Bundles (FHIR R4 §3.1.0.11).

A transaction runs in one database transaction: DELETEs, then POSTs, then PUTs/PATCHes, then GETs
(§3.1.0.11.2), with `urn:uuid:` and conditional references rewritten to the ids the server assigns.
Any failure rolls the whole transaction back. A batch runs each entry on its own and reports each outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Connection

from openpayer.clock import to_instant
from openpayer.db import read_connection, write_transaction
from openpayer.fhir.errors import BadRequest, FHIRError, Gone, MultipleMatches, NotFound, PreconditionFailed
from openpayer.fhir.services import FhirService, Outcome, new_id
from openpayer.fhir.storage.repository import StoredVersion

_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
_STATUS_TEXT = {200: "200 OK", 201: "201 Created", 204: "204 No Content"}


class BundleSearch(Protocol):
    """A search inside a bundle: returns the searchset Bundle as JSON for the entry's `resource`."""

    def __call__(
        self, conn: Connection, env: str, rtype: str, query: str, base_url: str
    ) -> dict[str, Any]: ...


@dataclass(slots=True)
class _Entry:
    index: int
    method: str
    url: str
    rtype: str | None
    rid: str | None
    query: str
    resource: Any
    full_url: str | None
    if_match: int | None
    if_none_exist: str | None
    response: dict[str, Any] = field(default_factory=dict)


class BundleProcessor:
    def __init__(self, service: FhirService, search: BundleSearch | None, resource_types: frozenset[str]):
        self.service = service
        self.search = search
        self.resource_types = resource_types

    def process(self, env: str, bundle: Any, *, base_url: str) -> dict[str, Any]:
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            raise BadRequest("POST to the base takes a Bundle of type batch or transaction")
        kind = bundle.get("type")
        if kind not in ("batch", "transaction"):
            raise BadRequest(f"Bundle.type must be batch or transaction, not {kind!r}")
        raw_entries = bundle.get("entry", [])
        if not isinstance(raw_entries, list):
            raise BadRequest("Bundle.entry must be an array")
        if kind == "transaction":
            entries = [self._parse_entry(i, raw) for i, raw in enumerate(raw_entries)]
            self._transaction(env, entries, base_url)
        else:
            entries = []
            for i, raw in enumerate(raw_entries):
                try:
                    entry = self._parse_entry(i, raw)
                except FHIRError as exc:
                    entries.append(_failed(i, exc))
                    continue
                entries.append(entry)
                self._batch_entry(env, entry, base_url)
        return {
            "resourceType": "Bundle",
            "id": new_id(),
            "type": f"{kind}-response",
            "entry": [
                {
                    "response": e.response,
                    **(
                        {"resource": e.resource} if e.method == "GET" and isinstance(e.resource, dict) else {}
                    ),
                }
                for e in entries
            ],
        }

    # ---- parsing -----------------------------------------------------------------------------
    def _parse_entry(self, index: int, raw: Any) -> _Entry:
        where = f"Bundle.entry[{index}]"
        if not isinstance(raw, dict):
            raise BadRequest(f"{where} must be an object")
        request = raw.get("request")
        if not isinstance(request, dict):
            raise BadRequest(f"{where}.request is required in a batch or transaction")
        method = str(request.get("method", "")).upper()
        url = request.get("url")
        if method not in _ORDER or not isinstance(url, str) or not url:
            raise BadRequest(f"{where}.request needs a method (GET, POST, PUT, PATCH, DELETE) and a url")
        path, _, query = url.partition("?")
        parts = [p for p in path.strip("/").split("/") if p]
        rtype = parts[0] if parts else None
        if rtype is not None and rtype not in self.resource_types:
            raise BadRequest(f"{where}.request.url names an unknown resource type '{rtype}'")
        rid = parts[1] if len(parts) > 1 else None
        resource = raw.get("resource")
        if method in ("POST", "PUT") and not isinstance(resource, dict):
            raise BadRequest(f"{where}.resource is required for {method}")
        if method == "PATCH":
            resource = _patch_document(resource, where)
        if_match = None
        if request.get("ifMatch"):
            digits = "".join(ch for ch in str(request["ifMatch"]) if ch.isdigit())
            if not digits:
                raise BadRequest(f"{where}.request.ifMatch is not a version ETag")
            if_match = int(digits)
        return _Entry(
            index,
            method,
            url,
            rtype,
            rid,
            query,
            resource,
            raw.get("fullUrl"),
            if_match,
            request.get("ifNoneExist"),
        )

    # ---- transaction -------------------------------------------------------------------------
    def _transaction(self, env: str, entries: list[_Entry], base_url: str) -> None:
        with write_transaction(self.service.engine) as conn:
            aliases = self._assign_ids(conn, env, entries)
            for entry in entries:
                if isinstance(entry.resource, dict | list):
                    entry.resource = _rewrite_references(
                        entry.resource, lambda ref: self._resolve_reference(conn, env, ref, aliases)
                    )
            for entry in sorted(entries, key=lambda e: (_ORDER[e.method], e.index)):
                try:
                    self._execute(conn, env, entry, base_url)
                except FHIRError as exc:
                    where = f"Bundle.entry[{entry.index}] ({entry.method} {entry.url})"
                    issues = [
                        type(issue)(
                            issue.severity, issue.code, f"{where}: {issue.diagnostics}", issue.expression
                        )
                        for issue in exc.issues
                    ]
                    failure = type(exc)(f"{where}: {exc.diagnostics}", issues=issues)
                    raise failure from exc

    def _assign_ids(self, conn: Connection, env: str, entries: list[_Entry]) -> dict[str, str]:
        """Give every POSTed resource its id now, so references to its fullUrl can be rewritten."""
        aliases: dict[str, str] = {}
        for entry in entries:
            target: str | None = None
            if entry.method == "POST" and isinstance(entry.resource, dict):
                if entry.if_none_exist:
                    matches = self.service.match(conn, env, entry.rtype or "", entry.if_none_exist)
                    if len(matches) > 1:
                        raise MultipleMatches(f"Bundle.entry[{entry.index}]: ifNoneExist matched several")
                    if matches:
                        entry.rid = matches[0]
                        entry.response = {"matched": True}
                if entry.rid is None:
                    entry.rid = new_id()
                target = f"{entry.rtype}/{entry.rid}"
            elif entry.method == "PUT" and entry.rid is not None:
                target = f"{entry.rtype}/{entry.rid}"
            if entry.full_url and target:
                if entry.full_url in aliases:
                    raise BadRequest(f"Bundle.entry[{entry.index}].fullUrl {entry.full_url} appears twice")
                aliases[entry.full_url] = target
        return aliases

    def _resolve_reference(self, conn: Connection, env: str, reference: str, aliases: dict[str, str]) -> str:
        if reference in aliases:
            return aliases[reference]
        if reference.startswith(("urn:uuid:", "urn:oid:")):
            return reference
        path, sep, query = reference.partition("?")
        if sep and "/" not in path and path in self.resource_types:
            matches = self.service.match(conn, env, path, query)
            if len(matches) != 1:
                problem = "no resource" if not matches else f"{len(matches)} resources"
                raise PreconditionFailed(f"The conditional reference {reference} matched {problem}")
            return f"{path}/{matches[0]}"
        return reference

    # ---- execution ---------------------------------------------------------------------------
    def _execute(self, conn: Connection, env: str, entry: _Entry, base_url: str) -> None:
        service = self.service
        if entry.rtype is None and entry.method != "GET":
            raise BadRequest(f"{entry.method} needs a resource type in the url")
        rtype = entry.rtype or ""
        if entry.method == "POST":
            if entry.response.get("matched"):
                stored = service.repository.read(conn, env, rtype, entry.rid or "")
                assert stored is not None
                entry.response = _response(200, stored, base_url)
                return
            resource = _expect_type(entry.resource, rtype)
            resource["id"] = entry.rid
            service.check(resource)
            outcome = service.create_in(conn, env, resource, None)
            entry.response = _response(201, outcome.stored, base_url, location=True)
        elif entry.method == "PUT":
            resource = _expect_type(entry.resource, rtype)
            if entry.rid is None:
                outcome = service.conditional_update_in(
                    conn, env, rtype, entry.query, resource, entry.if_match
                )
            else:
                service.check_update(rtype, entry.rid, resource)
                outcome = service.update_in(conn, env, resource, entry.if_match)
            entry.response = _written(outcome, base_url)
        elif entry.method == "PATCH":
            if entry.rid is None:
                raise BadRequest("Conditional PATCH is not supported; name the resource id")
            outcome = service.patch_in(conn, env, rtype, entry.rid, entry.resource, entry.if_match)
            entry.response = _written(outcome, base_url)
        elif entry.method == "DELETE":
            if entry.rid is None:
                service.conditional_delete_in(conn, env, rtype, entry.query)
            else:
                service.delete_in(conn, env, rtype, entry.rid)
            entry.response = {"status": "204 No Content"}
        else:
            self._read_entry(conn, env, entry, base_url)

    def _read_entry(self, conn: Connection, env: str, entry: _Entry, base_url: str) -> None:
        parts = [p for p in entry.url.partition("?")[0].strip("/").split("/") if p]
        rtype = entry.rtype or ""
        if len(parts) == 1:
            if self.search is None:
                raise BadRequest("Search is not available")
            entry.resource = self.search(conn, env, rtype, entry.query, base_url)
            entry.response = {"status": "200 OK"}
            return
        stored: StoredVersion | None
        if len(parts) == 2:
            stored = self.service.repository.read(conn, env, rtype, parts[1])
        elif len(parts) == 4 and parts[2] == "_history" and parts[3].isdigit():
            stored = self.service.repository.vread(conn, env, rtype, parts[1], int(parts[3]))
        else:
            raise BadRequest(f"GET {entry.url} is not supported inside a bundle")
        if stored is None:
            raise NotFound(f"{entry.url} is not known")
        if stored.deleted:
            raise Gone(f"{entry.url} has been deleted")
        entry.resource = stored.json()
        entry.response = _response(200, stored, base_url)

    def _batch_entry(self, env: str, entry: _Entry, base_url: str) -> None:
        try:
            if entry.method in ("GET", "HEAD"):
                with read_connection(self.service.engine) as conn:
                    self._execute(conn, env, entry, base_url)
                return
            with write_transaction(self.service.engine) as conn:
                if entry.method == "POST":
                    entry.rid = new_id()
                    if entry.if_none_exist:
                        matches = self.service.match(conn, env, entry.rtype or "", entry.if_none_exist)
                        if len(matches) > 1:
                            raise MultipleMatches("ifNoneExist matched several resources")
                        if matches:
                            entry.rid = matches[0]
                            entry.response = {"matched": True}
                self._execute(conn, env, entry, base_url)
        except FHIRError as exc:
            entry.response = _failed(entry.index, exc).response
            entry.resource = None


def _failed(index: int, exc: FHIRError) -> _Entry:
    entry = _Entry(index, "ERROR", "", None, None, "", None, None, None, None)
    status = f"{exc.status} {type(exc).__name__}"
    entry.response = {"status": status, "outcome": exc.outcome()}
    return entry


def _response(status: int, stored: StoredVersion, base_url: str, *, location: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": _STATUS_TEXT.get(status, str(status)),
        "etag": stored.etag,
        "lastModified": to_instant(stored.last_updated),
    }
    if location:
        body["location"] = f"{stored.type}/{stored.id}/_history/{stored.version}"
    return body


def _written(outcome: Outcome, base_url: str) -> dict[str, Any]:
    return _response(201 if outcome.created else 200, outcome.stored, base_url, location=outcome.created)


def _expect_type(resource: Any, rtype: str) -> dict[str, Any]:
    if not isinstance(resource, dict) or resource.get("resourceType") != rtype:
        raise BadRequest(f"The entry's resource is not a {rtype}")
    return dict(resource)


def _patch_document(resource: Any, where: str) -> Any:
    """A PATCH entry carries its JSON Patch as a Binary (R4 §3.1.0.11.1) or, leniently, inline."""
    if isinstance(resource, dict) and resource.get("resourceType") == "Binary":
        import base64

        import orjson

        try:
            return orjson.loads(base64.b64decode(resource.get("data", ""), validate=True))
        except (ValueError, orjson.JSONDecodeError) as exc:
            raise BadRequest(f"{where}.resource is not a Binary holding a JSON Patch") from exc
    if isinstance(resource, list):
        return resource
    raise BadRequest(
        f"{where}: PATCH needs a JSON Patch (a Binary with contentType application/json-patch+json)"
    )


def _rewrite_references(value: Any, resolve: Callable[[str], str]) -> Any:
    """Rewrite every `Reference.reference` (and attachment/narrative-free fields are left alone)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                out[key] = resolve(item)
            else:
                out[key] = _rewrite_references(item, resolve)
        return out
    if isinstance(value, list):
        return [_rewrite_references(item, resolve) for item in value]
    return value
