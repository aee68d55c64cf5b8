"""Benchmark `openpayer load` on claims-heavy NDJSON (CARIN BB ExplanationOfBenefit shapes, ~5–18 KB each).

    .venv/bin/python benchmarks/bench_load.py -n 20000                      # PostgreSQL (fresh database)
    .venv/bin/python benchmarks/bench_load.py -n 20000 --database-url sqlite:///var/bench.db

It generates N ExplanationOfBenefit resources from the CARIN BB 2.0.0 examples (narrative removed; ids,
patients, identifiers and dates varied), writes them as NDJSON, loads them with the real loader (validation
and index extraction on, worker processes, batched writes) into a freshly created database, and prints
resources/s with the share of time spent in parsing, validation, indexing and writing. Next to it, a baseline
from the same run: inserting the same compressed bytes into the same tables (`fhir_history`, `fhir_resource`)
in the same batch size with no FHIR logic at all, as rows/s. A second load of the same file (everything
unchanged) is timed too.

    .venv/bin/python benchmarks/bench_load.py --stages 1000                # per-stage CPU, one process

prints the CPU milliseconds per resource of each step a worker takes (parse, validate, stamp, compress,
extract the index, index rows), best of 5 passes over N resources each (new ones every pass, after a
first N: what the steps remember is what a load would have), in this process only.

    .venv/bin/python benchmarks/bench_load.py --stages 300 --instructions   # the same, counted by callgrind

counts the instructions per resource of each step instead (valgrind's callgrind; 4-5 minutes on 2
cores), beside a baseline from the same run: `orjson.loads` then `orjson.dumps` of the same lines. Unlike
CPU time the count does not move with the machine's speed or load, so commits compare across days.

    .venv/bin/python benchmarks/bench_load.py --stages 1000 --mix seed [--instructions]

times the same steps on what `openpayer seed` loads instead: N resources taken evenly from the plan of
200 members (half of them Observations, a quarter ExplanationOfBenefit, then Encounters, Conditions, ...).
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event, insert, text

from openpayer.config import Settings, normalise_database_url
from openpayer.db import make_engine, write_transaction
from openpayer.fhir import loading
from openpayer.fhir.loading import Loader, LoadReport
from openpayer.fhir.storage import codec
from openpayer.fhir.storage.tables import fhir_history, fhir_resource
from openpayer.migrate import upgrade

EXAMPLES = Path(__file__).resolve().parents[2] / "shared" / "ig" / "carin-bb-2.0.0" / "example"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/openpayer_bench"


def templates() -> list[dict[str, Any]]:
    found = sorted(EXAMPLES.glob("ExplanationOfBenefit-*.json"))
    if not found:
        sys.exit(f"no CARIN BB examples under {EXAMPLES}")
    out = []
    for path in found:
        eob = orjson.loads(path.read_bytes().removeprefix(b"\xef\xbb\xbf"))
        eob.pop("text", None)
        out.append(eob)
    return out


def generate(n: int, path: Path) -> int:
    """Write n EOBs as NDJSON; return the byte size."""
    shapes = templates()
    with path.open("wb") as out:
        for i in range(n):
            eob = copy.deepcopy(shapes[i % len(shapes)])
            eob["id"] = f"bench-eob-{i:08d}"
            eob["patient"] = {"reference": f"Patient/bench-patient-{i % 5000:05d}"}
            for ident in eob.get("identifier", []):
                ident["value"] = f"CLM{i:010d}"
            day = 1 + i % 28
            eob["created"] = f"2023-{1 + i % 12:02d}-{day:02d}T10:00:00-05:00"
            if "billablePeriod" in eob:
                eob["billablePeriod"] = {"start": f"2023-{1 + i % 12:02d}-{day:02d}"}
            out.write(orjson.dumps(eob) + b"\n")
    return path.stat().st_size


def fresh_database(url: str, scratch: Path) -> str:
    url = normalise_database_url(url)
    if url.startswith("sqlite"):
        file = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{file}{suffix}").unlink(missing_ok=True)
        file.parent.mkdir(parents=True, exist_ok=True)
    else:
        head, _, name = url.rpartition("/")
        admin = create_engine(f"{head}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    upgrade(Settings(database_url=url, home=scratch, secret_key="bench"))
    return url


def baseline(url: str, ndjson: Path, batch: int) -> float:
    """Rows/s for inserting the same resources' compressed bytes into the same tables, no FHIR logic."""
    lines = [line for line in ndjson.read_bytes().splitlines() if line.strip()]
    compressed = [codec.encode(orjson.loads(line))[1] for line in lines]  # not timed: only the inserts are
    engine = make_engine(url)
    started = time.perf_counter()
    micros = time.time_ns() // 1000
    for start in range(0, len(lines), batch):
        rows = [
            {"env": "baseline", "type": "ExplanationOfBenefit", "id": f"b{start + k}", "version": 1,
             "last_updated": micros, "deleted": False, "content": content}
            for k, content in enumerate(compressed[start : start + batch])
        ]  # fmt: skip
        with write_transaction(engine) as conn:
            seqs = conn.execute(
                insert(fhir_history).returning(fhir_history.c.seq, sort_by_parameter_order=True),
                [{**row, "method": "PUT"} for row in rows],
            ).scalars()
            conn.execute(
                insert(fhir_resource), [{**row, "seq": seq} for row, seq in zip(rows, seqs, strict=True)]
            )
    elapsed = time.perf_counter() - started
    engine.dispose()
    return len(lines) / elapsed


STAGES = (
    "parse (orjson)",
    "validate_resource",
    "stamp",
    "serialise + compress",
    "extract_index",
    "index rows (COPY text)",
)


def seed_mix(n: int, path: Path) -> int:
    """Write n resources taken evenly from `openpayer seed`'s plan of 200 members; return the byte size."""
    from openpayer.seed import generate_plan

    plan = list(generate_plan(200, 1))
    step = max(1, len(plan) // n)
    path.write_bytes(b"".join(orjson.dumps(resource) + b"\n" for resource in plan[::step][:n]))
    return path.stat().st_size


def _stage_steps(n: int, scratch: Path, mix: str = "eob") -> list[tuple[str, Any, list[Any]]]:
    """Each worker step with its inputs, over the same N generated resources (deterministic)."""
    from openpayer.fhir.search.extract import extract_index
    from openpayer.fhir.storage import bulk
    from openpayer.fhir.storage.repository import stamp
    from openpayer.fhir.validation import validate_resource

    try:
        from openpayer.fhir.storage.rows import index_copy_rows

        def index_rows(r: Any) -> Any:
            return index_copy_rows("s", "E", r)
    except ImportError:  # the code before `storage.rows` (to compare with an export of an older commit)

        def index_rows(r: Any) -> Any:
            return bulk.index_copy_text(bulk.index_values("s", "E", r))  # type: ignore[attr-defined]

    path = scratch / "stages.ndjson"
    (seed_mix if mix == "seed" else generate)(n, path)
    lines = path.read_bytes().splitlines()
    parsed = [orjson.loads(line) for line in lines]
    validate_resource(parsed[0])
    extract_index(parsed[0])
    stamped = [stamp(r, 1, 1_700_000_000_000_000) for r in parsed]
    rows = [extract_index(r) for r in stamped]
    _forget()  # the extraction above met every resource; the steps timed must not find them remembered
    steps: list[tuple[Any, list[Any]]] = [
        (orjson.loads, lines),
        (validate_resource, parsed),
        (lambda r: stamp(r, 1, 1_700_000_000_000_000), parsed),
        (codec.encode, stamped),
        (extract_index, stamped),
        (index_rows, rows),
    ]
    return [(label, step, items) for label, (step, items) in zip(STAGES, steps, strict=True)]


def _forget() -> None:
    """Empty what the index extraction remembers of the values it has met (the validator's memory is
    only warmed by one resource during the set-up). Older commits, compared through an export, may lack
    some of these."""
    from openpayer.fhir.search import extract

    for name in ("date_range", "_date_row", "_literal_row"):
        cached = getattr(extract, name, None)
        if cached is not None:
            cached.cache_clear()
    getattr(extract, "_CONCEPT_ROWS", {}).clear()


def stages(n: int, scratch: Path, mix: str) -> None:
    """CPU ms per resource of each worker step, in this process: the best of 5 passes, each over N
    resources it has not seen (the validator and the extraction remember what they have met: a pass
    over the same resources again would find all of it remembered, which a load does not)."""
    import gc

    steps = _stage_steps(6 * n, scratch, mix)
    gc.freeze()
    total = 0.0
    for label, step, items in steps:
        _cpu(step, items[:n])  # the first resources: what a load has met before these
        best = min(_cpu(step, items[k * n : (k + 1) * n]) for k in range(1, 6))
        total += best
        print(f"{label:26s} {1000 * best / n:6.3f} ms")
    print(f"{'total':26s} {1000 * total / n:6.3f} ms per resource (load average {os.getloadavg()[0]:.2f})")


# The baseline of `--instructions`: what reading and writing the same JSON costs with no FHIR logic.
_BASELINE_STEP = "orjson loads + dumps"


def _stage_run(step_index: int, n: int, passes: int, mix: str) -> None:
    """The child that `instructions` runs under callgrind: set up 3 × N resources, then one step over the
    first `passes` × N of them (each resource once: see `stages`)."""
    with tempfile.TemporaryDirectory(prefix="openpayer-bench-") as tmp:
        steps = _stage_steps(3 * n, Path(tmp), mix)
        lines = steps[0][2]
        steps.append((_BASELINE_STEP, lambda line: orjson.dumps(orjson.loads(line)), lines))
        _, step, items = steps[step_index]
        for item in items[: passes * n]:
            step(item)


def instructions(n: int, mix: str) -> None:
    """Instructions per resource of each worker step, counted by callgrind: one pass's count is the
    difference between a run of three passes and a run of one (set-up cancels out). Unlike CPU time,
    the count is the same on a quiet and a busy machine, so two commits compare on any day."""
    import re
    import shutil
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    if shutil.which("valgrind") is None:
        sys.exit("--instructions needs valgrind")
    labels = [*STAGES, _BASELINE_STEP]

    def count(step_index: int, passes: int) -> int:
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
             str(Path(__file__).resolve()), "--stage-run", str(step_index), str(n), str(passes),
             "--mix", mix],
            capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "0"},
        )  # fmt: skip
        found = re.search(r"Collected : (\d+)", done.stderr)
        if found is None:
            sys.exit(f"callgrind printed no count:\n{done.stderr[-2000:]}")
        return int(found[1])

    print(f"counting with callgrind ({len(labels)} steps, two runs each, {os.cpu_count()} at a time) ...")
    runs = [(i, passes) for i in range(len(labels)) for passes in (1, 3)]
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        counts = dict(zip(runs, pool.map(lambda run: count(*run), runs), strict=True))
    per = {label: (counts[(i, 3)] - counts[(i, 1)]) / 2 / n for i, label in enumerate(labels)}
    base = per.pop(_BASELINE_STEP)
    for label, value in per.items():
        print(f"{label:32s} {value:12,.0f} instructions")
    total = sum(per.values())
    print(f"{'total':32s} {total:12,.0f} instructions per resource")
    print(f"{'baseline (' + _BASELINE_STEP + ')':32s} {base:12,.0f} instructions ({total / base:.1f}x it)")


def _cpu(step: Any, items: list[Any]) -> float:
    started = time.process_time()
    for item in items:
        step(item)
    return time.process_time() - started


def _proc_cpu(pids: set[int]) -> dict[int, float]:
    """CPU seconds used so far by each of these (PostgreSQL backend) processes that still runs, from /proc."""
    found = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


def timed_load(
    engine: Engine, pids: set[int], ndjson: Path, args: argparse.Namespace
) -> tuple[LoadReport, dict[str, float]]:
    """Load once; return the report and CPU seconds used by the main process, the workers and PostgreSQL."""
    main_before, pg_before = time.process_time(), _proc_cpu(pids)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = Loader(engine, "sandbox", workers=args.workers, batch_size=args.batch_size).run([ndjson])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the workers have been joined by now
    pg_after = _proc_cpu(pids)  # the backend of the writer's connection is still in the pool
    cpu = {
        "workers": after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime,
        "main": time.process_time() - main_before,
        "postgresql": sum(used - pg_before.get(pid, 0.0) for pid, used in pg_after.items()),
    }
    return report, cpu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", type=int, default=20000, help="resources to generate (default 20000)")
    parser.add_argument(
        "--database-url", default=DEFAULT_URL, help=f"default {DEFAULT_URL}; sqlite:///... too"
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=getattr(loading, "BATCH_SIZE", 400),
        help="default: as `openpayer load`",
    )
    parser.add_argument("--stages", type=int, metavar="N", help="only time each worker step on N resources")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="with --stages: count each step's instructions under callgrind instead (needs valgrind)",
    )
    parser.add_argument(
        "--mix",
        choices=("eob", "seed"),
        default="eob",
        help="with --stages: ExplanationOfBenefit (default) or the resources `openpayer seed` loads",
    )
    parser.add_argument("--stage-run", type=int, nargs=3, help=argparse.SUPPRESS)  # instructions' child
    args = parser.parse_args()
    if args.stage_run:
        step_index, n, passes = args.stage_run
        _stage_run(step_index, n, passes, args.mix)
        return
    if args.stages and args.instructions:
        instructions(args.stages, args.mix)
        return
    if args.stages:
        with tempfile.TemporaryDirectory(prefix="openpayer-bench-") as tmp:
            stages(args.stages, Path(tmp), args.mix)
        return

    with tempfile.TemporaryDirectory(prefix="openpayer-bench-") as tmp:
        scratch = Path(tmp)
        ndjson = scratch / "eob.ndjson"
        size = generate(args.n, ndjson)
        each = size / args.n / 1e3
        print(f"generated {args.n:,} ExplanationOfBenefit in {size / 1e6:.1f} MB ({each:.1f} KB each)")
        url = fresh_database(args.database_url, scratch)
        print(f"database: {url.split('@')[-1]}  workers: {args.workers}  batch: {args.batch_size}  "
              f"CPUs: {os.cpu_count()}  load average before: {os.getloadavg()[0]:.2f}")  # fmt: skip

        engine = make_engine(url)
        pids: set[int] = set()

        @event.listens_for(engine, "connect")
        def _backend(dbapi_connection: Any, _record: Any) -> None:
            pid = getattr(getattr(dbapi_connection, "info", None), "backend_pid", None)
            if pid:
                pids.add(int(pid))

        first, cpu = timed_load(engine, pids, ndjson, args)
        second, cpu_again = timed_load(engine, pids, ndjson, args)
        engine.dispose()
        if first.rejected:
            print(f"!! {len(first.rejected)} rejected, e.g. {first.rejected[0]}")
        rows_per_s = baseline(url, ndjson, args.batch_size)

    work = sum(first.timings.values()) or 1.0
    shares = "  ".join(f"{k} {v / work:.0%} ({v:.1f} s)" for k, v in first.timings.items())
    print(f"load:     {first.rate:8,.0f} resources/s  ({first.written:,} written in {first.seconds:.1f} s)")
    print(f"          time shares (worker time for parse/validate/index, main for write): {shares}")
    for label, report, used in (("load", first, cpu), ("reload", second, cpu_again)):
        per = {k: 1000 * v / max(report.written + report.unchanged, 1) for k, v in used.items()}
        total = sum(per.values())
        parts = "  ".join(f"{k} {v:.3f}" for k, v in per.items())
        ceiling = 1000 * (os.cpu_count() or 1) / total if total else 0.0
        print(f"          {label} CPU ms/resource: {parts}  = {total:.3f} -> at most {ceiling:,.0f}/s idle")
    again = f"{second.unchanged:,} unchanged in {second.seconds:.1f} s"
    print(f"reload:   {second.rate:8,.0f} resources/s  ({again})")
    print(f"baseline: {rows_per_s:8,.0f} rows/s       (same compressed bytes, same tables, no FHIR logic)")


if __name__ == "__main__":
    main()
