"""Directory searches of two source trees, interleaved request by request on one machine.

On a machine whose speed changes by half between minutes, runs of `bench_search` one after the other compare
the minutes more than the code. This script serves the same store from two servers, this checkout's `src` (B)
and `--other` (A, e.g. an export of `main`), both pinned to the same cores, and sends each search to both in
turn (A then B, then B then A for the next), so that both see the same moments of the machine. It prints
p50/p90/p95 and the server's CPU per request for each, and checks that both return the same entries and
totals (resource type, id and search mode; the Bundle's ids, timestamps and links differ by nature).

    mkdir -p /tmp/openpayer-main && git archive main | tar -x -C /tmp/openpayer-main
    .venv/bin/python -m benchmarks.compare_search --other /tmp/openpayer-main/src --members 10000 \\
        --practitioners 50000 --database-url postgresql://postgres@127.0.0.1:5432/openpayer_search_bench

The store must already hold the plan of `--members` and `--practitioners` (built by `bench_search`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from benchmarks.bench_search import draw_queries
from benchmarks.common import Server, cpu_ms, serving
from openpayer.seed.generator import generate_plan, write_ndjson


def entries(response: httpx.Response) -> tuple[list[tuple[str, str, str]], Any]:
    body = response.json()
    found = [(e["resource"]["resourceType"], e["resource"]["id"], e["search"]["mode"]) for e in body["entry"]]
    return found, body.get("total")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--other", type=Path, required=True, help="the `src` folder of the tree to compare")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--members", type=int, default=10000)
    parser.add_argument("--practitioners", type=int, default=50000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="passes over the searches")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="openpayer-compare-"))
    try:
        folder = workdir / "ndjson"  # the plan's files, to draw the searches from (GBs: removed at the end)
        write_ndjson(generate_plan(args.members, seed=7, practitioners=args.practitioners), folder)
        _, roles, names = draw_queries(folder, args.samples)  # the searches bench_search times
        compare(args, workdir, roles, names)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def compare(args: argparse.Namespace, workdir: Path, roles: list[str], names: list[str]) -> None:
    """Both servers up on the same cores, the client on the last one; each search timed on both."""
    cores = sorted(os.sched_getaffinity(0))
    server_cores = cores[:-1] if len(cores) > 1 else None
    if server_cores:
        os.sched_setaffinity(0, cores[-1:])
    trees = {"A": args.other.resolve(), "B": Path("src").resolve()}
    os.environ["OPENPAYER_LOG_LEVEL"] = "warning"  # no line per request from the servers
    with ExitStack() as stack:
        servers = {
            name: stack.enter_context(serving(args.database_url, workdir, cores=server_cores, src=str(src)))
            for name, src in trees.items()
        }
        clients = {
            name: stack.enter_context(httpx.Client(base_url=server.base, timeout=30))
            for name, server in servers.items()
        }
        for client in clients.values():  # warm-up
            for path in roles[:20] + names[:20]:
                client.get(f"/sandbox/directory/{path}")
        print(f"A: {trees['A']}\nB: {trees['B']}")
        for label, paths in (
            ("PractitionerRole?specialty&chain&_include", roles),
            ("Practitioner?name", names),
        ):
            print(label)
            interleaved(servers, clients, paths, args.rounds)


def interleaved(
    servers: dict[str, Server], clients: dict[str, httpx.Client], paths: list[str], rounds: int
) -> None:
    latencies: dict[str, list[float]] = {"A": [], "B": []}
    cpu = {"A": 0.0, "B": 0.0}
    same = 0
    for round_number in range(rounds):
        for i, path in enumerate(paths):
            found = {}
            for name in ("A", "B") if (i + round_number) % 2 == 0 else ("B", "A"):
                before = cpu_ms(servers[name].pid)
                started = time.perf_counter()
                response = clients[name].get(f"/sandbox/directory/{path}")
                latencies[name].append((time.perf_counter() - started) * 1000)
                cpu[name] += cpu_ms(servers[name].pid) - before
                if response.status_code != 200:
                    raise SystemExit(f"{name} {path}: {response.status_code} {response.text[:300]}")
                found[name] = entries(response)
            same += found["A"] == found["B"]
    for name in ("A", "B"):
        ordered = sorted(latencies[name])
        n = len(ordered)
        p50, p90, p95 = statistics.median(ordered), ordered[int(n * 0.9) - 1], ordered[int(n * 0.95) - 1]
        print(
            f"  {name}  p50 {p50:6.2f} ms  p90 {p90:6.2f} ms  p95 {p95:6.2f} ms"
            f"  server CPU {cpu[name] / n:.2f} ms/request  (n={n})"
        )
    print(f"  the same entries and totals: {same} of {len(paths) * rounds}")


if __name__ == "__main__":
    main()
