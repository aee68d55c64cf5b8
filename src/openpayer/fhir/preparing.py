"""The loader's worker side: what each worker process does with a task (`openpayer.fhir.loading` has the
rules and the main side). A task is an NDJSON part (read here, from the file) or a whole JSON file; the
worker parses it, assigns ids, rewrites Bundle references, validates, stamps version 1, compresses and
extracts the search index, and sends back `PreparedResource`s, with a `Rejection` for every record it
cannot load. Nothing here raises: bad input becomes a rejection.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from openpayer.clock import Clock
from openpayer.fhir.ids import is_valid_id
from openpayer.fhir.profiles import profile_errors
from openpayer.fhir.profiles import warm as warm_profiles
from openpayer.fhir.search.extract import extract_index
from openpayer.fhir.storage import codec
from openpayer.fhir.storage.bulk import PreparedResource, content_digest
from openpayer.fhir.storage.repository import stamp
from openpayer.fhir.storage.rows import index_copy_rows, index_values
from openpayer.fhir.storage.targets import Target
from openpayer.fhir.validation import validate_resource

BOM = b"\xef\xbb\xbf"
# Worker processes stamp `meta.lastUpdated` with real time: a bulk load is not moved by a test's clock.
_WALL_CLOCK = Clock()
CONDITIONAL = re.compile(r"([A-Z][A-Za-z]+)\?(.+)")
_URN_UUID = re.compile(r"urn:uuid:([0-9a-fA-F-]{36})")
BUNDLE_KINDS = ("transaction", "batch", "collection", "searchset", "history")  # the others are resources
_URL_TAIL = re.compile(r"/([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


# ---- results ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Rejection:
    file: str
    line: str  # NDJSON line number, `entry[3]` in a Bundle, `-` for a whole file
    resource_type: str | None
    id: str | None
    reason: str
    issues: tuple[tuple[str, str], ...] = ()  # (FHIRPath expression, diagnostics) of validation errors

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "resourceType": self.resource_type,
            "id": self.id,
            "reason": self.reason,
            "issues": [{"expression": e, "diagnostics": d} for e, d in self.issues],
        }


# ---- tasks (main → worker) and their results (worker → main) -----------------------------------
Span = tuple[str, int, int, int]


@dataclass(slots=True)
class Task:
    file: str
    env: str
    size: int  # input bytes this task accounts for (progress)
    lines: list[tuple[int, bytes]] | None = None  # NDJSON: (line number, text)
    data: bytes | None = None  # a JSON file
    entries: frozenset[int] | None = None  # a retried batch Bundle: only these entries
    resolved: dict[str, str] = field(default_factory=dict)  # conditional reference -> Type/id
    failed: dict[str, str] = field(default_factory=dict)  # conditional reference -> why it cannot resolve
    final: bool = False  # unresolved conditional references are rejections, not deferrals
    profile_check: bool = False  # validate against the profiles the resources claim (meta.profile)
    copy_text: bool = False  # index rows in PostgreSQL COPY text form (the writer does no per-row work)
    span: Span | None = None  # NDJSON the worker reads itself: (path, offset, length, first line number)


@dataclass(slots=True)
class Prepared:
    file: str
    size: int
    units: list[list[PreparedResource]] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    deferred: Task | None = None
    records: int = 0
    timings: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(("parse", "validate", "index"), 0.0)
    )


class _Defer(Exception):
    """A conditional reference matched nothing yet."""


class _Reject(Exception):
    def __init__(self, reason: str, issues: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.issues = issues


# ---- worker side ----------------------------------------------------------------------------------
def prepare(task: Task) -> Prepared:
    """Parse, identify, rewrite, validate, stamp and index the records of one task. Never raises."""
    out = Prepared(task.file, task.size)
    lines = task.lines
    if task.span is not None:
        try:
            lines = _span_lines(task.span)
        except OSError as exc:
            out.records += 1
            out.rejected.append(Rejection(task.file, "-", None, None, f"cannot read the file: {exc}"))
            return out
    if lines is None:
        _guarded(task, out, "-", lambda: _prepare_file(task, out))
        return out
    for number, text in lines:
        _guarded(task, out, str(number), lambda: _prepare_line(task, out, number, text))  # noqa: B023
    return out


def _span_lines(span: Span) -> list[tuple[int, bytes]]:
    """The non-blank lines of a part of an NDJSON file, numbered (the first line without its BOM)."""
    path, offset, length, first = span
    with open(path, "rb") as stream:
        stream.seek(offset)
        data = stream.read(length)
    lines = []
    for number, text in enumerate(data.split(b"\n"), start=first):
        if number == 1:
            text = text.removeprefix(BOM)
        if text and not text.isspace():
            lines.append((number, text))
    return lines


def _guarded(task: Task, out: Prepared, where: str, work: Callable[[], None]) -> None:
    """Input that trips an unexpected error (say, JSON nested too deep) is a rejection, not a crash."""
    try:
        work()
    except Exception as exc:  # reported with the record, never a traceback
        reason = "nested too deeply" if isinstance(exc, RecursionError) else f"{type(exc).__name__}: {exc}"
        out.rejected.append(Rejection(task.file, where, None, None, f"cannot be processed: {reason}"[:500]))


def _parse(out: Prepared, data: bytes) -> tuple[Any, str | None]:
    """The parsed JSON and, if it is not a resource, why."""
    started = time.perf_counter()
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return None, f"invalid JSON: {exc}"
    finally:
        out.timings["parse"] += time.perf_counter() - started
    return value, _not_a_resource(value)


def _prepare_line(task: Task, out: Prepared, number: int, text: bytes) -> None:
    out.records += 1
    resource, reason = _parse(out, text)
    if reason:
        out.rejected.append(Rejection(task.file, str(number), None, None, reason))
        return
    _prepare_single(task, out, str(number), resource)


def _prepare_file(task: Task, out: Prepared) -> None:
    data = task.data or b""
    parsed, reason = _parse(out, data.removeprefix(BOM)) if data.strip() else (None, "empty file")
    if reason or not isinstance(parsed, dict):
        out.records += 1
        out.rejected.append(Rejection(task.file, "-", None, None, reason or "not a resource"))
        return
    if parsed["resourceType"] == "Bundle" and parsed.get("type") in BUNDLE_KINDS:
        _prepare_bundle(task, out, parsed)
        return
    out.records += 1
    _prepare_single(task, out, "-", parsed)


def _prepare_single(task: Task, out: Prepared, where: str, resource: dict[str, Any]) -> None:
    try:
        out.units.append([_prepare_resource(task, out, where, resource, None, None)])
    except _Reject as exc:
        rtype, rid = resource["resourceType"], _id_of(resource)
        out.rejected.append(Rejection(task.file, where, rtype, rid, exc.reason, exc.issues))


@dataclass(slots=True)
class _Entry:
    index: int
    resource: dict[str, Any]
    rtype: str
    id: str | None = None


def _prepare_bundle(task: Task, out: Prepared, bundle: dict[str, Any]) -> None:
    kind = bundle["type"]
    atomic = kind == "transaction"
    raw_entries = bundle.get("entry", [])
    if not isinstance(raw_entries, list):
        out.records += 1
        reason = "Bundle.entry must be an array"
        out.rejected.append(Rejection(task.file, "-", "Bundle", _id_of(bundle), reason))
        return
    rejected: list[Rejection] = []
    entries: list[_Entry] = []
    aliases: dict[str, str] = {}
    claimed: dict[tuple[str, str], int] = {}
    for index, raw in enumerate(raw_entries):
        selected = task.entries is None or index in task.entries  # a retry loads only the entries set aside
        where = f"entry[{index}]"
        try:
            entry = _bundle_entry(index, raw, kind)
        except _Reject as exc:
            if selected:
                out.records += 1
                rtype, rid = _type_and_id(raw)
                rejected.append(Rejection(task.file, where, rtype, rid, exc.reason))
            continue
        if entry is None:
            continue
        entry.id = _assign_id(entry.resource, raw.get("fullUrl"), entry.id)
        full_url = raw.get("fullUrl")
        if isinstance(full_url, str) and full_url:
            aliases[full_url] = f"{entry.rtype}/{entry.id}"
        if not selected:
            continue
        out.records += 1
        key = (entry.rtype, entry.id)
        if key in claimed and atomic:  # (in a batch, the later entry wins)
            reason = f"{entry.rtype}/{entry.id} is already written by entry[{claimed[key]}]"
            rejected.append(Rejection(task.file, where, entry.rtype, entry.id, reason))
            continue
        claimed[key] = index
        entries.append(entry)
    units: list[list[PreparedResource]] = []
    deferred: list[int] = []
    for entry in entries:
        where = f"entry[{entry.index}]"
        try:
            units.append([_prepare_resource(task, out, where, entry.resource, entry.id, aliases)])
        except _Defer:
            deferred.append(entry.index)
        except _Reject as exc:
            rejected.append(Rejection(task.file, where, entry.rtype, entry.id, exc.reason, exc.issues))
    if atomic and not rejected and deferred:
        out.deferred = _retry(task, None)
        out.records -= len(entries)
        return
    if atomic and (rejected or deferred):
        rejected.sort(key=lambda r: int(r.line[6:-1]) if r.line.startswith("entry[") else -1)
        out.rejected.extend(rejected)
        reason = (
            f"transaction not loaded: {len(rejected)} of {len(raw_entries)} entries rejected; "
            "none of its entries were written"
        )
        out.rejected.append(Rejection(task.file, "-", "Bundle", _id_of(bundle), reason))
        return
    out.rejected.extend(rejected)
    if atomic:
        out.units.append([record for unit in units for record in unit])
    else:
        out.units.extend(units)
    if deferred:
        out.deferred = _retry(task, frozenset(deferred))
        out.records -= len(deferred)


def _retry(task: Task, entries: frozenset[int] | None) -> Task:
    return Task(
        task.file,
        task.env,
        0,
        None,
        task.data,
        entries,
        profile_check=task.profile_check,
        copy_text=task.copy_text,
    )


def _bundle_entry(index: int, raw: Any, kind: str) -> _Entry | None:
    """The entry's resource and the id its request implies; None for entries that write nothing."""
    if not isinstance(raw, dict):
        raise _Reject("a Bundle entry must be a JSON object")
    request = raw.get("request")
    rid: str | None = None
    if kind in ("transaction", "batch", "history") and isinstance(request, dict):
        method = str(request.get("method", "")).upper()
        if method in ("GET", "HEAD") or (kind == "history" and method == "DELETE"):
            return None
        if method not in ("POST", "PUT"):
            raise _Reject(
                f"{method or 'an entry without a method'} cannot be loaded; only POST and PUT entries"
            )
        url = str(request.get("url", ""))
        path = url.partition("?")[0].strip("/").split("/")
        if method == "PUT" and "?" not in url and len(path) >= 2:
            rid = path[-1]
    elif kind in ("transaction", "batch"):
        raise _Reject("Bundle.entry.request is required in a transaction or batch Bundle")
    if kind == "searchset" and isinstance(raw.get("search"), dict) and raw["search"].get("mode") == "outcome":
        return None
    resource = raw.get("resource")
    reason = _not_a_resource(resource)
    if reason or not isinstance(resource, dict):
        raise _Reject("the entry has no resource" if resource is None else str(reason))
    if isinstance(request, dict) and kind in ("transaction", "batch"):
        url_type = str(request.get("url", "")).partition("?")[0].strip("/").split("/")[0]
        if url_type != resource["resourceType"]:
            raise _Reject(f"request.url names {url_type!r} but the resource is a {resource['resourceType']}")
        if rid is not None and "id" in resource and resource["id"] != rid:
            raise _Reject(f"the resource id {resource['id']!r} differs from the request url id {rid!r}")
    return _Entry(index, resource, resource["resourceType"], rid)


def _assign_id(resource: dict[str, Any], full_url: Any, from_url: str | None) -> str:
    """The resource's id, else a deterministic one (see the module rules)."""
    if isinstance(resource.get("id"), str):
        return str(resource["id"])
    if from_url:
        return from_url
    if isinstance(full_url, str):
        urn = _URN_UUID.fullmatch(full_url)
        if urn:
            return urn[1]
        tail = _URL_TAIL.search(full_url)
        if tail and tail[1] == resource["resourceType"] and is_valid_id(tail[2]):
            return tail[2]
    return content_digest(resource).hex()


def _prepare_resource(
    task: Task,
    out: Prepared,
    where: str,
    resource: dict[str, Any],
    rid: str | None,
    aliases: dict[str, str] | None,
) -> PreparedResource:
    if rid is None:
        rid = _assign_id(resource, None, None)
    if resource.get("id") != rid:
        resource = {"resourceType": resource["resourceType"], "id": rid, **resource}
        resource["id"] = rid
    if aliases is not None:
        resource = _rewrite(resource, lambda ref: _resolve(task, ref, aliases))
    started = time.perf_counter()
    issues = [issue for issue in validate_resource(resource) if issue.is_error]
    if not issues and task.profile_check:
        issues = profile_errors(resource)
        kind = "does not conform to its profiles"
    else:
        kind = "invalid"
    out.timings["validate"] += time.perf_counter() - started
    if issues:
        details = tuple((", ".join(i.expression) or resource["resourceType"], i.diagnostics) for i in issues)
        first = details[0]
        more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
        raise _Reject(f"{kind}: {first[0]}: {first[1]}{more}", details)
    started = time.perf_counter()
    micros = _WALL_CLOCK.now_micros()
    stamped = stamp(resource, 1, micros)
    _, body = codec.encode(stamped)
    rows = extract_index(stamped)
    copy: dict[str, bytes] | None = None
    targets: list[Target] = []
    index: dict[str, list[tuple[Any, ...]]] = {}
    if task.copy_text:
        copy, targets = index_copy_rows(task.env, stamped["resourceType"], rows)
    else:
        index = index_values(task.env, stamped["resourceType"], rows)
    out.timings["index"] += time.perf_counter() - started
    return PreparedResource(where, resource["resourceType"], rid, micros, body, index, copy, targets)


def _resolve(task: Task, reference: str, aliases: dict[str, str]) -> str:
    target = aliases.get(reference)
    if target is not None:
        return target
    if CONDITIONAL.fullmatch(reference) is None:
        return reference
    target = task.resolved.get(reference)
    if target is not None:
        return target
    if reference in task.failed:
        raise _Reject(f"conditional reference {reference}: {task.failed[reference]}")
    if task.final:
        raise _Reject(f"conditional reference {reference} matched no resource")
    raise _Defer(reference)


def _rewrite(value: Any, resolve: Callable[[str], str]) -> Any:
    if isinstance(value, dict):
        return {
            key: resolve(item) if key == "reference" and isinstance(item, str) else _rewrite(item, resolve)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_rewrite(item, resolve) for item in value]
    return value


def _not_a_resource(value: Any) -> str | None:
    if not isinstance(value, dict):
        kind = {list: "an array", str: "a string", type(None): "null"}.get(type(value), type(value).__name__)
        return f"not a FHIR resource: the JSON is {kind}, not an object"
    if not isinstance(value.get("resourceType"), str) or not value["resourceType"]:
        return "not a FHIR resource: no resourceType"
    if "id" in value and not isinstance(value["id"], str):
        return f"{value['resourceType']}.id must be a JSON string"
    return None


def _id_of(resource: Any) -> str | None:
    value = resource.get("id") if isinstance(resource, dict) else None
    return value if isinstance(value, str) else None


def _type_and_id(raw: Any) -> tuple[str | None, str | None]:
    resource = raw.get("resource") if isinstance(raw, dict) else None
    if not isinstance(resource, dict):
        return None, None
    rtype = resource.get("resourceType")
    return (rtype if isinstance(rtype, str) else None), _id_of(resource)


def warm(profile_check: bool = False, resource_types: Iterable[str] = ()) -> None:
    """Build the validator's and the indexer's tables once (before forking, and in each worker), the code
    they generate for each of `resource_types`, and with `profile_check` compile every shipped profile.

    The loader warms the types its files hold before it forks the workers: each worker then finds that code
    made, where each made its own (0.13 s of CPU a worker for the 23 types `openpayer seed` loads)."""
    probe = {"resourceType": "Patient", "id": "warm", "name": [{"family": "Warm"}]}
    validate_resource(probe)
    extract_index(probe)
    for resource_type in resource_types:
        empty = {"resourceType": resource_type, "id": "warm"}
        validate_resource(empty)
        extract_index(empty)
    if profile_check:
        warm_profiles()
