"""Bulk loading of FHIR data files: Bundles, single resources and NDJSON, plain or gzipped.

Pipeline. The main process reads files and cuts them into tasks (an NDJSON chunk of lines, or a whole JSON
file); worker processes (`concurrent.futures.ProcessPoolExecutor`) parse, assign ids, rewrite references,
validate with the validator HTTP writes use, stamp version 1 and extract the search index; the main process
writes the prepared resources in batches (`storage.bulk.BulkWriter`), in task order.

Rules:
- Files: `.json`, `.ndjson`, `.json.gz`, `.ndjson.gz`; folders are walked recursively in sorted order, and
  Synthea's `hospitalInformation*` / `practitionerInformation*` files go first (other files refer to them).
- Ids: a resource keeps its id. Without one it gets, in order: the id of a PUT entry's url, the uuid of a
  `urn:uuid:` fullUrl, the id at the end of a `.../Type/id` fullUrl, else a hash of its content. So loading
  the same files again finds the same resources (unchanged content writes nothing).
- References in Bundles: a reference equal to an entry's fullUrl (`urn:uuid:...` or absolute) becomes
  `Type/id`. Conditional references (`Practitioner?identifier=...|999`, allowed in transaction and batch
  Bundles) are resolved by search against what is already loaded; when one matches nothing, the entry (the
  whole Bundle for a transaction) is set aside and retried once after every other file has been loaded,
  then rejected if still unresolved. Matching several resources is a rejection.
- A transaction Bundle is all-or-nothing: any rejected entry rejects the whole Bundle. Entries of batch,
  collection, searchset and history Bundles are loaded on their own. GET entries are ignored; DELETE and
  PATCH entries are rejected (a load writes resources). `ifNoneExist` is not evaluated: ids decide.
- document and message Bundles, and any other resource, are loaded as one resource.
- With `profile_check` (`openpayer load --profile-check`), a resource is also validated against the
  implementation guides' profiles its `meta.profile` claims (`openpayer.fhir.profiles`); a resource with
  profile errors is rejected like a structurally invalid one (file, line, each issue's location and message).
"""

from __future__ import annotations

import gc
import gzip
import os
import re
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from openpayer.clock import Clock
from openpayer.db import read_connection
from openpayer.fhir.errors import FHIRError
from openpayer.fhir.ids import is_valid_id
from openpayer.fhir.profiles import profile_errors
from openpayer.fhir.profiles import warm as warm_profiles
from openpayer.fhir.search.extract import extract_index
from openpayer.fhir.services import ConditionalMatcher, parse_query
from openpayer.fhir.storage import codec
from openpayer.fhir.storage.bulk import BulkWriter, PreparedResource, content_digest
from openpayer.fhir.storage.repository import stamp
from openpayer.fhir.storage.rows import index_copy_rows, index_values
from openpayer.fhir.storage.targets import Target
from openpayer.fhir.validation import validate_resource

SUFFIXES = (".ndjson.gz", ".json.gz", ".ndjson", ".json")
FIRST = ("hospitalInformation", "practitionerInformation")  # Synthea's shared resources
# Bulk-data files (`<Type>.ndjson`) of the types other resources point at load first, in this order, then
# the others by name. A reference row written before its target waits for it: stored without the target's
# rid, then looked up and updated when the target arrives (`storage.targets.adopt`); loading the targets
# first writes each such row once, complete (the seed's writer: 20-29 % less CPU, benchmarks/bench_writer.py).
TARGETS_FIRST = (
    "Organization",
    "Endpoint",
    "Location",
    "InsurancePlan",
    "HealthcareService",
    "OrganizationAffiliation",
    "Practitioner",
    "PractitionerRole",
    "Medication",
    "MedicationKnowledge",
    "Patient",
    "RelatedPerson",
    "Coverage",
    "Encounter",
)
_TARGET_RANK = {rtype: rank for rank, rtype in enumerate(TARGETS_FIRST)}
CHUNK_LINES = 200  # NDJSON lines per worker task
CHUNK_BYTES = 2 * 1024 * 1024
_READ_BLOCK = 1024 * 1024  # how much of an NDJSON file the main process scans for line ends at a time
# Resources per write transaction: 1,000 loaded 3-4 % faster than 400 on both databases (fewer commits and
# per-batch statements; docs/performance.md, Loading, "Thirteenth session"), holding the write lock ~0.25 s.
BATCH_SIZE = 1000
_BOM = b"\xef\xbb\xbf"
# Worker processes stamp `meta.lastUpdated` with real time: a bulk load is not moved by a test's clock.
_WALL_CLOCK = Clock()
_REFERENCE = re.compile(rb'"reference"\s*:\s*"((?:[^"\\]|\\.)*)"')
_CONDITIONAL = re.compile(r"([A-Z][A-Za-z]+)\?(.+)")
_URN_UUID = re.compile(r"urn:uuid:([0-9a-fA-F-]{36})")
_BUNDLE_KINDS = ("transaction", "batch", "collection", "searchset", "history")  # the others are resources
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


@dataclass(slots=True)
class LoadReport:
    files: int = 0
    records: int = 0  # resources and lines read (written, unchanged or rejected)
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # seconds: parse, validate, index, write

    @property
    def written(self) -> int:
        return self.created + self.updated

    @property
    def rate(self) -> float:
        return (self.written + self.unchanged) / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        counts = {k: getattr(self, k) for k in ("files", "records", "created", "updated", "unchanged")}
        return counts | {
            "rejected": [r.to_json() for r in self.rejected],
            "skipped": self.skipped,
            "seconds": round(self.seconds, 3),
            "resourcesPerSecond": round(self.rate, 1),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
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
            text = text.removeprefix(_BOM)
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
    parsed, reason = _parse(out, data.removeprefix(_BOM)) if data.strip() else (None, "empty file")
    if reason or not isinstance(parsed, dict):
        out.records += 1
        out.rejected.append(Rejection(task.file, "-", None, None, reason or "not a resource"))
        return
    if parsed["resourceType"] == "Bundle" and parsed.get("type") in _BUNDLE_KINDS:
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
    if _CONDITIONAL.fullmatch(reference) is None:
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


def _warm(profile_check: bool = False) -> None:
    """Build the validator's and the indexer's tables once (before forking, and in each worker), and with
    `profile_check` compile every shipped profile."""
    probe = {"resourceType": "Patient", "id": "warm", "name": [{"family": "Warm"}]}
    validate_resource(probe)
    extract_index(probe)
    if profile_check:
        warm_profiles()


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


# ---- main side ------------------------------------------------------------------------------------
def discover(paths: Sequence[Path]) -> tuple[list[Path], list[str]]:
    """The files to load, in load order, and notes on what was skipped."""
    files: list[Path] = []
    notes: list[str] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            found = [path]
        else:
            notes.append(f"{path}: no such file or folder")
            continue
        for item in found:
            if item.name.lower().endswith(SUFFIXES):
                files.append(item)
            else:
                notes.append(f"{item}: skipped (not .json, .ndjson, .json.gz or .ndjson.gz)")
    files.sort(key=_load_rank)  # stable: the order found otherwise
    return files, notes


def _load_rank(path: Path) -> tuple[int, int]:
    """Synthea's shared resources first, then the bulk-data files of `TARGETS_FIRST`, then the rest."""
    if path.name.startswith(FIRST):
        return (0, 0)
    stem = path.name.split(".", 1)[0]
    rank = _TARGET_RANK.get(stem)
    return (1, rank) if rank is not None else (2, 0)


Progress = Callable[[int, int, int], None]  # (input bytes done, input bytes in all, resources done)


class Loader:
    def __init__(
        self,
        engine: Engine,
        env: str,
        *,
        matcher: ConditionalMatcher | None = None,
        workers: int | None = None,
        batch_size: int = BATCH_SIZE,
        progress: Progress | None = None,
        profile_check: bool = False,
        vacuum: bool = True,
    ) -> None:
        """`vacuum`: end with `VACUUM (ANALYZE)` on PostgreSQL (else `ANALYZE` only; a caller loading in
        several runs, like `openpayer seed`, vacuums after the last)."""
        self.engine = engine
        self.env = env
        self.matcher = matcher
        self.workers = (os.cpu_count() or 1) if workers is None else workers
        self.batch_size = batch_size
        self.progress = progress
        self.profile_check = profile_check
        self.vacuum = vacuum
        self.copy_text = engine.dialect.driver == "psycopg"  # the workers format index rows for COPY
        self.writer = BulkWriter(engine, env)
        self._refs: dict[str, str] = {}
        self._bytes = 0
        self._total = 0

    def run(self, paths: Sequence[Path]) -> LoadReport:
        started = time.perf_counter()
        files, notes = discover(paths)
        report = LoadReport(files=len(files), skipped=notes)
        report.timings = dict.fromkeys(("parse", "validate", "index", "write"), 0.0)
        self._total = sum(_size(path) for path in files)
        _warm(self.profile_check)
        # The validator's and indexer's tables are large and live forever: keep them out of the collector's
        # full passes, here and (inherited through fork, which also keeps their pages shared) in the workers.
        # Collections are rarer too: a load allocates many short-lived objects that reference counting frees.
        gc.freeze()
        thresholds = gc.get_threshold()
        gc.set_threshold(20_000, 50, 100)
        self.engine.dispose()  # no pooled connection crosses the fork (the workers never use the database)
        executor: Executor | None = None
        if self.workers > 0:
            import multiprocessing

            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            executor = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context(method))
            # start them before any thread or connection
            list(executor.map(_warm, [self.profile_check] * self.workers))
        try:
            deferred: list[Task] = []
            self._pump(self._tasks(files, report), executor, report, deferred)
            if deferred:
                for task in deferred:
                    task.final = True
                self._pump(iter(deferred), executor, report, None)
        finally:
            if executor is not None:
                executor.shutdown(cancel_futures=True)
            gc.unfreeze()
            gc.set_threshold(*thresholds)
        if report.written:
            self.writer.analyze(vacuum=self.vacuum)
        report.seconds = time.perf_counter() - started
        return report

    # ---- reading ------------------------------------------------------------------------------
    def _tasks(self, files: list[Path], report: LoadReport) -> Iterator[Task]:
        for path in files:
            shown = str(path)
            try:
                if path.name.lower().endswith((".ndjson", ".ndjson.gz")):
                    empty = True
                    for task in self._ndjson_tasks(path, shown):
                        empty = empty and not task.lines and task.span is None
                        yield task
                    if empty:
                        report.skipped.append(f"{shown}: empty, nothing to load")
                else:
                    yield self._json_task(path, shown)
            except (OSError, EOFError, zlib.error) as exc:
                report.records += 1
                report.rejected.append(Rejection(shown, "-", None, None, f"cannot read the file: {exc}"))

    def _ndjson_tasks(self, path: Path, shown: str) -> Iterator[Task]:
        if not path.name.lower().endswith(".gz"):
            yield from self._ndjson_spans(path, shown)
            return
        with path.open("rb") as raw:
            gz = path.name.lower().endswith(".gz")
            stream: BinaryIO = gzip.GzipFile(fileobj=raw) if gz else raw  # type: ignore[assignment]
            lines: list[tuple[int, bytes]] = []
            size, position = 0, 0
            for number, text in enumerate(stream, start=1):
                if number == 1:
                    text = text.removeprefix(_BOM)
                if text.strip():
                    lines.append((number, text))
                    size += len(text)
                if len(lines) >= CHUNK_LINES or size >= CHUNK_BYTES:
                    done = raw.tell()
                    yield Task(
                        shown,
                        self.env,
                        done - position,
                        lines=lines,
                        profile_check=self.profile_check,
                        copy_text=self.copy_text,
                    )
                    lines, size, position = [], 0, done
            yield Task(
                shown,
                self.env,
                raw.tell() - position,
                lines=lines,
                profile_check=self.profile_check,
                copy_text=self.copy_text,
            )

    def _ndjson_spans(self, path: Path, shown: str) -> Iterator[Task]:
        """Tasks that name their part of the file: the worker reads and splits it, so that the lines are
        neither copied by the main process nor sent through a pipe (docs/performance.md, Loading,
        "Thirteenth session"). The main process only finds where every CHUNK_LINES-th line ends."""
        name = str(path)
        with path.open("rb") as raw:
            start, first = 0, 1  # the task's offset and first line number
            lines, read = 0, 0  # lines ended since `start`; bytes read
            content = False  # whether any line has more than white space
            while block := raw.read(_READ_BLOCK):
                content = content or not block.isspace()
                at = 0
                while (end := block.find(b"\n", at)) >= 0:
                    lines += 1
                    at = end + 1
                    if lines >= CHUNK_LINES or read + at - start >= CHUNK_BYTES:
                        length = read + at - start
                        yield self._span_task(shown, (name, start, length, first))
                        start, first, lines = start + length, first + lines, 0
                read += len(block)
            if read > start or not content:
                yield self._span_task(shown, (name, start, read - start, first), empty=not content)

    def _span_task(self, shown: str, span: Span, empty: bool = False) -> Task:
        return Task(
            shown,
            self.env,
            span[2],
            lines=[] if empty else None,  # `_tasks` notes an empty file by its tasks without lines
            span=None if empty else span,
            profile_check=self.profile_check,
            copy_text=self.copy_text,
        )

    def _json_task(self, path: Path, shown: str) -> Task:
        data = path.read_bytes()
        size = len(data)
        if path.name.lower().endswith(".gz"):
            data = gzip.decompress(data)
        return Task(
            shown, self.env, size, data=data, profile_check=self.profile_check, copy_text=self.copy_text
        )

    # ---- the pipeline -------------------------------------------------------------------------
    def _pump(
        self,
        tasks: Iterator[Task],
        executor: Executor | None,
        report: LoadReport,
        deferred: list[Task] | None,
    ) -> None:
        pending: deque[Future[Prepared] | Prepared] = deque()
        batch: list[tuple[list[PreparedResource], str]] = []
        window = 2 * self.workers + 2
        for task in tasks:
            if task.data is not None:
                self._resolve_conditionals(task)
            pending.append(executor.submit(prepare, task) if executor is not None else prepare(task))
            while len(pending) > (window if executor is not None else 0):
                self._collect(pending.popleft(), report, deferred, batch)
        while pending:
            self._collect(pending.popleft(), report, deferred, batch)
        self._flush(batch, report)

    def _collect(
        self,
        item: Future[Prepared] | Prepared,
        report: LoadReport,
        deferred: list[Task] | None,
        batch: list[tuple[list[PreparedResource], str]],
    ) -> None:
        prepared = item.result() if isinstance(item, Future) else item
        for key, value in prepared.timings.items():
            report.timings[key] += value
        report.records += prepared.records
        report.rejected.extend(prepared.rejected)
        if prepared.deferred is not None and deferred is not None:
            deferred.append(prepared.deferred)
        batch.extend((unit, prepared.file) for unit in prepared.units)
        self._bytes += prepared.size
        if sum(len(unit) for unit, _ in batch) >= self.batch_size:
            self._flush(batch, report)
        elif self.progress is not None:
            self.progress(self._bytes, self._total, report.written + report.unchanged)

    def _flush(self, batch: list[tuple[list[PreparedResource], str]], report: LoadReport) -> None:
        if batch:
            started = time.perf_counter()
            # Resources so far, this batch's included, for the `_bytes` of `_total` read: the load's size.
            seen = report.written + report.unchanged + sum(len(unit) for unit, _ in batch)
            expected = seen * self._total // self._bytes if self._bytes and self._total else None
            outcome = self.writer.write([unit for unit, _ in batch], expected)
            report.timings["write"] += time.perf_counter() - started
            report.created += outcome.created
            report.updated += outcome.updated
            report.unchanged += outcome.unchanged
            for position, reason in outcome.failed:
                unit, file = batch[position]
                for record in unit:
                    report.rejected.append(Rejection(file, record.where, record.rtype, record.id, reason))
            batch.clear()
        if self.progress is not None:
            self.progress(self._bytes, self._total, report.written + report.unchanged)

    def _resolve_conditionals(self, task: Task) -> None:
        """Resolve the conditional references of a JSON file by search, before a worker rewrites them."""
        found: set[str] = set()
        for match in _REFERENCE.finditer(task.data or b""):
            try:
                text = orjson.loads(b'"' + match[1] + b'"')
            except orjson.JSONDecodeError:
                continue
            if isinstance(text, str) and _CONDITIONAL.fullmatch(text):
                found.add(text)
        for reference in sorted(found):
            if reference in self._refs:
                task.resolved[reference] = self._refs[reference]
                continue
            problem = self._search(reference, task)
            if problem:
                task.failed[reference] = problem

    def _search(self, reference: str, task: Task) -> str | None:
        if self.matcher is None:
            return "conditional references need the search engine"
        rtype, _, query = reference.partition("?")
        try:
            with read_connection(self.engine) as conn:
                ids = self.matcher.match_ids(conn, self.env, rtype, parse_query(query))
        except FHIRError as exc:
            return f"cannot be searched: {exc}"
        except SQLAlchemyError as exc:
            return f"search failed: {type(exc).__name__}"
        if len(ids) > 1:
            return f"matched {len(ids)} resources"
        if ids:
            self._refs[reference] = task.resolved[reference] = f"{rtype}/{ids[0]}"
        return None
