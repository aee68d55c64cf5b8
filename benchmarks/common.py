"""Shared set-up for benchmarks: a migrated database and a store populated through `openpayer load`."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import orjson
from sqlalchemy import create_engine, func, select, text

from openpayer.config import Settings, normalise_database_url
from openpayer.db import make_engine
from openpayer.fhir.storage.tables import fhir_resource
from openpayer.migrate import upgrade

FAMILIES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Martínez",
    "Nguyễn",
]
GIVEN = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "Zoë", "José"]


def prepare_database(url: str, *, reuse: bool) -> None:
    """Create (or, unless reusing, recreate) a PostgreSQL database, then migrate it."""
    url = normalise_database_url(url)
    if url.startswith("postgresql") and not reuse:
        head, _, name = url.rpartition("/")
        admin = create_engine(f"{head}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    elif url.startswith("postgresql"):
        head, _, name = url.rpartition("/")
        admin = create_engine(f"{head}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    upgrade(Settings(database_url=url, home=Path(tempfile.gettempdir()), secret_key="bench"))


def synthetic_patient(index: int, rng: random.Random) -> dict[str, object]:
    return {
        "resourceType": "Patient",
        "id": f"bench-{index:07d}",
        "meta": {
            "tag": [{"system": "http://openpayer.dev/fhir/CodeSystem/data-origin", "code": "synthetic"}]
        },
        "identifier": [
            {
                "type": {
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MB"}]
                },
                "system": "https://example-plan.org/member-id",
                "value": f"M{index:09d}",
            }
        ],
        "active": True,
        "name": [{"use": "official", "family": rng.choice(FAMILIES), "given": [rng.choice(GIVEN)]}],
        "telecom": [{"system": "phone", "value": f"555-{index % 10000:04d}", "use": "home"}],
        "gender": rng.choice(["male", "female"]),
        "birthDate": f"{rng.randint(1930, 2020)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "address": [
            {"line": [f"{index % 997} Main St"], "city": "Topeka", "state": "KS", "postalCode": "66603"}
        ],
    }


def count_patients(url: str) -> int:
    engine = make_engine(normalise_database_url(url))
    with engine.connect() as conn:
        present = conn.execute(
            select(func.count()).where(fhir_resource.c.env == "sandbox", fhir_resource.c.type == "Patient")
        ).scalar_one()
    engine.dispose()
    return int(present)


def openpayer_load(url: str, path: Path) -> None:
    """Load a file or folder into `sandbox` the way an operator would: `openpayer load`."""
    env = dict(os.environ, OPENPAYER_DATABASE_URL=url)
    command = [sys.executable, "-m", "openpayer.cli.main", "load", "sandbox", str(path), "--quiet"]
    subprocess.run(command, env=env, check=True)


def populate_patients(url: str, count: int) -> list[str]:
    """Ensure `count` synthetic Patients exist in `sandbox`, loading the missing ones via `openpayer load`."""
    ids = [f"bench-{i:07d}" for i in range(count)]
    if count_patients(url) >= count:
        return ids
    rng = random.Random(42)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "Patient.ndjson"
        with path.open("wb") as out:
            for index in range(count):
                out.write(orjson.dumps(synthetic_patient(index, rng)) + b"\n")
        openpayer_load(url, path)
    return ids


def wrk_rate(base: str, paths: list[str], seconds: int, connections: int) -> float:
    """Requests/s from `wrk` over random picks of `paths` (relative to `base`)."""
    out = _wrk(
        base,
        ["-t1", f"-c{connections}", f"-d{seconds}s"],
        "paths = {" + ",".join(f'"{p}"' for p in paths) + "}\n"
        "request = function() return wrk.format('GET', paths[math.random(#paths)]) end\n",
    )
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    raise SystemExit(f"could not read wrk output:\n{out}")


def wrk_latencies(base: str, paths: list[str], seconds: int) -> tuple[float, float, int]:
    """p50 and p95 latency in ms, and the number of requests, of `wrk` with one connection going through
    `paths` in turn: the latency of a client that reads the response and does not parse it (a Python
    client adds its own parsing, ~1 ms for a 75-entry Bundle, to every figure it measures)."""
    out = _wrk(
        base,
        ["-t1", "-c1", f"-d{seconds}s"],
        "paths = {" + ",".join(f'"{p}"' for p in paths) + "}\n"
        "i = 0\n"
        "request = function() i = i % #paths + 1; return wrk.format('GET', paths[i]) end\n"
        "done = function(summary, latency, requests)\n"
        "  io.write(string.format('latency %f %f %d\\n', latency:percentile(50) / 1000,"
        " latency:percentile(95) / 1000, summary.requests))\n"
        "end\n",
    )
    for line in out.splitlines():
        if line.startswith("latency "):
            p50, p95, count = line.split()[1:]
            return float(p50), float(p95), int(count)
    raise SystemExit(f"could not read wrk output:\n{out}")


def _wrk(base: str, options: list[str], script_text: str) -> str:
    """wrk's output for `options` with a Lua script."""
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(script_text)
    try:
        return subprocess.run(
            ["wrk", *options, "-s", str(script), base], capture_output=True, text=True, check=True
        ).stdout
    finally:
        script.unlink()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Server:
    base: str  # its base URL
    pid: int


@contextmanager
def serving(
    url: str,
    workdir: Path,
    app_code: str | None = None,
    cores: Sequence[int] | None = None,
    src: str = "src",
) -> Iterator[Server]:
    """Run uvicorn on the database `url` with bearer tokens off, pinned to `cores` if given.

    `app_code` is a module defining `app` (e.g. the FHIR app plus a raw baseline route on the same server);
    by default the plain `openpayer.asgi:app`. `src` is the package's folder (another tree's, to compare).
    """
    port = free_port()
    env = dict(
        os.environ,
        OPENPAYER_DATABASE_URL=url,
        OPENPAYER_HOME=str(workdir),
        OPENPAYER_AUTH_ENFORCE="false",  # the unauthenticated path; bench_auth.py measures the token check
        PYTHONPATH=src,
    )
    target = "openpayer.asgi:app"
    if app_code is not None:
        (workdir / "bench_server.py").write_text(app_code)
        target = "bench_server:app"
    command = [sys.executable, "-m", "uvicorn", target, "--port", str(port), "--log-level", "warning"]
    pin = ["taskset", "-c", ",".join(map(str, cores))] if cores else []
    server = subprocess.Popen([*pin, *command, "--no-access-log", "--app-dir", str(workdir)], env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.2)
        yield Server(f"http://127.0.0.1:{port}", server.pid)
    finally:
        server.terminate()
        server.wait(timeout=10)


def cpu_ms(pid: int) -> float:
    """CPU time of `pid` and its live children so far, in ms (Linux)."""
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        pids += [int(child) for child in (task / "children").read_text().split()]
    ticks = 0
    for each in pids:
        fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks * 1000 / os.sysconf("SC_CLK_TCK")


def postgres_cpu_ms() -> float | None:
    """CPU time so far of this host's PostgreSQL processes, in ms; None where none is visible (a remote
    server, or not Linux)."""
    return named_cpu_ms(("postgres", "postmaster"))


def named_cpu_ms(names: tuple[str, ...]) -> float | None:
    """CPU time so far of this host's processes with one of these names (`comm`), in ms; None where none
    is visible."""
    total, seen = 0, False
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() not in names:
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        total += int(fields[11]) + int(fields[12])
        seen = True
    return total * 1000 / os.sysconf("SC_CLK_TCK") if seen else None
