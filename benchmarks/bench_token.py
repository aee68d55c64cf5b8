"""OpenPayer's token endpoint beside oidc-provider (a certified OpenID provider), under one load generator.

oidc-provider (pinned in `benchmarks/package.json`, installed by this script with `npm ci` into
`benchmarks/node_modules`) runs as one Node process configured like OpenPayer (`benchmarks/oidc/server.mjs`):
a `private_key_jwt` client (RS384 assertions, `jti` replay detection) for client credentials, a confidential
`client_secret_basic` client whose refresh tokens rotate on every use, ID tokens signed RS256, and every
token, grant and replay record in Redis (`--redis`, default database 5; Redis as configured on the host,
which here is RDB snapshots without an append-only file: it acknowledges a write before it is on disk, where
OpenPayer's PostgreSQL commit waits for its WAL flush). OpenPayer runs as `openpayer serve --workers 1`, so
both are one process: the ratio is per core.

The load is `wrk` pinned with `taskset` to the last core, the same for both servers, in alternating rounds.
Client credentials: each request carries its own signed assertion (signed here before the round, RS384,
unique `jti`, `aud` the server's token endpoint). Refresh: a pool of refresh tokens (one grant each), each
response's new refresh token going back into the pool, so every request rotates a token. Both servers
answer refresh with an access token, a new refresh token and an ID token (scope `openid offline_access`).

    .venv/bin/python -m benchmarks.bench_token --database-url postgresql://postgres@127.0.0.1:5432/openpayer_perf_token
    .venv/bin/python -m benchmarks.bench_token            # OpenPayer on SQLite in a temporary directory

Each run also prints the CPU its store spent per request, where the store runs on this host (PostgreSQL's
processes for OpenPayer, `redis-server` for oidc-provider), whose CPU comes out of the same cores.

Needs node (>= 20), npm, wrk, taskset and a Redis server; `--profile DIR` also py-spy.
"""

from __future__ import annotations

import argparse
import base64
import functools
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from joserfc.jwk import RSAKey

from benchmarks.common import cpu_ms, free_port, named_cpu_ms, postgres_cpu_ms, prepare_database
from openpayer.app import build_services
from openpayer.config import Settings
from openpayer.db import write_transaction

HERE = Path(__file__).resolve().parent
SCOPES = ["system/Patient.read", "system/Coverage.read"]
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FORM = "application/x-www-form-urlencoded"
PY_SPY = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")  # --profile only

LUA_COMMON = """
statuses = {}
local threads = {}
setup = function(thread) table.insert(threads, thread) end
count = function(status) statuses[status] = (statuses[status] or 0) + 1 end
done = function(summary, latency, requests)
  io.write(string.format("p50=%d p95=%d\\n", latency:percentile(50), latency:percentile(95)))
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      io.write(string.format("status %d %d\\n", status, n))
    end
    io.write(string.format("exhausted %d\\n", thread:get("exhausted")))
    if thread:get("keep") then
      for _, token in ipairs(thread:get("lines")) do io.write("token " .. token .. "\\n") end
    end
  end
end
exhausted = 0
keep = false
lines = {}
for line in io.lines("@values@") do table.insert(lines, line) end
"""

LUA_CLIENT_CREDENTIALS = """
local next_value = 0
local prefix = "@prefix@"
request = function()
  next_value = next_value + 1
  if next_value > #lines then exhausted = exhausted + 1; next_value = #lines end
  return wrk.format("POST", "@path@", {["Content-Type"] = "@form@"}, prefix .. lines[next_value])
end
response = function(status, headers, body) count(status) end
"""

LUA_REFRESH = """
keep = true
request = function()
  local token = table.remove(lines)
  if token == nil then exhausted = exhausted + 1; token = "exhausted" end
  return wrk.format("POST", "@path@", {["Content-Type"] = "@form@", ["Authorization"] = "@basic@"},
    "grant_type=refresh_token&refresh_token=" .. token)
end
response = function(status, headers, body)
  count(status)
  local token = body:match('"refresh_token"%s*:%s*"([^"]+)"')
  if token then table.insert(lines, token) end
end
"""


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def ensure_oidc_provider() -> None:
    """`npm ci` into benchmarks/node_modules when the pinned oidc-provider is not there."""
    pinned = json.loads((HERE / "package.json").read_text())["dependencies"]["oidc-provider"]
    installed = HERE / "node_modules" / "oidc-provider" / "package.json"
    if installed.exists() and json.loads(installed.read_text())["version"] == pinned:
        return
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE, check=True)


class AssertionSigner:
    """RS384 client assertions (RFC 7523), signed with `cryptography` (faster than through a JOSE library)."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = secrets.token_hex(8)
        public = RSAKey.import_key(self.key.public_key()).as_dict(private=False)
        self.jwks = {"keys": [{**public, "kid": self.kid, "alg": "RS384", "use": "sig"}]}

    def sign(self, client_id: str, aud: str, count: int) -> list[str]:
        header = b64(json.dumps({"alg": "RS384", "kid": self.kid, "typ": "JWT"}).encode())
        exp = int(time.time()) + 290
        out = []
        for _ in range(count):
            claims = {"iss": client_id, "sub": client_id, "aud": aud, "exp": exp, "jti": uuid.uuid4().hex}
            signing_input = f"{header}.{b64(json.dumps(claims).encode())}"
            signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA384())
            out.append(f"{signing_input}.{b64(signature)}")
        return out


def wait_until_up(url: str, process: subprocess.Popen[bytes], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit(f"the server behind {url} did not start") from None
            time.sleep(0.3)


class OpenPayer:
    """OpenPayer with a backend client, a confidential app and `pool` refresh tokens, each its own grant."""

    refresh_tokens: list[str]

    def __init__(self, url: str, home: Path, jwks: dict[str, Any], pool: int, workers: int = 1) -> None:
        self.url, self.home, self.workers = url, home, workers
        settings = Settings(database_url=url, home=home, secret_key="bench")
        services = build_services(settings)
        auth = services.auth
        self.backend_id, _ = auth.clients.register(
            "sandbox", name="bench backend", redirect_uris=[], jwks=jwks, scopes=SCOPES
        )
        self.app_id, secret = auth.clients.register(
            "sandbox", name="bench app", redirect_uris=["https://bench.example/callback"]
        )
        self.basic = "Basic " + base64.b64encode(f"{self.app_id}:{secret}".encode()).decode()
        member = auth.members.create("sandbox", f"bench-{secrets.token_hex(4)}", "bench password 123", "p1")
        scope = "openid fhirUser offline_access launch/patient patient/*.read"
        expires = int(time.time()) + 90 * 86400
        self.refresh_tokens = []
        with write_transaction(services.engine) as conn:
            for _ in range(pool):
                grant_id = auth.grants.create(
                    conn,
                    env="sandbox",
                    member_id=member.id,
                    client_id=self.app_id,
                    patient_id="p1",
                    scope=scope,
                    expires_at=expires,
                )
                self.refresh_tokens.append(
                    auth.tokens.issue(
                        conn,
                        env="sandbox",
                        kind="refresh",
                        client_id=self.app_id,
                        scope=scope,
                        expires_at=expires,
                        grant_id=grant_id,
                        member_id=member.id,
                        patient_id="p1",
                    )
                )
        services.engine.dispose()

    @contextmanager
    def running(self) -> Iterator[tuple[str, int]]:
        port = free_port()
        env = dict(
            os.environ,
            OPENPAYER_DATABASE_URL=self.url,
            OPENPAYER_HOME=str(self.home),
            OPENPAYER_SECRET_KEY="bench",
        )
        command = [
            *(sys.executable, "-m", "openpayer.cli.main", "serve", "--no-migrate"),
            *("--workers", str(self.workers)),
        ]
        process = subprocess.Popen(
            [*command, "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_until_up(f"http://127.0.0.1:{port}/healthz", process)
            yield f"http://127.0.0.1:{port}", process.pid
        finally:
            process.terminate()
            process.wait(timeout=30)


class OidcProvider:
    def __init__(self, workdir: Path, redis_url: str, jwks: dict[str, Any], pool: int) -> None:
        self.port = free_port()
        self.secret = secrets.token_urlsafe(32)
        self.basic = "Basic " + base64.b64encode(f"app:{self.secret}".encode()).decode()
        signing = RSAKey.generate_key(2048).as_dict(private=True)
        self.config = workdir / f"oidc-{self.port}.json"
        self.seed_out = workdir / f"oidc-{self.port}-refresh.txt"
        self.config.write_text(
            json.dumps(
                {
                    "port": self.port,
                    "redis": redis_url,
                    "signingKey": {**signing, "kid": "bench-signing", "alg": "RS256", "use": "sig"},
                    "backendJwks": jwks,
                    "refreshClientSecret": self.secret,
                    "seedRefreshTokens": pool,
                    "seedOut": str(self.seed_out),
                    "scopes": SCOPES,
                }
            )
        )
        self.refresh_tokens: list[str] = []

    @contextmanager
    def running(self) -> Iterator[tuple[str, int]]:
        process = subprocess.Popen(
            ["node", str(HERE / "oidc" / "server.mjs"), str(self.config)], cwd=HERE, stdout=subprocess.DEVNULL
        )
        try:
            wait_until_up(f"http://127.0.0.1:{self.port}/.well-known/openid-configuration", process)
            if not self.refresh_tokens:
                self.refresh_tokens = self.seed_out.read_text().split()
            yield f"http://127.0.0.1:{self.port}", process.pid
        finally:
            process.terminate()
            process.wait(timeout=30)


def run_wrk(
    base: str,
    script: str,
    seconds: int,
    connections: int,
    pid: int,
    workdir: Path,
    profile: Path | None = None,
    store_cpu: Callable[[], float | None] = lambda: None,
) -> dict[str, Any]:
    """One wrk run; with `profile`, py-spy samples the server meanwhile into that file (collapsed stacks).
    `store_cpu`: the CPU time so far of the server's store (PostgreSQL, Redis), when it runs on this host."""
    path = workdir / f"bench-{secrets.token_hex(4)}.lua"
    path.write_text(script)
    core = max(os.sched_getaffinity(0))
    command = ["taskset", "-c", str(core), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(path)]
    spy = None
    if profile is not None:
        spy = subprocess.Popen(
            [
                PY_SPY,
                "record",
                "--subprocesses",
                "--gil",
                "--nonblocking",
                "--rate",
                "200",
                *(
                    [
                        "--pid",
                        str(pid),
                        "--duration",
                        str(seconds),
                        "--format",
                        "raw",
                        "--output",
                        str(profile),
                    ]
                ),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    before, store_before = cpu_ms(pid), store_cpu()
    run = subprocess.run([*command, base], capture_output=True, text=True, check=False)
    if spy is not None:
        spy.wait(timeout=60)
    if run.returncode != 0:
        raise SystemExit(f"wrk failed: {run.stdout}{run.stderr}")
    out = run.stdout
    server_cpu = cpu_ms(pid) - before
    store_after = store_cpu()
    rate = next(float(line.split()[1]) for line in out.splitlines() if line.startswith("Requests/sec:"))
    p50, p95 = next(line for line in out.splitlines() if line.startswith("p50=")).split()
    statuses = {
        int(line.split()[1]): int(line.split()[2]) for line in out.splitlines() if line.startswith("status ")
    }
    exhausted = sum(int(line.split()[1]) for line in out.splitlines() if line.startswith("exhausted "))
    done = sum(statuses.values())
    return {
        "rate": rate,
        "p50": int(p50.split("=")[1]) / 1000,
        "p95": int(p95.split("=")[1]) / 1000,
        "errors": done - statuses.get(200, 0),
        "statuses": statuses,
        "exhausted": exhausted,
        "cpu_per_request": server_cpu / max(done, 1),
        "store_cpu_per_request": (
            None
            if store_before is None or store_after is None
            else (store_after - store_before) / max(done, 1)
        ),
        "tokens": [line.split()[1] for line in out.splitlines() if line.startswith("token ")],
    }


def lua(template: str, values: list[str], workdir: Path, **fields: str) -> str:
    file = workdir / f"values-{secrets.token_hex(4)}.txt"
    file.write_text("\n".join(values) + "\n")
    script = LUA_COMMON.replace("@values@", str(file)) + template
    for name, value in {**fields, "form": FORM}.items():
        script = script.replace(f"@{name}@", value)
    return script


def make_script(
    grant: str,
    server: OpenPayer | OidcProvider,
    target: tuple[str, str, str],
    signer: AssertionSigner,
    workdir: Path,
    count: int,
) -> str:
    """The wrk script of one run: `count` fresh assertions, or the server's pool of refresh tokens."""
    token_url, token_path, client_id = target
    if grant == "client_credentials":
        prefix = (
            f"grant_type=client_credentials&scope={'+'.join(SCOPES)}"
            f"&client_assertion_type={ASSERTION_TYPE}&client_assertion="
        )
        assertions = signer.sign(client_id, token_url, count)
        return lua(LUA_CLIENT_CREDENTIALS, assertions, workdir, path=token_path, prefix=prefix)
    return lua(LUA_REFRESH, server.refresh_tokens, workdir, path=token_path, basic=server.basic)


def describe(grant: str, name: str, result: dict[str, Any]) -> str:
    store = result["store_cpu_per_request"]
    return (
        f"  {grant:18s} {name:14s} {result['rate']:7.0f} req/s  p50 {result['p50']:6.1f} ms"
        f"  p95 {result['p95']:6.1f} ms  server CPU {result['cpu_per_request']:.2f} ms/req"
        + (f"  store CPU {store:.2f} ms/req" if store is not None else "")
        + f"  errors {result['errors']}  exhausted {result['exhausted']}"
    )


def best_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest run without errors; a run whose errors (a spent pool answers 400s fast) inflated its
    rate is kept only when no run was clean, and the summary then says the figure is not valid."""
    clean = [r for r in runs if not (r["errors"] or r["exhausted"])]
    return max(clean or runs, key=lambda r: r["rate"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=None, help="OpenPayer's database (default: SQLite)")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/5", help="oidc-provider's storage")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds; the best of each is kept")
    parser.add_argument(
        "--assertions",
        type=int,
        default=12_000,
        help="signed per server and round, at least (more when the warm-up shows the server needs more)",
    )
    parser.add_argument("--grants", nargs="+", default=["client_credentials", "refresh_token"])
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="OpenPayer's workers; with more than one the ratio is no longer per core (oidc-provider stays "
        "one process): for the host's throughput, its database's CPU included",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="a folder: py-spy samples OpenPayer (threads holding the GIL) when measured; collapsed stacks",
    )
    args = parser.parse_args()
    for tool in ("node", "npm", "wrk", "taskset", *((PY_SPY,) if args.profile else ())):
        if not shutil.which(tool):
            raise SystemExit(f"needs {tool}")
    ensure_oidc_provider()
    workdir = Path(tempfile.mkdtemp(prefix="openpayer-bench-token-"))
    url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    prepare_database(url, reuse=False)
    signer = AssertionSigner()
    pool = max(64, 4 * args.connections)
    ours = OpenPayer(url, workdir, signer.jwks, pool, args.workers)
    theirs = OidcProvider(workdir, args.redis, signer.jwks, pool)
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    try:
        for round_number in range(args.rounds):
            for name, server in (("OpenPayer", ours), ("oidc-provider", theirs)):
                with server.running() as (base, pid):
                    token_path = "/sandbox/auth/token" if server is ours else "/token"
                    store_cpu = (
                        (postgres_cpu_ms if url.startswith("postgres") else lambda: None)
                        if server is ours
                        else functools.partial(named_cpu_ms, ("redis-server",))
                    )
                    for grant in args.grants:
                        client_id = ours.backend_id if server is ours else "backend"
                        target = (base + token_path, token_path, client_id)
                        count = args.assertions // 4
                        for seconds in (2, args.seconds):
                            # a 2 s warm-up (connections, caches, the signing key), then the measured run,
                            # with at least 3x the assertions the warm-up's rate would spend (a server still
                            # warming up is slower)
                            script = make_script(grant, server, target, signer, workdir, count)
                            profile = None
                            if args.profile and server is ours and seconds == args.seconds:
                                args.profile.mkdir(parents=True, exist_ok=True)
                                profile = args.profile / f"{grant}-{round_number + 1}.txt"
                            result = run_wrk(
                                base, script, seconds, args.connections, pid, workdir, profile, store_cpu
                            )
                            if grant == "refresh_token":
                                server.refresh_tokens = result["tokens"]  # the rotated pool, for later runs
                            count = max(args.assertions, int(result["rate"] * args.seconds * 3))
                        results.setdefault((grant, name), []).append(result)
                        print(describe(grant, name, result), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    backend = "postgresql" if url.startswith("postgres") else "sqlite"
    workers = f"{args.workers} worker{'s' if args.workers > 1 else ''}"
    print(f"\ntoken endpoint, OpenPayer on {backend} ({workers}) vs oidc-provider (1 Node process, Redis)")
    print(f"wrk -c{args.connections} pinned to one core; load average {os.getloadavg()[0]:.1f} at the end")
    for grant in args.grants:
        best = {name: best_run(results[(grant, name)]) for name in ("OpenPayer", "oidc-provider")}
        for name, result in best.items():
            print(describe(grant, name, result))
        ratio = best["OpenPayer"]["rate"] / best["oidc-provider"]["rate"]
        print(f"  {grant:18s} ratio OpenPayer / oidc-provider: {ratio:.2f}")
        if any(r["errors"] or r["exhausted"] for r in best.values()):
            print(f"  {grant:18s} NOT VALID: errors or too few assertions (raise --assertions)")


if __name__ == "__main__":
    main()
