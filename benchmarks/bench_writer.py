"""The bulk loader's writer alone on SQLite, beside plain inserts of the same rows in the same run.

    .venv/bin/python -m benchmarks.bench_writer --members 200 --repeat 3

The synthetic plan of ``--members`` (what ``openpayer seed`` and ``make run`` load) is written as bulk-data
files (``<Type>.ndjson``) and prepared in this process as the loader's workers prepare it (parse, validate,
stamp, compress, index rows: ``loading.prepare``), before anything is timed. Then, alternating, each into a
fresh migrated SQLite file, in transactions of 400 resources as ``openpayer load`` writes them:

* writer, name order   ``BulkWriter.write`` over the files in name order (AllergyIntolerance, Basic, ...):
                       most references are written before their target, so they wait for it
                       (``storage.targets.adopt`` updates them when it arrives)
* writer, load order   the same, in the order ``openpayer load`` takes a folder (``loading.discover``:
                       the types others point at first)
* baseline             the same rows (history, current, index rows with their targets' rids) inserted
                       by ``executemany`` on the driver with keys worked out beforehand: no look-up, no
                       check for unchanged content, nothing waiting; the floor for this schema

Each row prints the best CPU and wall seconds of ``--repeat`` rounds, resources per second and the
ratio to the baseline (the machine is shared: the CPU figure moves less with the neighbours).
"""

from __future__ import annotations

import argparse
import itertools
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from openpayer.config import Settings
from openpayer.db import make_engine
from openpayer.fhir import loading
from openpayer.fhir.storage.bulk import (
    _CURRENT_COLUMNS,
    _HISTORY_COLUMNS,
    BulkWriter,
    PreparedResource,
)

try:
    from openpayer.fhir.storage.rows import COLUMNS
except ImportError:  # the code before `storage.rows` (to compare with an export of an older commit)
    from openpayer.fhir.storage.bulk import _COLUMNS as COLUMNS  # type: ignore[attr-defined,no-redef]
from openpayer.migrate import upgrade
from openpayer.seed import generate_plan, write_ndjson

ENV = "sandbox"
BATCH = getattr(loading, "BATCH_SIZE", 400)  # as the loader writes (400 before the thirteenth session)


def prepare(members: int, seed: int, folder: Path) -> dict[str, list[PreparedResource]]:
    """The plan's resources prepared as the workers prepare them, by file name."""
    write_ndjson(generate_plan(members, seed), folder)
    prepared: dict[str, list[PreparedResource]] = {}
    for path in sorted(folder.glob("*.ndjson")):
        lines = [(number, text) for number, text in enumerate(path.read_bytes().splitlines(), 1) if text]
        task = loading.Task(str(path), ENV, path.stat().st_size, lines=lines)
        out = loading.prepare(task)
        if out.rejected:
            raise SystemExit(f"{path.name}: {out.rejected[0]}")
        prepared[path.name] = [record for unit in out.units for record in unit]
    return prepared


def fresh_database(home: Path) -> str:
    home.mkdir()
    url = f"sqlite:///{home}/bench.db"
    upgrade(Settings(database_url=url, home=home))
    return url


def timed(work: Callable[[], None]) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    work()
    return time.process_time() - cpu, time.perf_counter() - wall


def writer(url: str, records: list[PreparedResource]) -> Callable[[], None]:
    engine = make_engine(url)

    def run() -> None:
        bulk = BulkWriter(engine, ENV)
        for start in range(0, len(records), BATCH):
            outcome = bulk.write([[record] for record in records[start : start + BATCH]])
            if outcome.failed:
                raise SystemExit(f"writer failed: {outcome.failed[0]}")

    return run


def baseline(url: str, records: list[PreparedResource]) -> Callable[[], None]:
    """Plain executemany of the rows the writer stores, keys and target rids worked out beforehand."""
    rids = {(r.rtype, r.id): rid for rid, r in enumerate(records, start=1)}
    batches: list[dict[str, list[tuple[Any, ...]]]] = []
    for start in range(0, len(records), BATCH):
        rows: dict[str, list[tuple[Any, ...]]] = {"fhir_history": [], "fhir_resource": []}
        for rid, r in enumerate(records[start : start + BATCH], start=start + 1):
            rows["fhir_history"].append((rid, ENV, r.rtype, r.id, 1, r.micros, "PUT", False, r.body))
            rows["fhir_resource"].append((rid, ENV, r.rtype, r.id, 1, r.micros, False, rid, r.body))
            for name, values in r.index.items():
                if name == "fhir_idx_reference":
                    found = (rids.get((v[1], v[2])) if v[-1] is not None else None for v in values)
                    rows.setdefault(name, []).extend(
                        (rid, *v[:-1], t) for v, t in zip(values, found, strict=True)
                    )
                else:
                    rows.setdefault(name, []).extend((rid, *v) for v in values)
        batches.append(rows)
    columns = {"fhir_history": _HISTORY_COLUMNS, "fhir_resource": _CURRENT_COLUMNS, **COLUMNS}
    statements = {
        name: f"INSERT INTO {name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        for name, cols in columns.items()
    }

    def run() -> None:
        con = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        con.execute("PRAGMA synchronous=NORMAL")  # as make_engine sets it (the file is in WAL mode)
        for rows in batches:
            con.execute("BEGIN IMMEDIATE")
            for name, values in rows.items():
                con.executemany(statements[name], values)
            con.execute("COMMIT")
        con.close()

    return run


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=200, help="members of the plan (default 200)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the best of each row is reported")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-writer-") as tmp:
        started = time.perf_counter()
        prepared = prepare(args.members, args.seed, Path(tmp) / "plan")
        load_order = [path.name for path in loading.discover([Path(tmp) / "plan"])[0]]
        orders = {
            "writer, name order": [r for name in sorted(prepared) for r in prepared[name]],
            "writer, load order": [r for name in load_order for r in prepared[name]],
        }
        count = len(orders["writer, name order"])
        print(
            f"members={args.members}: {count:,} resources prepared in {time.perf_counter() - started:.1f} s"
        )
        best: dict[str, tuple[float, float]] = {}
        folders = itertools.count()
        for _ in range(args.repeat):
            cases = [*orders.items(), ("baseline", orders["writer, load order"])]
            for label, records in cases:
                url = fresh_database(Path(tmp) / f"db-{next(folders)}")
                run = baseline(url, records) if label == "baseline" else writer(url, records)
                cpu, wall = timed(run)
                low = best.get(label, (cpu, wall))
                best[label] = (min(cpu, low[0]), min(wall, low[1]))
    floor = best["baseline"][0]
    print(f"{'row':<20} {'CPU s':>7} {'wall s':>7} {'resources/s':>12} {'CPU vs baseline':>16}")
    for label, (cpu, wall) in best.items():
        print(f"{label:<20} {cpu:>7.2f} {wall:>7.2f} {count / wall:>12,.0f} {cpu / floor:>15.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
