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

import contextlib
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
from typing import Any

import orjson
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from openpayer.db import read_connection
from openpayer.fhir.errors import FHIRError
from openpayer.fhir.preparing import (
    BOM,
    CONDITIONAL,
    Prepared,
    Rejection,
    Span,
    Task,
    prepare,
    warm,
)
from openpayer.fhir.services import ConditionalMatcher, parse_query
from openpayer.fhir.storage.bulk import BulkWriter, PreparedResource
from openpayer.fhir.storage.checkpoint import BackgroundCheckpoint

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
_REFERENCE = re.compile(rb'"reference"\s*:\s*"((?:[^"\\]|\\.)*)"')
_RESOURCE_TYPE = re.compile(rb'"resourceType"\s*:\s*"([A-Z][A-Za-z]{0,63})"')


# ---- results ------------------------------------------------------------------------------------
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


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


# ---- main side ------------------------------------------------------------------------------------
WORKER_NICENESS = 5


def _yield_to_writer() -> None:
    """A worker runs below the writer's priority (nice +5). With fewer cores than processes the writer,
    this process, is the slowest stage (SQLite's B-trees, or PostgreSQL's COPY beside it), and every slice
    of time a worker takes from it lengthens the load; when the writer waits for the workers, they have
    the cores all the same (`openpayer seed --members 200` on 2 cores: the writer's time 2.3 -> 2.1 s)."""
    with contextlib.suppress(OSError):  # not allowed here: the same priority, as before
        os.nice(WORKER_NICENESS)


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


def first_types(files: Sequence[Path]) -> list[str]:
    """The resource type of each NDJSON file's first line, in order, each once: what `warm` prepares
    before the workers are forked (a bulk-data file holds one type; a wrong guess only costs its warm-up)."""
    found: dict[str, None] = {}
    for path in files:
        name = path.name.lower()
        if not name.endswith((".ndjson", ".ndjson.gz")):
            continue
        try:
            with path.open("rb") if not name.endswith(".gz") else gzip.open(path, "rb") as stream:
                line = stream.readline(_READ_BLOCK)
        except (OSError, EOFError, zlib.error):
            continue  # the load reports it
        if match := _RESOURCE_TYPE.search(line):
            found[match[1].decode()] = None
    return list(found)


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
        self.checkpoint = BackgroundCheckpoint(engine)
        self._refs: dict[str, str] = {}
        self._bytes = 0
        self._total = 0

    def run(self, paths: Sequence[Path]) -> LoadReport:
        started = time.perf_counter()
        files, notes = discover(paths)
        report = LoadReport(files=len(files), skipped=notes)
        report.timings = dict.fromkeys(("parse", "validate", "index", "write"), 0.0)
        self._total = sum(_size(path) for path in files)
        warm(self.profile_check, first_types(files))
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
            executor = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context(method),
                initializer=_yield_to_writer,
            )
            # start them before any thread or connection
            list(executor.map(warm, [self.profile_check] * self.workers))
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
            self.checkpoint.wait()
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
        with path.open("rb") as raw, gzip.GzipFile(fileobj=raw) as stream:  # its lines travel with the task
            lines: list[tuple[int, bytes]] = []
            size, position = 0, 0
            for number, text in enumerate(stream, start=1):
                if number == 1:
                    text = text.removeprefix(BOM)
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
            self.checkpoint.poke()
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
            if isinstance(text, str) and CONDITIONAL.fullmatch(text):
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
