"""`openpayer serve --workers N` against one worker: reads by id over keep-alive connections.

The same database and the same ids for both servers, started one after the other with `openpayer serve`
(auth off, as in `bench_read`); `wrk` is pinned with `taskset` to the last core so that the load generator
does not take the CPU it measures from, and rounds alternate (one worker, N workers, one, N, ...) so that
load elsewhere on the host hits both alike. The figure that matters is the ratio N workers / one worker
(target: >= 1.6 with 2 workers on 2 cores). Each round also prints how `wrk`'s connections were spread over
the worker processes (from `ss`, where it is installed): a worker serves the connections it accepted for as
long as they live, so the spread bounds what the round can show.

`--before` adds a third server as `openpayer serve --workers N` ran before it bound its own socket: plain
`uvicorn --workers N` with the asyncio loop and the h11 parser, whose shared socket has protocol 0, so
accepted connections get no TCP_NODELAY.

    .venv/bin/python -m benchmarks.bench_workers --database-url postgresql://postgres@127.0.0.1:5432/openpayer_perf_read
    .venv/bin/python -m benchmarks.bench_workers --resources 20000          # SQLite in a temporary directory

Needs `wrk` (`apt-get install wrk`) and `taskset` (util-linux).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from benchmarks.common import cpu_ms, free_port, populate_patients, prepare_database

PIDS: dict[str, int] = {}
LUA = """
paths = {%s}
request = function() return wrk.format('GET', paths[math.random(#paths)]) end
done = function(summary, latency, requests)
  io.write(string.format("p50=%%d p95=%%d\\n", latency:percentile(50), latency:percentile(95)))
end
"""


@contextmanager
def server(url: str, home: Path, workers: int, *, before: bool = False) -> Iterator[str]:
    port = free_port()
    env = dict(
        os.environ,
        OPENPAYER_DATABASE_URL=url,
        OPENPAYER_HOME=str(home),
        OPENPAYER_AUTH_ENFORCE="false",
        OPENPAYER_SECRET_KEY="bench",
    )
    if before:
        command = [sys.executable, "-m", "uvicorn", "openpayer.asgi:app", "--workers", str(workers)]
        command += ["--loop", "asyncio", "--http", "h11", "--port", str(port), "--no-access-log"]
    else:
        command = [sys.executable, "-m", "openpayer.cli.main", "serve", "--no-migrate"]
        command += ["--workers", str(workers), "--port", str(port)]
    log = home / f"serve-{port}.log"
    with log.open("w") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    PIDS[base] = process.pid
    try:
        # Every worker started, not only the first: a worker still starting gets no connection of the round.
        deadline = time.monotonic() + 90
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=2)
                if log.read_text().count("Application startup complete") >= workers:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit("the server did not start:\n" + log.read_text())
            time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def machine_busy() -> tuple[int, int]:
    """(busy, total) clock ticks of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def connections_per_worker(port: int) -> str:
    """How the established connections to `port` are spread over the processes that accepted them, as
    `ss` shows it (e.g. `5/3`), or `?` without `ss`. With two workers and 8 connections, `8/0` halves the
    round: one worker serves them all (docs/performance.md, Workers)."""
    if not shutil.which("ss"):
        return "?"
    listing = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"], capture_output=True, text=True
    ).stdout
    owners: dict[str, int] = {}
    for line in listing.splitlines():
        pid = line.split("pid=", 1)[1].split(",", 1)[0] if "pid=" in line else "?"
        owners[pid] = owners.get(pid, 0) + 1
    return "/".join(str(n) for n in sorted(owners.values(), reverse=True)) or "0"


def pinned_wrk(
    base: str, paths: list[str], seconds: int, connections: int, core: int
) -> tuple[float, str, str]:
    """req/s, wrk's p50/p95 latencies (µs) and the connections per worker, with wrk on `core` alone."""
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(LUA % ",".join(f'"{p}"' for p in paths))
    command = ["taskset", "-c", str(core), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s"]
    with subprocess.Popen(
        [*command, "-s", str(script), base], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as wrk:
        time.sleep(min(1.0, seconds / 2))
        spread = connections_per_worker(int(base.rsplit(":", 1)[1]))
        out, err = wrk.communicate()
    if wrk.returncode != 0:
        raise SystemExit(f"wrk failed: {err}")
    script.unlink()
    rate = next(float(line.split()[1]) for line in out.splitlines() if line.startswith("Requests/sec:"))
    latency = next(line for line in out.splitlines() if line.startswith("p50="))
    non_2xx = [line for line in out.splitlines() if "Non-2xx" in line]
    if non_2xx:
        raise SystemExit(f"errors during the run: {non_2xx}")
    return rate, latency, spread


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; the best of each is kept")
    parser.add_argument(
        "--before", action="store_true", help="also plain `uvicorn --workers N` (h11, asyncio)"
    )
    args = parser.parse_args()

    if not shutil.which("wrk") or not shutil.which("taskset"):
        raise SystemExit("needs wrk and taskset")
    home = Path(tempfile.mkdtemp(prefix="openpayer-bench-"))
    url = args.database_url or f"sqlite:///{home / 'bench.db'}"
    prepare_database(url, reuse=args.database_url is not None)
    ids = populate_patients(url, args.resources)
    paths = ["/sandbox/fhir/Patient/" + i for i in random.Random(1).sample(ids, min(len(ids), 2000))]
    core = max(os.sched_getaffinity(0))
    configs = [("1 worker", 1, False), (f"{args.workers} workers", args.workers, False)]
    if args.before:
        configs.append(
            (f"{args.workers} workers, before (uvicorn's socket, h11, asyncio)", args.workers, True)
        )
    results: dict[str, list[tuple[float, str, str]]] = {name: [] for name, _, _ in configs}
    try:
        for _ in range(args.rounds):
            for name, workers, before in configs:
                with server(url, home, workers, before=before) as base:
                    pinned_wrk(base, paths, 2, args.connections, core)  # warm-up: connections, caches
                    server_before, (busy_before, total_before) = cpu_ms(PIDS[base]), machine_busy()
                    rate, latency, spread = pinned_wrk(base, paths, args.seconds, args.connections, core)
                    server_cpu = (cpu_ms(PIDS[base]) - server_before) / (rate * args.seconds)
                    busy, total = machine_busy()
                    share = 100 * (busy - busy_before) / (total - total_before)
                    usage = (
                        f"server CPU {server_cpu:.2f} ms/req, machine {share:.0f} % busy, "
                        f"connections per process {spread}"
                    )
                    results[name].append((rate, latency, usage))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    backend = "postgresql" if url.startswith("postgres") else "sqlite"
    print(f"read by id on {backend}, {len(ids):,} resources, wrk -c{args.connections} pinned to core {core}")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    best = {name: max(runs) for name, runs in results.items()}
    single = best["1 worker"][0]
    for name, (rate, latency, usage) in best.items():
        runs = ", ".join(f"{r:.0f}" for r, _, _ in results[name])
        print(f"  {name}: {rate:.0f} req/s (rounds: {runs}), ratio to one worker {rate / single:.2f}")
        print(f"      best round: {latency} µs, {usage}")


if __name__ == "__main__":
    main()
