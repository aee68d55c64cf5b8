"""Search latency and throughput over HTTP, beside a hand-written SQL baseline measured in the same run.

The store is the synthetic plan (`openpayer.seed`, about 96 resources per member plus its provider network and
formulary), loaded through `openpayer load`. Four searches from the issue are timed:

- member-scoped: `ExplanationOfBenefit?patient=X&_lastUpdated=ge...&_count=50` and
  `Observation?patient=X&category=laboratory&date=ge...`, each beside a raw endpoint on the same server that
  runs one hand-written SQL query for the same rows and returns their stored bytes in a Bundle shell
  (targets: p95 under 25 ms from a single client; throughput at least 0.5 of the raw baseline);
- directory: `PractitionerRole?specialty=...&location.address-postalcode=...`
  `&_include=PractitionerRole:practitioner` and `Practitioner?name=<3 letters>` (target: p95 under 50 ms).

    .venv/bin/python benchmarks/bench_search.py --members 1000 \\
        --database-url postgresql://postgres@127.0.0.1:5432/openpayer_search_bench
    .venv/bin/python benchmarks/bench_search.py --members 300        # a fresh SQLite file

Each latency row is measured twice: by this script's Python client, and by `wrk` with one connection over the
same paths (5 s), which reads each response without parsing it: the difference is the Python client's own
time. `--reuse` keeps an existing database (load skipped when its Patients are there). `--explain` prints the
PostgreSQL plans of the searches' SQL (`EXPLAIN (ANALYZE, BUFFERS)`), as recorded in docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import orjson

from benchmarks.common import (
    Server,
    count_patients,
    cpu_ms,
    openpayer_load,
    postgres_cpu_ms,
    prepare_database,
    serving,
    wrk_latencies,
    wrk_rate,
)
from openpayer.seed.generator import generate_plan, write_ndjson

SINCE = "2000-01-01"

SERVER = """
from sqlalchemy import text
from openpayer.fhir.storage import codec
from starlette.responses import Response
from openpayer.app import create_app
from openpayer.fhir.search.values import date_range
from openpayer.fhir.storage.tables import index_key

app = create_app()
engine = app.state.services.engine

EOB = text(
    "SELECT r.content FROM fhir_resource r WHERE r.rid IN (SELECT p.rid FROM fhir_idx_reference p"
    " WHERE p.hkey = :patient_key AND p.target_id = :pid AND p.target_type = 'Patient')"
    " AND r.env = 'sandbox' AND r.type = 'ExplanationOfBenefit' AND NOT r.deleted"
    " AND r.last_updated >= :since"
    " ORDER BY r.rid LIMIT 50"
)
OBS = text(
    "SELECT r.content FROM fhir_resource r WHERE r.rid IN (SELECT p.rid FROM fhir_idx_reference p"
    " WHERE p.hkey = :patient_key AND p.target_id = :pid AND p.target_type = 'Patient')"
    " AND r.env = 'sandbox' AND r.type = 'Observation' AND NOT r.deleted"
    " AND EXISTS (SELECT 1 FROM fhir_idx_token c WHERE c.rid = r.rid AND c.hkey + 0 = :category_key"
    "             AND c.code = 'laboratory')"
    " AND EXISTS (SELECT 1 FROM fhir_idx_date d WHERE d.rid = r.rid AND d.hkey + 0 = :date_key"
    "             AND d.high >= :since)"
    " ORDER BY r.rid LIMIT 50"
)


def bundle(rows) -> Response:
    body = b'{"resourceType":"Bundle","type":"searchset","entry":[' + b",".join(
        b'{"resource":' + codec.decode(row[0]) + b"}" for row in rows
    ) + b"]}"
    return Response(body, media_type="application/fhir+json")


@app.get("/__bench/raw/eob/{pid}")
def raw_eob(pid: str) -> Response:
    since = date_range("SINCE")[0]
    with engine.connect() as conn:
        rows = conn.execute(EOB, {
            "patient_key": index_key("sandbox", "ExplanationOfBenefit", "patient"),
            "pid": pid,
            "since": since,
        }).all()
    return bundle(rows)


@app.get("/__bench/raw/obs/{pid}")
def raw_obs(pid: str) -> Response:
    since = date_range("SINCE")[0]
    with engine.connect() as conn:
        rows = conn.execute(OBS, {
            "patient_key": index_key("sandbox", "Observation", "patient"), "pid": pid, "since": since,
            "category_key": index_key("sandbox", "Observation", "category"),
            "date_key": index_key("sandbox", "Observation", "date"),
        }).all()
    return bundle(rows)


# The baseline routes first, so that they are not matched after every FHIR route.
for _ in range(2):
    app.router.routes.insert(0, app.router.routes.pop())
""".replace("SINCE", SINCE)


def populate(url: str, members: int, workdir: Path, practitioners: int | None = None) -> Path:
    """Generate the plan as NDJSON (kept for picking query values) and load it unless already there."""
    folder = workdir / "ndjson"
    counts = write_ndjson(generate_plan(members, seed=7, practitioners=practitioners), folder)
    if count_patients(url) < counts.get("Patient", 0):
        started = time.monotonic()
        openpayer_load(url, folder)
        took = time.monotonic() - started
        total = sum(counts.values())
        print(f"loaded {total:,} resources in {took:.0f} s ({total / took:,.0f} resources/s)")
    return folder


def read_ndjson(folder: Path, rtype: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in sorted(folder.glob(f"{rtype}*.ndjson")):
        out.extend(orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip())
    return out


def draw_queries(folder: Path, samples: int) -> tuple[list[str], list[str], list[str]]:
    """The benchmark's members (for the member searches), directory role searches and name searches: the
    same draws on every run of the same plan, whichever script draws them."""
    rng = random.Random(3)
    patients = [p["id"] for p in read_ndjson(folder, "Patient")]
    picks = [rng.choice(patients) for _ in range(samples)]
    roles, names = directory_queries(folder, rng, samples)
    return picks, roles, names


def directory_queries(folder: Path, rng: random.Random, count: int) -> tuple[list[str], list[str]]:
    """(specialty, postal code) pairs that occur in the directory, and 3-letter name prefixes."""
    zips = {
        loc["id"]: loc["address"]["postalCode"]
        for loc in read_ndjson(folder, "Location")
        if loc.get("address", {}).get("postalCode")
    }
    pairs = []
    for role in read_ndjson(folder, "PractitionerRole"):
        codes = [c["code"] for s in role.get("specialty", []) for c in s.get("coding", []) if "code" in c]
        for loc in role.get("location", []):
            zip_code = zips.get(loc.get("reference", "").rpartition("/")[2])
            if zip_code and codes:
                pairs.append((codes[0], zip_code))
    prefixes = Counter(
        name["family"][:3].lower()
        for p in read_ndjson(folder, "Practitioner")
        for name in p.get("name", [])
        if len(name.get("family", "")) >= 3
    )
    common = [p for p, _ in prefixes.most_common(10)]
    roles = [
        f"PractitionerRole?specialty={s}&location.address-postalcode={z}&_include=PractitionerRole:practitioner"
        for s, z in rng.sample(pairs, min(count, len(pairs)))
    ]
    names = [f"Practitioner?name={rng.choice(common)}" for _ in range(count)]
    return roles, names


def latencies(client: httpx.Client, paths: list[str]) -> list[float]:
    out = []
    for path in paths:
        started = time.perf_counter()
        response = client.get(path)
        out.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{path}: {response.status_code} {response.text[:300]}")
    return out


def per_request(
    pid: int, database_cpu: Callable[[], float | None], run: Callable[[], Any]
) -> tuple[Any, str]:
    """`run()`'s result (a list of latencies, or wrk's figures ending with the request count), and the CPU
    per request of the server `pid` and of the local PostgreSQL while it ran."""
    server_before, database_before = cpu_ms(pid), database_cpu()
    result = run()
    count = len(result) if isinstance(result, list) else result[-1]
    server_cpu = (cpu_ms(pid) - server_before) / count
    database_after = database_cpu()
    database = (
        f" / {(database_after - database_before) / count:.2f}"
        if database_before is not None and database_after is not None
        else ""
    )
    return result, f"CPU {server_cpu:.2f}{database} ms"


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    return f"p50 {statistics.median(ordered):6.1f} ms  p95 {p95:6.1f} ms  (n={len(ordered)})"


def client_rate(base: str, paths: list[str], seconds: int, connections: int) -> float:
    """Fallback without wrk: sequential requests from one client, so the ratio stays comparable."""
    del connections
    stop = time.monotonic() + seconds
    done = 0
    with httpx.Client(base_url=base) as client:
        while time.monotonic() < stop:
            client.get(paths[done % len(paths)])
            done += 1
    return done / seconds


def explain(url: str, base: str, paths: list[str]) -> None:
    """Print the PostgreSQL plan of each search's SQL, captured from the engine while it runs."""
    from sqlalchemy import event

    from openpayer.app import create_app
    from openpayer.bootstrap import build_services
    from openpayer.config import Settings

    settings = Settings(database_url=url, auth_enforce=False, secret_key="bench")
    services = build_services(settings)
    captured: list[tuple[str, Any]] = []

    def grab(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")) and "fhir_idx" in statement:
            captured.append((statement, parameters))

    event.listen(services.engine, "before_cursor_execute", grab)
    from fastapi.testclient import TestClient

    with TestClient(create_app(services=services)) as client:
        for path in paths:
            captured.clear()
            client.get(base + path)
            print(f"\n### {path}")
            with services.engine.connect() as conn:
                for statement, parameters in captured:
                    raw = conn.connection.dbapi_connection
                    assert raw is not None
                    with closing(raw.cursor()) as cursor:
                        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement, parameters)
                        print("\n".join(row[0] for row in cursor.fetchall()))
                    print("--")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument(
        "--practitioners", type=int, default=None, help="directory size (default: one per five members)"
    )
    parser.add_argument("--samples", type=int, default=200, help="requests per search for latencies")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--reuse", action="store_true", help="keep an existing PostgreSQL database")
    parser.add_argument("--explain", action="store_true", help="print PostgreSQL plans and stop")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="openpayer-search-bench-"))
    url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    prepare_database(url, reuse=args.reuse)
    folder = populate(url, args.members, workdir, args.practitioners)
    picks, roles, names = draw_queries(folder, args.samples)
    eob = [f"ExplanationOfBenefit?patient={p}&_lastUpdated=ge{SINCE}&_count=50" for p in picks]
    obs = [f"Observation?patient={p}&category=laboratory&date=ge{SINCE}" for p in picks]
    if args.explain:
        explain(url, "/sandbox/fhir/", [eob[0], obs[0]])
        explain(url, "/sandbox/directory/", [roles[0], names[0]])
        shutil.rmtree(workdir, ignore_errors=True)
        return

    # The single client on the last core, the server on the others (PostgreSQL where the system puts it):
    # the two do not take turns on one core, and each latency comes with the CPU spent on it.
    cores = sorted(os.sched_getaffinity(0))
    server_cores = cores[:-1] if len(cores) > 1 else None
    if server_cores:
        os.sched_setaffinity(0, cores[-1:])
    try:
        with serving(url, workdir, SERVER, cores=server_cores) as server:
            measure(server, url, args, eob, obs, roles, names, picks)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def measure(
    server: Server,
    url: str,
    args: argparse.Namespace,
    eob: list[str],
    obs: list[str],
    roles: list[str],
    names: list[str],
    picks: list[str],
) -> None:
    base = server.base
    backend = "postgresql" if url.startswith("postgres") else "sqlite"
    with httpx.Client(base_url=base, timeout=30) as client:
        total = client.get("/sandbox/fhir/ExplanationOfBenefit?_summary=count").json()["total"]
        print(f"search on {backend}: {args.members:,} members, {total:,} ExplanationOfBenefit")
        rows = [
            ("EOB?patient&_lastUpdated (FHIR)", [f"/sandbox/fhir/{q}" for q in eob]),
            ("  same rows, hand-written SQL", [f"/__bench/raw/eob/{p}" for p in picks]),
            ("Observation?patient&category&date (FHIR)", [f"/sandbox/fhir/{q}" for q in obs]),
            ("  same rows, hand-written SQL", [f"/__bench/raw/obs/{p}" for p in picks]),
            ("PractitionerRole?specialty&chain&_include", [f"/sandbox/directory/{q}" for q in roles]),
            ("Practitioner?name=<prefix>", [f"/sandbox/directory/{q}" for q in names]),
        ]
        latencies(client, [p for _, paths in rows for p in paths[:20]])  # warm-up
        for fhir_path, raw_path in ((rows[0][1][0], rows[1][1][0]), (rows[2][1][0], rows[3][1][0])):
            same = {e["resource"]["id"] for e in client.get(fhir_path).json().get("entry", [])}
            if same != {e["resource"]["id"] for e in client.get(raw_path).json()["entry"]}:
                raise SystemExit(f"the baseline does not return the rows of {fhir_path}")
        print(
            "single client, sequential (CPU per request: the server's, then PostgreSQL's if local); each"
            " row as this Python client sees it, then as wrk with one connection does (no parsing):"
        )
        database_cpu = postgres_cpu_ms if backend == "postgresql" else lambda: None
        for label, paths in rows:
            timed, cpu = per_request(server.pid, database_cpu, partial(latencies, client, paths))
            print(f"  {label:45s} {summary(timed)}  {cpu}")
            if shutil.which("wrk"):
                wrk_label = " " * (len(label) - len(label.lstrip()) + 2) + "wrk -c1, the same paths"
                print(f"  {wrk_label:45s} ", end="", flush=True)
                (p50, p95, count), cpu = per_request(
                    server.pid, database_cpu, partial(wrk_latencies, base, paths, min(args.seconds, 5))
                )
                print(f"p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  (n={count})  {cpu}")
    rate = wrk_rate if shutil.which("wrk") else client_rate
    print(f"throughput ({rate.__name__}, {args.connections} connections, {args.seconds} s each):")
    for label, fhir_paths, raw_paths in (
        ("EOB?patient&_lastUpdated", rows[0][1], rows[1][1]),
        ("Observation?patient&category&date", rows[2][1], rows[3][1]),
    ):
        raw = rate(base, raw_paths, args.seconds, args.connections)
        fhir = rate(base, fhir_paths, args.seconds, args.connections)
        print(f"  {label:35s} FHIR {fhir:7.0f} req/s  raw {raw:7.0f} req/s  ratio {fhir / raw:.2f} (>= 0.5)")


if __name__ == "__main__":
    main()
