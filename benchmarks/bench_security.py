"""What security monitoring costs and how fast it detects, each beside its baseline in the same run.

1. Detection delay: ten wrong passwords for one account from one address over HTTP (the application in
   process, its background writer running as in `openpayer serve`); the time from the tenth response until
   the `brute_force` detection is in the database, read directly (no flush from here). Bounded by the
   batch age (2 s) plus one scan.
2. Per sign-in: a refused member sign-in over HTTP with event recording on vs. off (two applications on one
   database, requests alternating), median latency each; and the recording call alone in process (the keyed
   hash of the account and the append to the batch), in microseconds. The sign-in itself is dominated by
   argon2, which both sides pay.
3. Per FHIR request: a read of the member's own Patient (nothing is recorded) and a read refused by the
   patient restriction (404, one event recorded), each with recording on vs. off, median latency.

    .venv/bin/python -m benchmarks.bench_security                # SQLite in a temporary directory
    .venv/bin/python -m benchmarks.bench_security --database-url postgresql://postgres@127.0.0.1:5432/openpayer_bench_sec
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from benchmarks.common import prepare_database
from openpayer.app import create_app
from openpayer.bootstrap import build_services
from openpayer.config import Settings
from openpayer.oauth.testing import TEST_PASSWORD, SmartApp, hidden, two_member_world
from openpayer.security.events import EventKind, Outcome
from openpayer.security.models import security_detection

REDIRECT = "https://bench.example/callback"
SCOPE = "launch/patient openid fhirUser patient/*.read"


def median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:8.2f} ms"


def alternate(
    on: Callable[[int], None], off: Callable[[int], None], n: int
) -> tuple[list[float], list[float]]:
    """Time `on(i)` and `off(i)` alternately, each `n` times, switching which goes first each round."""
    times_on: list[float] = []
    times_off: list[float] = []
    for i in range(n):
        pair = [(on, times_on), (off, times_off)] if i % 2 == 0 else [(off, times_off), (on, times_on)]
        for call, sink in pair:
            started = time.perf_counter()
            call(i)
            sink.append(time.perf_counter() - started)
    return times_on, times_off


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--signins", type=int, default=20)
    parser.add_argument("--reads", type=int, default=300)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-security-"))
    url = args.database_url or f"sqlite:///{home / 'bench.db'}"
    prepare_database(url, reuse=False)
    base = Settings(
        home=home, database_url=url, secret_key="bench", auth_enforce=True, trusted_proxies=["127.0.0.1/32"]
    )
    on = build_services(base)
    off = build_services(base.model_copy(update={"detect_record_events": False}))
    world = two_member_world(on, "sandbox")
    client_id, _ = on.auth.clients.register("sandbox", name="Bench", redirect_uris=[REDIRECT], public=True)
    with (
        TestClient(create_app(base, services=on), client=("127.0.0.1", 1)) as http_on,
        TestClient(create_app(off.settings, services=off), client=("127.0.0.1", 1)) as http_off,
    ):
        # ---- 1. detection delay ------------------------------------------------------------------------
        form = hidden(SmartApp(http_on, client_id, REDIRECT).authorize(SCOPE).text)
        for _ in range(on.settings.detect_brute_force_failures):
            data = {**form, "username": "member-a", "password": "wrong password"}
            response = http_on.post(
                "/sandbox/auth/authorize", data=data, headers={"X-Forwarded-For": "192.0.2.1"}
            )
            assert response.status_code == 401
        crossed = time.perf_counter()
        delay = None
        while time.perf_counter() - crossed < 30:
            with on.engine.connect() as conn:
                found = conn.execute(
                    select(security_detection.c.id).where(security_detection.c.kind == "brute_force")
                ).first()
            if found is not None:
                delay = time.perf_counter() - crossed
                break
            http_on.get("/healthz")  # requests let the writer run, as traffic does
            time.sleep(0.02)
        print("Detection delay (brute force, 10th failure -> detection stored)")
        print(f"  {delay * 1000:8.0f} ms" if delay is not None else "  not detected within 30 s")
        scan_times = []
        for _ in range(20):
            started = time.perf_counter()
            on.security.scan()
            scan_times.append(time.perf_counter() - started)
        print(f"  one scan of every detector: {median_ms(scan_times)} (median of 20)")

        # ---- 2. per sign-in ----------------------------------------------------------------------------
        def signin(http: TestClient) -> Callable[[int], None]:
            page_form = hidden(SmartApp(http, client_id, REDIRECT).authorize(SCOPE).text)

            def attempt(i: int) -> None:
                data = {**page_form, "username": f"nobody{i}", "password": "wrong password"}
                address = f"198.51.100.{i % 250}"
                response = http.post(
                    "/sandbox/auth/authorize", data=data, headers={"X-Forwarded-For": address}
                )
                assert response.status_code == 401

            return attempt

        times_on, times_off = alternate(signin(http_on), signin(http_off), args.signins)
        print(f"\nRefused sign-in over HTTP, {args.signins} each (argon2 included on both sides)")
        print(f"  recording on : {median_ms(times_on)}")
        print(f"  recording off: {median_ms(times_off)}")
        events = on.security.events
        started = time.perf_counter()
        for i in range(10_000):
            events.record(  # successes: the same cost, and no detector counts them as an attack
                EventKind.SIGNIN_MEMBER,
                Outcome.SUCCESS,
                env="sandbox",
                address="198.51.100.1",
                client_id=client_id,
                account=events.account("signin:member:sandbox", f"user{i}"),
                status=401,
            )
        per_call = (time.perf_counter() - started) / 10_000
        print(f"  the recording itself (hash + append), in process: {per_call * 1e6:6.1f} us per sign-in")
        events.flush()

        # ---- 3. per FHIR request -----------------------------------------------------------------------
        token = SmartApp(http_on, client_id, REDIRECT).launch(SCOPE, "member-a", TEST_PASSWORD)[
            "access_token"
        ]
        bearer = {"Authorization": f"Bearer {token}"}

        def read(http: TestClient, path: str, status: int) -> Callable[[int], None]:
            def call(i: int) -> None:
                assert http.get(path, headers=bearer).status_code == status

            return call

        own, other = f"/sandbox/fhir/Patient/{world['a']}", f"/sandbox/fhir/Patient/{world['b']}"
        for label, path, status in (
            ("own Patient (200, nothing recorded)", own, 200),
            ("another member's Patient (404, one event)", other, 404),
        ):
            read(http_on, path, status)(0)  # warm the caches
            read(http_off, path, status)(0)
            times_on, times_off = alternate(
                read(http_on, path, status), read(http_off, path, status), args.reads
            )
            print(f"\nFHIR read of the {label}, {args.reads} each")
            print(f"  recording on : {median_ms(times_on)}")
            print(f"  recording off: {median_ms(times_off)}")
    on.close()
    off.close()


if __name__ == "__main__":
    main()
