"""The authorization server's costs, each beside its baseline measured in the same run.

1. Token endpoint: authorization-code exchange and refresh (rotation), requests/s over HTTP.
2. FHIR read-by-id with a patient's bearer token vs. the same reads with enforcement off (unauthenticated),
   two uvicorn servers on the same database. The figure that matters: the authorized/unauthenticated
   throughput ratio; token checking must cost less than 15 % (ratio >= 0.85). Reads are of the patient's
   own resources, each id once per pass: pass 1 is cold (token and compartment checks reach the database),
   later passes are warm (the checks hit the in-process caches, `auth_token_cache_seconds`). Requests
   alternate between the servers, and so does which server goes first, so load elsewhere on the host hits
   both alike; the ratio of median latencies
   is printed beside the throughput ratio, as it is less sensitive to a stall landing on one server.
3. The bearer-token guard alone, in process: the same warm read through `SmartGuard` around an ASGI app
   that answers at once, microseconds per request (what the guard adds to every request, without HTTP,
   the route or the database read). The guard commits each request's audit record before the response
   starts, so this includes that write; the write alone is timed too (`durable audit record`).
4. Searches (`Observation?patient=…&_count=10`) with the token vs. without, alternating as in 2: the
   audit write is the same per request, a smaller share of a search than of a read.

    .venv/bin/python -m benchmarks.bench_auth                       # SQLite in a temporary directory
    .venv/bin/python -m benchmarks.bench_auth --database-url postgresql://postgres@127.0.0.1:5432/openpayer_bench_auth
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from starlette.types import Receive, Scope, Send

from benchmarks.common import prepare_database
from openpayer.api.negotiation import error_response
from openpayer.bootstrap import build_services
from openpayer.config import Settings
from openpayer.oauth.guard import SmartGuard
from openpayer.oauth.testing import TEST_PASSWORD, SmartApp, observation, two_member_world

REDIRECT = "https://bench.example/callback"
SCOPE = "launch/patient openid fhirUser offline_access patient/*.read"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "openpayer.asgi:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return server, f"http://127.0.0.1:{port}"
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not start")


def rate(label: str, n: int, fn: Callable[[int], None]) -> float:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    per_second = n / (time.perf_counter() - start)
    print(f"  {label:<44} {per_second:9.1f} req/s")
    return per_second


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--resources", type=int, default=2000, help="Observations of the benchmark patient")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=100, help="code exchanges and refreshes to time")
    parser.add_argument("--guard-requests", type=int, default=20_000, help="in-process guard calls to time")
    parser.add_argument("--searches", type=int, default=500, help="searches to time per server")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-auth-"))
    url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    prepare_database(url, reuse=False)
    settings = Settings(database_url=url, home=workdir, secret_key="bench")
    services = build_services(settings)
    world = two_member_world(services, "sandbox")
    ids = [
        str(services.fhir.create("sandbox", "Observation", observation(world["a"], "laboratory")).stored.id)
        for _ in range(args.resources)
    ]
    client_id, _ = services.auth.clients.register(
        "sandbox", name="Bench", redirect_uris=[REDIRECT], public=True
    )
    services.engine.dispose()

    base_env = dict(
        os.environ,
        OPENPAYER_DATABASE_URL=url,
        OPENPAYER_HOME=str(workdir),
        OPENPAYER_SECRET_KEY="bench",
        PYTHONPATH="src",
    )
    guarded, guarded_url = start_server(base_env)
    open_server, open_url = start_server({**base_env, "OPENPAYER_AUTH_ENFORCE": "false"})
    try:
        with httpx.Client(base_url=guarded_url) as http, httpx.Client(base_url=open_url) as plain:
            app = SmartApp(http, client_id, REDIRECT, origin=guarded_url)
            print(f"database: {url.split('://')[0]}; {args.resources} resources of the benchmark patient")
            print("token endpoint (one client, sequential):")
            codes = []
            verifiers = []
            for _ in range(args.tokens):
                codes.append(app.code(SCOPE, "member-a", TEST_PASSWORD))
                verifiers.append(app.verifier)
            tokens: list[dict[str, str]] = []

            def exchange(i: int) -> None:
                response = app.exchange(codes[i], verifiers[i])
                assert response.status_code == 200, response.text
                tokens.append(response.json())

            rate("authorization_code exchange (+ id_token)", args.tokens, exchange)
            refresh_token = tokens[-1]["refresh_token"]

            def refresh(_: int) -> None:
                nonlocal refresh_token
                response = app.refresh(refresh_token)
                assert response.status_code == 200, response.text
                refresh_token = response.json()["refresh_token"]

            rate("refresh_token (rotation)", args.tokens, refresh)
            access = app.refresh(refresh_token).json()["access_token"]
            # The reads use a client of their own: the app's client carries the sign-in cookies, and
            # httpx's cookie jar would add its own cost to every authorized read, not the server's.
            reader = httpx.Client(base_url=guarded_url, headers={"Authorization": f"Bearer {access}"})

            print("FHIR read by id (sequential, keep-alive; requests alternate between the two servers):")
            results = []
            medians = []
            for n in range(args.passes):
                spent: dict[str, list[float]] = {"plain": [], "auth": []}
                for i, rid in enumerate(ids):
                    # Which server goes first alternates too: the one answering second would otherwise
                    # share the CPUs with the first one's work after its response, every time.
                    order = ("plain", "auth") if i % 2 == 0 else ("auth", "plain")
                    for which in order:
                        start = time.perf_counter()
                        if which == "plain":
                            _ok(plain.get(f"/sandbox/fhir/Observation/{rid}"))
                        else:
                            _ok(reader.get(f"/sandbox/fhir/Observation/{rid}"))
                        spent[which].append(time.perf_counter() - start)
                plain_rate, auth_rate = len(ids) / sum(spent["plain"]), len(ids) / sum(spent["auth"])
                ratio = auth_rate / plain_rate
                plain_median, auth_median = (
                    statistics.median(spent["plain"]),
                    statistics.median(spent["auth"]),
                )
                results.append(ratio)
                medians.append(plain_median / auth_median)
                print(
                    f"  pass {n + 1}: unauthenticated {plain_rate:8.1f} req/s;"
                    f" bearer token {auth_rate:8.1f} req/s;"
                    f" ratio {ratio:.3f} (authorization costs {100 * (1 - ratio):.1f} %);"
                    f" median {1000 * plain_median:.2f} / {1000 * auth_median:.2f} ms"
                )
            warm = results[1:] or results
            warm_medians = medians[1:] or medians
            print(f"cold ratio {results[0]:.3f}; warm ratio {sum(warm) / len(warm):.3f} (target >= 0.85)")
            print(f"warm ratio of median latencies {sum(warm_medians) / len(warm_medians):.3f}")
            search = f"/sandbox/fhir/Observation?patient={world['a']}&_count=10"
            spent = {"plain": [], "auth": []}
            for i in range(args.searches):
                for which in ("plain", "auth") if i % 2 == 0 else ("auth", "plain"):
                    start = time.perf_counter()
                    _ok((plain if which == "plain" else reader).get(search))
                    spent[which].append(time.perf_counter() - start)
            plain_median, auth_median = statistics.median(spent["plain"]), statistics.median(spent["auth"])
            print(
                f"search ({args.searches} each): median {1000 * plain_median:.2f} ms unauthenticated,"
                f" {1000 * auth_median:.2f} ms with the token; ratio {plain_median / auth_median:.3f}"
            )
            reader.close()
            guard_cost(url, workdir, access, f"/sandbox/fhir/Observation/{ids[0]}", args.guard_requests)
            audit_cost(url, workdir, min(args.guard_requests, 2000))
    finally:
        guarded.terminate()
        open_server.terminate()
        guarded.wait(10)
        open_server.wait(10)


def guard_cost(url: str, workdir: Path, token: str, path: str, n: int) -> None:
    """Microseconds the bearer-token guard adds to a warm read, measured in process around a stub app."""
    services = build_services(Settings(database_url=url, home=workdir, secret_key="bench"))

    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        assert message["type"] != "http.response.start" or message["status"] == 200, message

    guard = SmartGuard(
        answer,
        auth=services.auth,
        registry=services.registry,
        operations=services.api.operations,
        render_error=error_response,
    )
    headers = [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {token}".encode())]

    async def run(app: Any, count: int) -> float:
        start = time.perf_counter()
        for _ in range(count):
            scope = {"type": "http", "method": "GET", "path": path, "query_string": b"", "headers": headers}
            await app(scope, receive, send)
        return (time.perf_counter() - start) / count

    asyncio.run(run(guard, 100))  # warm the token and compartment caches
    guarded = asyncio.run(run(guard, n))
    bare = asyncio.run(run(answer, n))
    print(f"bearer-token guard alone (in process, warm): {1e6 * (guarded - bare):.1f} us per request")
    # Of which the activity mark for the inactivity policy (oauth/activity.py): a dictionary look-up while
    # the client's last call was kept less than a minute ago, which is every request but one a minute.
    activity, client = services.auth.activity, "bench-client"
    activity.called("sandbox", client)
    start = time.perf_counter()
    for _ in range(n):
        activity.called("sandbox", client)
    marked = (time.perf_counter() - start) / n
    print(
        f"  of which the activity mark (coalesced): {1e6 * marked:.2f} us per request"
        f" ({100 * marked / max(guarded - bare, 1e-9):.1f} % of the guard's cost)"
    )
    services.auth.audit.flush()
    services.auth.activity.flush()
    services.engine.dispose()


def audit_cost(url: str, workdir: Path, n: int) -> None:
    """Microseconds one durable audit record costs (its own committed transaction), in process."""
    from openpayer.security.audit import AuditEvent

    services = build_services(Settings(database_url=url, home=workdir, secret_key="bench"))
    start = time.perf_counter()
    for i in range(n):
        services.auth.audit.record(
            "sandbox",
            AuditEvent.FHIR_ACCESS,
            200,
            client_id="bench",
            patient_id="p",
            interaction="read",
            resource_type="Observation",
            resource_id=str(i),
            durable=True,
        )
    spent = (time.perf_counter() - start) / n
    services.engine.dispose()
    print(f"durable audit record alone (committed, in process): {1e6 * spent:.1f} us per request")


def _ok(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text


if __name__ == "__main__":
    main()
