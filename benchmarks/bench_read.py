"""Read-by-id throughput over HTTP, beside a raw baseline measured in the same run.

The baseline is the same uvicorn server and the same stored bytes, fetched by one SQL query and returned
with no FHIR logic (no negotiation, no headers, no environment checks). The figure that matters is the
ratio: FHIR read throughput / raw throughput (target: at least 0.7).

    .venv/bin/python benchmarks/bench_read.py --resources 100000                      # SQLite
    .venv/bin/python benchmarks/bench_read.py --database-url postgresql://postgres@127.0.0.1:5432/openpayer_bench

Load comes from `wrk` when installed (`apt-get install wrk`), else from a Python client in a second process.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from benchmarks.common import populate_patients, prepare_database, serving, wrk_rate

SERVER = """
import os
from openpayer.fhir.storage import codec
from sqlalchemy import select
from starlette.responses import Response
from openpayer.app import create_app
from openpayer.fhir.storage.tables import fhir_resource

app = create_app()
engine = app.state.services.engine

@app.get("/__bench/raw/{rtype}/{rid}")
def raw(rtype: str, rid: str) -> Response:
    with engine.connect() as conn:
        content = conn.execute(
            select(fhir_resource.c.content).where(
                fhir_resource.c.env == "sandbox", fhir_resource.c.type == rtype, fhir_resource.c.id == rid
            )
        ).scalar_one()
    return Response(codec.decode(content), media_type="application/json")


# The baseline routes first, so that they are not matched after every FHIR route.
for _ in range(1):
    app.router.routes.insert(0, app.router.routes.pop())
"""


def run_wrk(url_prefix: str, ids: list[str], seconds: int, connections: int) -> float:
    parts = urlsplit(url_prefix)
    base, prefix = f"{parts.scheme}://{parts.netloc}", parts.path
    sample = random.Random(1).sample(ids, min(len(ids), 2000))
    return wrk_rate(base, [prefix + i for i in sample], seconds, connections)


def run_python_client(url_prefix: str, ids: list[str], seconds: int, connections: int) -> float:
    code = f"""
import random, time, threading, httpx
ids = {random.Random(1).sample(ids, min(len(ids), 2000))!r}
stop = time.monotonic() + {seconds}
counts = []
def worker():
    n = 0
    with httpx.Client() as c:
        while time.monotonic() < stop:
            r = c.get({url_prefix!r} + random.choice(ids))
            assert r.status_code == 200, r.status_code
            n += 1
    counts.append(n)
ts = [threading.Thread(target=worker) for _ in range({connections})]
[t.start() for t in ts]; [t.join() for t in ts]
print(sum(counts) / {seconds})
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return float(out.strip())


def pgbench_ceiling(url: str, count: int, seconds: int, connections: int) -> float | None:
    """What PostgreSQL itself serves for the read's primary-key SELECT (`pgbench`, a custom script over the
    same rows, simple protocol like the server's unprepared statements); None without pgbench."""
    if not url.startswith("postgres") or not shutil.which("pgbench"):
        return None
    script = Path(tempfile.mkstemp(suffix=".sql")[1])
    script.write_text(
        f"\\set n random(0, {count - 1})\n"
        "SELECT content FROM fhir_resource WHERE env = 'sandbox' AND type = 'Patient'"
        " AND id = 'bench-' || lpad(:n::text, 7, '0');\n"
    )
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    command = ["pgbench", "-n", "-f", str(script), "-c", str(connections), "-j", "1", "-T", str(seconds), dsn]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    script.unlink()
    return next(float(line.split("=")[1].split()[0]) for line in out.splitlines() if line.startswith("tps"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of FHIR and raw")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="openpayer-bench-"))
    url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    prepare_database(url, reuse=args.database_url is not None)
    ids = populate_patients(url, args.resources)
    try:
        with serving(url, workdir, SERVER) as server:
            base = server.base
            load = run_wrk if shutil.which("wrk") else run_python_client
            fhir_prefix = f"{base}/sandbox/fhir/Patient/"
            raw_prefix = f"{base}/__bench/raw/Patient/"
            load(fhir_prefix, ids, 2, args.connections)  # warm-up
            fhir_rates, raw_rates = [], []
            for _ in range(args.rounds):
                raw_rates.append(load(raw_prefix, ids, args.seconds, args.connections))
                fhir_rates.append(load(fhir_prefix, ids, args.seconds, args.connections))
            fhir, raw = max(fhir_rates), max(raw_rates)
            backend = "postgresql" if url.startswith("postgres") else "sqlite"
            print(f"read by id on {backend}, {len(ids):,} resources, client={load.__name__}")
            print(f"  raw baseline (1 SQL fetch, same server): {raw:10.0f} req/s")
            print(f"  FHIR read  GET /sandbox/fhir/Patient/id: {fhir:10.0f} req/s")
            print(f"  ratio: {fhir / raw:.2f} (target >= 0.70)")
            ceiling = pgbench_ceiling(url, len(ids), args.seconds, args.connections)
            if ceiling is not None:
                print(f"  PostgreSQL alone (pgbench, same SELECT): {ceiling:10.0f} req/s")
                print(
                    f"  FHIR read / PostgreSQL alone: {fhir / ceiling:.2f},"
                    f" raw / PostgreSQL alone: {raw / ceiling:.2f}"
                )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
