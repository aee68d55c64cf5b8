"""Throughput of the synthetic health-plan generator, beside baselines measured in the same run.

    .venv/bin/python benchmarks/bench_seed.py --members 1000

Rows (resources per second, best of --repeat runs, single process):

* generate          ``generate_plan`` consumed as a stream (what ``write_ndjson`` iterates)
* generate+dumps    the same, each resource serialized with ``orjson.dumps`` (write_ndjson minus file I/O)
* baseline dumps    ``orjson.dumps`` alone over the same resources, already built
* baseline copy     a loop rebuilding resources from a template (``copy.deepcopy`` of one typical
                    resource of each type in the same mix): the cost of the "copy a template" approach

The target is at least 5,000 resources/s for ``generate``; ``--min-rate`` makes the run fail below it.

``--end-to-end N`` also times ``openpayer seed sandbox --members N`` (generate, load, index, test logins)
in a subprocess against a fresh SQLite database in a temporary folder (or ``--database-url``, which must
point at an empty database), once: wall-clock seconds, resources written and resources/s, the CPU seconds
of the command and its loader workers (the machine is shared: CPU time moves less than wall time with the
neighbours), and where the wall time went: the process's start (interpreter, imports, command line) and
the command's phases as its ``--json`` summary reports them (migrations, services, generating: the time
the command waited for the plan's generator, which writes the first slice in a child process during the
start-up, loading (which starts with the validator's and indexer's tables), test logins). "start-up" is
everything but generating and loading.

The subprocess inherits the environment; with ``PYTHONDONTWRITEBYTECODE`` set and no ``__pycache__`` the
imports are compiled each run (slower than an installed package's). To measure warm imports without writing
into the tree, unset it and set ``PYTHONPYCACHEPREFIX`` to a folder (the prefix alone writes nothing while
``PYTHONDONTWRITEBYTECODE`` is set).
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import orjson

from openpayer.seed import generate_plan


def _best(repeat: int, fn: Callable[[], int]) -> tuple[int, float]:
    best = float("inf")
    count = 0
    for _ in range(repeat):
        start = time.perf_counter()
        count = fn()
        best = min(best, time.perf_counter() - start)
    return count, best


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=1000, help="members to generate (default 1000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="runs per row; the best is reported")
    parser.add_argument("--min-rate", type=float, default=0, help="exit 1 if `generate` is slower than this")
    parser.add_argument("--end-to-end", type=int, default=0, metavar="N", help="also time `openpayer seed`")
    parser.add_argument("--database-url", default=None, help="an empty database for --end-to-end")
    args = parser.parse_args()

    def generate() -> int:
        return sum(1 for _ in generate_plan(args.members, args.seed))

    def generate_dumps() -> int:
        dumps = orjson.dumps
        return sum(1 for r in generate_plan(args.members, args.seed) if dumps(r))

    resources = list(generate_plan(args.members, args.seed))
    templates: dict[str, dict[str, object]] = {}
    for r in resources:
        templates.setdefault(r["resourceType"], r)
    mix = [templates[r["resourceType"]] for r in resources]

    def dumps_only() -> int:
        dumps = orjson.dumps
        return sum(1 for r in resources if dumps(r))

    def template_copy() -> int:
        deepcopy = copy.deepcopy
        return sum(1 for t in mix if deepcopy(t))

    rows = [
        ("generate", *_best(args.repeat, generate)),
        ("generate+dumps", *_best(args.repeat, generate_dumps)),
        ("baseline dumps", *_best(args.repeat, dumps_only)),
        ("baseline copy", *_best(args.repeat, template_copy)),
    ]
    rate = {name: count / seconds for name, count, seconds in rows}
    print(f"members={args.members} seed={args.seed} resources={len(resources)} "
          f"({len(resources) / max(args.members, 1):.1f} per member)")  # fmt: skip
    print(f"{'row':<16} {'resources':>10} {'seconds':>9} {'resources/s':>12} {'vs generate':>12}")
    for name, count, seconds in rows:
        ratio = rate[name] / rate["generate"]
        print(f"{name:<16} {count:>10} {seconds:>9.3f} {rate[name]:>12,.0f} {ratio:>11.2f}x")
    if args.end_to_end:
        end_to_end(args.end_to_end, args.seed, args.database_url)
    if args.min_rate and rate["generate"] < args.min_rate:
        print(f"FAIL: generate {rate['generate']:,.0f}/s < {args.min_rate:,.0f}/s", file=sys.stderr)
        return 1
    return 0


def end_to_end(members: int, seed: int, database_url: str | None) -> None:
    """`openpayer seed sandbox --members N` in a subprocess: what an operator waits for."""
    with tempfile.TemporaryDirectory(prefix="bench-seed-") as home:
        env = os.environ | {"OPENPAYER_HOME": home, "OPENPAYER_SECRET_KEY": "bench"}
        if database_url:
            env["OPENPAYER_DATABASE_URL"] = database_url
        else:
            env.pop("OPENPAYER_DATABASE_URL", None)
        command = [sys.executable, "-m", "openpayer.cli.main", "seed", "sandbox", "--members", str(members)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        load_average = os.getloadavg()[0]
        started = time.perf_counter()
        done = subprocess.run(
            [*command, "--seed", str(seed), "--json", "--quiet"], env=env, capture_output=True, check=False
        )
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the command and its workers (waited for)
    if done.returncode != 0:
        print(f"openpayer seed failed ({done.returncode}): {done.stderr.decode()[-2000:]}", file=sys.stderr)
        return
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    report = orjson.loads(done.stdout)
    load = report["load"]
    written = load["created"] + load["updated"] + load["unchanged"]
    print(
        f"openpayer seed --members {members}: {written:,} resources in {seconds:.1f} s wall "
        f"({written / seconds:,.0f} resources/s end to end; loader {load['resourcesPerSecond']:,.0f}/s, "
        f"timings {load['timings']})"
    )
    phases = report.get("phases") or {}  # absent from versions of the command before 2026-12-02
    process = seconds - report["seconds"]  # interpreter, imports, parsing the command line
    plan = load["seconds"]  # generating and loading the plan, slice after slice (every version reports it)
    split = " ".join(f"{name} {value:.2f}" for name, value in phases.items()) or "phases n/a"
    print(
        f"  CPU {cpu:.1f} s (command and workers, {cpu / written * 1000:.3f} ms per resource); load average "
        f"{load_average:.2f} before the run\n"
        f"  wall: start-up (all but generating and loading the plan) {seconds - plan:.2f} s = process start "
        f"{process:.2f} s + in the command {report['seconds'] - plan:.2f} s; generate + load {plan:.2f} s\n"
        f"  the command's phases: {split}"
    )


if __name__ == "__main__":
    sys.exit(main())
