"""Every curl example of README.md and docs/*.md runs, as written, against a seeded sandbox.

Each document's shell blocks are read in order, as a reader following them would type them: the variable
assignments and `curl` commands are run by bash (so quoting, `$VAR`, `\\$everything` and `$(openssl ...)`
behave as in a terminal) with `curl` defined as a function that records its arguments; nothing else in
the blocks runs. The recorded requests are then sent to the application (`OPENPAYER_SEED_MEMBERS`-style
sandbox: `openpayer seed sandbox --members 10`) at the address the examples use, `http://127.0.0.1:8000`.

The guides' placeholders are shell variables the test provides, as a developer would: `$CLIENT_ID` (an app
registered for the test), `$CODE` (from an authorization that uses the document's own `$CHALLENGE` and the
authorize URL it shows, signed in as sandbox-member-1), `$ACCESS_TOKEN`/`$TOKEN` and `$REFRESH_TOKEN` (the
latest ones a token call returned, or a fresh launch), `$SIGNED_JWT` (a backend client's assertion) and
`$SYSTEM_TOKEN` (its token). Every call must answer 2xx with a sensible body: a search finds something, a
token call returns a token. And every resource the examples return exists in the default 200-member
sandbox of `make run` too (the generator is deterministic; small plans are a prefix of large ones).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import shlex
import subprocess
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import create_engine, text
from tests.conftest import BACKEND, _worker_database_url
from typer.testing import CliRunner

from openpayer.app import create_app
from openpayer.bootstrap import Services, build_services
from openpayer.cli.main import app as cli_app
from openpayer.config import Settings
from openpayer.members.sandbox import SANDBOX_MEMBERS
from openpayer.oauth.testing import SmartApp, query_of
from openpayer.seed import generate_plan

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = ["README.md", *sorted(f"docs/{p.name}" for p in (REPO / "docs").glob("*.md"))]
ORIGIN = "http://127.0.0.1:8000"
ENV = "sandbox"
MEMBERS = 10  # small plan for the test; the resources the examples return are checked against 200
DEFAULT_MEMBERS = 200  # what `make run` seeds
APP_REDIRECT = "https://app.example.com/callback"  # the redirect URI the guides' app registers
DYNAMIC = ("CODE", "ACCESS_TOKEN", "REFRESH_TOKEN", "SIGNED_JWT", "SYSTEM_TOKEN")
FENCE = re.compile(r"^( *)```(\w*)[^\n]*\n(.*?)^\1```", re.MULTILINE | re.DOTALL)
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
RECORDER = r"""
curl() {
  local n; n=$(( $(cat "$REC/count") + 1 )); echo "$n" > "$REC/count"
  printf '%s\0' "$@" > "$REC/$n.args"
}
"""


@dataclass
class Example:
    argv: list[str]  # curl's arguments, after the shell's expansion

    @property
    def shown(self) -> str:
        return shlex.join(["curl", *self.argv])


@dataclass
class Document:
    name: str
    examples: list[Example]
    variables: dict[str, str]
    authorize_url: str | None


@dataclass
class Run:
    """What the examples of one document produced, and the values the later ones use."""

    backend_key: RSAKey
    values: dict[str, str] = field(default_factory=dict)
    returned: set[tuple[str, str]] = field(default_factory=set)


# ---- reading the documents ---------------------------------------------------------------------------
def shell_lines(markdown: str) -> list[str]:
    """The assignments and curl commands of the document's shell blocks: continuation lines joined, and a
    quoted argument over several lines kept whole."""
    commands: list[str] = []
    for _, lang, body in FENCE.findall(markdown):
        if lang not in ("sh", "bash", "shell"):
            continue
        pending = ""
        for line in textwrap.dedent(body).replace("\\\n", " ").splitlines():
            starts = line.strip().startswith("curl ") or ASSIGNMENT.match(line.strip())
            if not pending and not starts:
                continue
            pending = f"{pending}\n{line}" if pending else line.strip()
            if complete(pending):
                commands.append(pending)
                pending = ""
        assert not pending, f"an example never closes its quotes: {pending}"
    return commands


def complete(command: str) -> bool:
    lexer = shlex.shlex(command, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        list(lexer)
    except ValueError:  # "No closing quotation": the argument goes on on the next line
        return False
    return True


def authorize_block(markdown: str) -> str | None:
    """The authorization request a guide shows (a URL over several lines), as one URL."""
    for _, lang, body in FENCE.findall(markdown):
        url = "".join(line.strip() for line in body.splitlines())
        if not lang and url.startswith(f"{ORIGIN}/{ENV}/auth/authorize?"):
            return url
    return None


def read_document(name: str, tmp_path: Path, client_id: str) -> Document:
    markdown = (REPO / name).read_text(encoding="utf-8")
    record = tmp_path / name.replace("/", "_")
    record.mkdir()
    (record / "count").write_text("0")
    script = record / "examples.sh"
    dump = 'printf "%s=%s\\0" VERIFIER "${VERIFIER:-}" CHALLENGE "${CHALLENGE:-}" > "$REC/variables"\n'
    script.write_text(RECORDER + "\n".join(shell_lines(markdown)) + "\n" + dump)
    env = {"PATH": "/usr/bin:/bin", "REC": str(record), "CLIENT_ID": client_id, "HOME": str(record)}
    env |= {name: f"@{name}@" for name in DYNAMIC}
    env["TOKEN"] = "@ACCESS_TOKEN@"
    result = subprocess.run(
        ["/bin/bash", "--noprofile", "--norc", str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", f"{name}: the shell complained:\n{result.stderr}"
    count = int((record / "count").read_text())
    examples = [
        Example((record / f"{n}.args").read_bytes().decode().split("\0")[:-1]) for n in range(1, count + 1)
    ]
    pairs = (record / "variables").read_bytes().decode().split("\0")[:-1]
    variables = dict(pair.split("=", 1) for pair in pairs)
    return Document(name, examples, variables, authorize_block(markdown))


# ---- curl's arguments as a request -------------------------------------------------------------------
@dataclass
class Request:
    method: str
    url: str
    headers: list[tuple[str, str]]
    data: list[str]
    user: str | None


FLAGS = {"-s", "-S", "-sS", "-Ss", "--silent", "--show-error", "-i", "--include", "-f", "--fail", "-L"}
WITH_VALUE = {"-H", "--header", "-X", "--request", "-d", "--data", "--data-urlencode", "-u", "--user"}


def parse_curl(argv: list[str]) -> Request:
    method, url, user = None, None, None
    headers: list[tuple[str, str]] = []
    data: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg in FLAGS:
            continue
        if arg in WITH_VALUE:
            value = next(args)
            if arg in ("-H", "--header"):
                name, _, content = value.partition(":")
                headers.append((name.strip(), content.strip()))
            elif arg in ("-X", "--request"):
                method = value
            elif arg in ("-u", "--user"):
                user = value
            else:
                assert not value.startswith("@"), f"examples send inline data, not files: {value}"
                data.append(value)
            continue
        assert not arg.startswith("-"), f"curl option {arg} is not understood by this test"
        assert url is None, f"two URLs in one example: {url}, {arg}"
        url = arg
    assert url is not None, "no URL"
    return Request(method or ("POST" if data else "GET"), url, headers, data, user)


# ---- the placeholders' values --------------------------------------------------------------------------
def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


CACHED = (
    "ACCESS_TOKEN",
    "REFRESH_TOKEN",
    "SYSTEM_TOKEN",
)  # codes and assertions are single-use: fresh each time


class Provider:
    """Makes the values a developer would have at hand: codes, tokens, a signed client assertion."""

    def __init__(self, http: TestClient, document: Document, run: Run) -> None:
        self.http = http
        self.document = document
        self.run = run

    def value(self, name: str) -> str:
        if name in CACHED and name in self.run.values:
            return self.run.values[name]
        made: str = getattr(self, name.lower())()
        if name in CACHED:
            self.run.values[name] = made
        return made

    def app(self) -> SmartApp:
        return SmartApp(self.http, self.run.values["CLIENT_ID"], APP_REDIRECT, env=ENV, origin=ORIGIN)

    def sign_in_and_allow(self, page: Any) -> dict[str, str]:
        """Sign sandbox-member-1 in on the page the authorize request showed, allow everything asked."""
        assert page.status_code == 200, page.text
        username, password, _ = SANDBOX_MEMBERS[0]
        app = self.app()
        if 'name="decision"' not in page.text:
            page = app.sign_in(page.text, username, password)
            assert page.status_code == 200, page.text
        back = app.consent(page.text)
        assert back.status_code == 303, back.text
        location = back.headers["location"]
        assert location.startswith(APP_REDIRECT + "?")
        return query_of(location)

    def code(self) -> str:
        """A code for the document's own authorize URL and PKCE pair (their challenge must be right)."""
        verifier, challenge = self.document.variables["VERIFIER"], self.document.variables["CHALLENGE"]
        assert verifier, f"{self.document.name} exchanges a code but never makes a PKCE verifier"
        assert challenge == s256(verifier), "the guide's CHALLENGE is not BASE64URL(SHA-256(VERIFIER))"
        url = self.document.authorize_url
        assert url is not None, f"{self.document.name} exchanges a code but shows no authorize URL"
        state = secrets.token_urlsafe(12)
        for name, value in (
            ("CLIENT_ID", self.run.values["CLIENT_ID"]),
            ("CHALLENGE", challenge),
            ("STATE", state),
        ):
            url = url.replace(f"${name}", value)
        assert "$" not in url, f"unknown placeholder in the authorize URL: {url}"
        params = self.sign_in_and_allow(self.http.get(url, follow_redirects=False))
        assert params["state"] == state
        assert params["iss"] == f"{ORIGIN}/{ENV}/auth"
        return params["code"]

    def launch(self) -> dict[str, Any]:
        """The standalone launch done by the test, for examples that start from a member's token."""
        app = self.app()
        page = app.authorize("launch/patient openid fhirUser offline_access patient/*.rs")
        response = app.exchange(self.sign_in_and_allow(page)["code"])
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def access_token(self) -> str:
        body = self.launch()
        self.run.values.setdefault("REFRESH_TOKEN", body["refresh_token"])
        return str(body["access_token"])

    def refresh_token(self) -> str:
        body = self.launch()
        self.run.values.setdefault("ACCESS_TOKEN", body["access_token"])
        return str(body["refresh_token"])

    def signed_jwt(self) -> str:
        client_id = self.run.values["BACKEND_CLIENT_ID"]
        claims = {
            "iss": client_id,
            "sub": client_id,
            "aud": f"{ORIGIN}/{ENV}/auth/token",
            "exp": int(time.time()) + 240,
            "jti": secrets.token_hex(8),
        }
        header = {"alg": "RS384", "kid": "k1", "typ": "JWT"}
        return jwt.encode(header, claims, self.run.backend_key, algorithms=["RS384"])

    def system_token(self) -> str:
        form = {
            "grant_type": "client_credentials",
            "scope": "system/Patient.rs",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": self.signed_jwt(),
        }
        response = self.http.post(f"/{ENV}/auth/token", data=form)
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])


# ---- running them ----------------------------------------------------------------------------------------
PLACEHOLDER = re.compile(r"@([A-Z_]+)@")


def execute(http: TestClient, provider: Provider, example: Example, run: Run) -> None:
    argv = [PLACEHOLDER.sub(lambda m: provider.value(m.group(1)), arg) for arg in example.argv]
    request = parse_curl(argv)
    shown = example.shown
    assert request.url.startswith(ORIGIN + "/"), f"{shown}: examples call the `make run` server, {ORIGIN}"
    headers = list(request.headers)
    content = "&".join(request.data) if request.data else None
    if content is not None and not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/x-www-form-urlencoded"))  # as curl -d sends it
    auth = tuple(request.user.split(":", 1)) if request.user else None
    response = http.request(request.method, request.url, headers=headers, content=content, auth=auth)  # type: ignore[arg-type]
    assert 200 <= response.status_code < 300, f"{shown}\n-> {response.status_code} {response.text[:800]}"
    if not response.content:
        return  # revocation answers 200 with no body
    assert "json" in response.headers["content-type"], shown
    body = response.json()
    assert body, f"{shown}: empty JSON"
    if "access_token" in body:
        if body.get("scope", "").startswith("system/"):
            run.values["SYSTEM_TOKEN"] = body["access_token"]
        else:
            run.values["ACCESS_TOKEN"] = body["access_token"]
            if "refresh_token" in body:
                run.values["REFRESH_TOKEN"] = body["refresh_token"]
    elif body.get("resourceType") == "Bundle":
        entries = [e for e in body.get("entry", []) if e.get("search", {}).get("mode", "match") == "match"]
        assert entries, f"{shown}: the search found nothing in the sandbox"
        run.returned |= {(e["resource"]["resourceType"], e["resource"]["id"]) for e in body["entry"]}
    elif body.get("resourceType") not in (None, "Parameters"):
        assert body["resourceType"] != "OperationOutcome", shown
        if "id" in body:
            run.returned.add((body["resourceType"], body["id"]))


@cache
def default_sandbox() -> frozenset[tuple[str, str]]:
    return frozenset((r["resourceType"], r["id"]) for r in generate_plan(DEFAULT_MEMBERS, seed=1))


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Iterator[Settings]:
    """A sandbox seeded once for this module by `openpayer seed sandbox --members 10` (with its logins)."""
    home = tmp_path_factory.mktemp("examples")
    admin = None
    if BACKEND == "postgresql":
        url = _worker_database_url(worker_id) + "_examples"
        head, _, name = url.rpartition("/")
        admin = create_engine(f"{head}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    else:
        url = f"sqlite:///{home / 'openpayer.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENPAYER_HOME", str(home))
        patch.setenv("OPENPAYER_DATABASE_URL", url)
        patch.setenv("OPENPAYER_SECRET_KEY", "test-secret")
        args = ["seed", ENV, "--members", str(MEMBERS), "--workers", "0", "--quiet"]
        result = CliRunner().invoke(cli_app, args)
    assert result.exit_code == 0, result.output
    yield Settings(home=home, database_url=url, secret_key="test-secret", auth_enforce=True)
    if admin is not None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def seeded_services(seeded: Settings) -> Iterator[Services]:
    services = build_services(seeded)
    yield services
    services.engine.dispose()


@pytest.mark.parametrize("name", DOCUMENTS)
def test_every_curl_example_runs_against_the_seeded_sandbox(
    name: str, seeded: Settings, seeded_services: Services, tmp_path: Path
) -> None:
    services = seeded_services
    client_id, _ = services.auth.clients.register(
        ENV, name="Guide app", redirect_uris=[APP_REDIRECT], public=True
    )
    key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    backend_id, _ = services.auth.clients.register(
        ENV,
        name="Guide backend",
        redirect_uris=[],
        jwks={"keys": [key.as_dict(private=False)]},
        scopes=["system/Patient.rs"],
    )
    document = read_document(name, tmp_path, client_id)
    run = Run(backend_key=key, values={"CLIENT_ID": client_id, "BACKEND_CLIENT_ID": backend_id})
    with TestClient(create_app(seeded, services=services), base_url=ORIGIN) as http:
        provider = Provider(http, document, run)
        for example in document.examples:
            execute(http, provider, example, run)
    missing = sorted(run.returned - default_sandbox())
    assert missing == [], f"returned here but not in the {DEFAULT_MEMBERS}-member sandbox of `make run`"


def test_the_guides_have_examples_and_only_curl_runs(tmp_path: Path) -> None:
    counts = {name: len(read_document(name, tmp_path, "CLIENT").examples) for name in DOCUMENTS}
    assert counts["README.md"] >= 4
    assert counts["docs/apis.md"] >= 20
    assert counts["docs/smart.md"] >= 6
    argv = parse_curl(["-s", "-H", "A: b", "-X", "PUT", "-d", "x=1", "-u", "id:secret", "http://h/p"])
    assert argv == Request("PUT", "http://h/p", [("A", "b")], ["x=1"], "id:secret")
    with pytest.raises(AssertionError):
        parse_curl(["--compressed", "http://h/p"])
