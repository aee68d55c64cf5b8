"""The health-check client: a synthetic SMART standalone launch and one `/metadata` call, the activity the
inactivity policy asks of seasonal apps (docs/policy.md, "Health checks").

It speaks only HTTP to the server under test, from its discovery document: PKCE S256, `state` and `iss`
checks, the app's registered client id and redirect URI (never followed: the code is read from the
`Location` header), a client secret (HTTP Basic) or a private_key_jwt assertion for confidential apps, the
monitoring account's sign-in on OpenPayer's own sign-in and consent pages (read the way a browser submits
them), the minimum scopes, then `GET /metadata` with the token. It keeps nothing: the token and the
response are dropped. Each step is timed; a failure names its step and why, without any secret.
"""

from __future__ import annotations

import html
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urljoin

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet

from openpayer.oauth.testing import form_fields, hidden, pkce_pair, query_of

_MESSAGES = (
    r'<p[^>]*class="[^"]*error[^"]*"[^>]*>(.*?)</p>',
    r"<main.*?<p[^>]*>(.*?)</p>",
    r"<h1[^>]*>(.*?)</h1>",
)
DEFAULT_SCOPE = "launch/patient patient/Patient.rs"  # the least a standalone patient launch completes with


class CheckFailed(Exception):
    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.reason = reason


@dataclass
class Options:
    fhir_base: str
    client_id: str
    redirect_uri: str
    username: str
    password: str
    scope: str = DEFAULT_SCOPE
    client_secret: str | None = None
    private_key: KeySet | None = None  # private_key_jwt: the app's signing key set (first key is used)
    timeout: float = 15.0


@dataclass
class Result:
    ok: bool
    step: str | None = None  # the failed step
    reason: str | None = None
    timings: dict[str, int] = field(default_factory=dict)  # step -> milliseconds

    def line(self) -> str:
        steps = " ".join(f"{name}={ms}ms" for name, ms in self.timings.items())
        if self.ok:
            return f"ok: SMART launch and /metadata in {sum(self.timings.values())} ms ({steps})"
        return (
            f"failed at {self.step}: {self.reason} ({steps})"
            if steps
            else f"failed at {self.step}: {self.reason}"
        )

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "step": self.step, "reason": self.reason, "timings_ms": self.timings}

    @contextmanager
    def timer(self, step: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[step] = round((time.perf_counter() - started) * 1000)


@dataclass(frozen=True)
class Launch:
    """What the discovery document and the authorization request decided (`begin`), for `finish`."""

    base: str
    authorize_url: str
    token_url: str
    issuer: str | None
    state: str
    verifier: str
    params: dict[str, str]

    @property
    def authorize_request(self) -> str:
        return f"{self.authorize_url}?{urlencode(self.params)}"


def run(options: Options, transport: httpx.BaseTransport | None = None) -> Result:
    result = Result(ok=False)
    try:
        with httpx.Client(timeout=options.timeout, follow_redirects=False, transport=transport) as http:
            _launch(http, options, result)
    except CheckFailed as failure:
        result.step, result.reason = failure.step, failure.reason
        return result
    result.ok = True
    return result


def _timed(result: Result, step: str, action: Callable[[], httpx.Response]) -> httpx.Response:
    started = time.perf_counter()
    try:
        return action()
    except httpx.TimeoutException:
        raise CheckFailed(step, "the server did not answer in time") from None
    except httpx.HTTPError as error:
        raise CheckFailed(step, f"cannot reach the server ({type(error).__name__})") from None
    finally:
        result.timings[step] = round((time.perf_counter() - started) * 1000)


def begin(http: httpx.Client, o: Options, result: Result) -> Launch:
    """The discovery document, then the authorization request's parameters (PKCE S256, a fresh state)."""
    base = o.fhir_base.rstrip("/")
    discovery = _timed(result, "discovery", lambda: http.get(f"{base}/.well-known/smart-configuration"))
    config = _json(discovery, "discovery")
    try:
        authorize_url, token_url = str(config["authorization_endpoint"]), str(config["token_endpoint"])
    except KeyError:
        raise CheckFailed(
            "discovery", "the discovery document names no authorization or token endpoint"
        ) from None
    issuer = config.get("issuer")
    if "S256" not in config.get("code_challenge_methods_supported", []):
        raise CheckFailed("discovery", "the server does not support PKCE S256")

    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    params = {
        "response_type": "code",
        "client_id": o.client_id,
        "redirect_uri": o.redirect_uri,
        "scope": o.scope,
        "state": state,
        "aud": base,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return Launch(base, authorize_url, token_url, issuer, state, verifier, params)


def _launch(http: httpx.Client, o: Options, result: Result) -> None:
    launch = begin(http, o, result)
    authorize_url = launch.authorize_url
    page = _timed(result, "authorize", lambda: http.get(launch.authorize_request))
    if page.status_code in (302, 303):
        _redirect_error(page, "authorize", o.redirect_uri)
    if page.status_code != 200:
        raise CheckFailed("authorize", f"HTTP {page.status_code}: {_page_message(page.text)}")
    if not any(name == "password" for name, _, _ in form_fields(page.text)):
        raise CheckFailed("authorize", "the authorization page has no sign-in form")

    signed_in = _timed(
        result,
        "sign-in",
        lambda: http.post(
            authorize_url, data={**hidden(page.text), "username": o.username, "password": o.password}
        ),
    )
    if signed_in.status_code != 200 or 'name="decision"' not in signed_in.text:
        reason = _page_message(signed_in.text) if signed_in.status_code != 303 else "unexpected redirect"
        raise CheckFailed(
            "sign-in", f"the monitoring account was not signed in (HTTP {signed_in.status_code}: {reason})"
        )

    data = list(hidden(signed_in.text).items())
    data += [(n, v) for n, v, kind in form_fields(signed_in.text) if kind == "checkbox"]
    data.append(("decision", "allow"))
    back = _timed(
        result,
        "consent",
        lambda: http.post(
            authorize_url,
            content=urlencode(data),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
    )
    if back.status_code not in (302, 303):
        raise CheckFailed("consent", f"HTTP {back.status_code}: {_page_message(back.text)}")
    finish(http, o, result, launch, back.headers.get("location", ""))


def finish(http: httpx.Client, o: Options, result: Result, launch: Launch, location: str) -> None:
    """From the redirect back to the app: its checks, the code exchange and the /metadata call."""
    state, issuer, verifier, base = launch.state, launch.issuer, launch.verifier, launch.base
    token_url = launch.token_url
    if not location.startswith(o.redirect_uri):
        raise CheckFailed("consent", "the server redirected somewhere other than the registered redirect URI")
    answer = query_of(location)
    if "error" in answer:
        raise CheckFailed("consent", f"{answer['error']}: {answer.get('error_description', '')}".strip(": "))
    if answer.get("state") != state:
        raise CheckFailed("consent", "the state returned does not match the one sent")
    if issuer and answer.get("iss") != issuer:
        raise CheckFailed("consent", "the iss returned is not the issuer of the discovery document")
    if "code" not in answer:
        raise CheckFailed("consent", "no authorization code in the redirect")

    form = {
        "grant_type": "authorization_code",
        "code": answer["code"],
        "redirect_uri": o.redirect_uri,
        "code_verifier": verifier,
    }
    auth: httpx.BasicAuth | None = None
    if o.client_secret is not None:
        auth = httpx.BasicAuth(o.client_id, o.client_secret)
    elif o.private_key is not None:
        form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        form["client_assertion"] = _assertion(o, token_url)
    else:
        form["client_id"] = o.client_id
    tokens = _timed(
        result,
        "token",
        lambda: http.post(token_url, data=form, auth=auth) if auth else http.post(token_url, data=form),
    )
    body = _json(tokens, "token")
    access = body.get("access_token")
    if not isinstance(access, str):
        raise CheckFailed("token", "the token response has no access_token")

    metadata = _timed(
        result,
        "metadata",
        lambda: http.get(
            f"{base}/metadata",
            headers={"Authorization": f"Bearer {access}", "Accept": "application/fhir+json"},
        ),
    )
    if _json(metadata, "metadata").get("resourceType") != "CapabilityStatement":
        raise CheckFailed("metadata", "the answer is not a CapabilityStatement")


def _assertion(o: Options, token_url: str) -> str:
    assert o.private_key is not None
    key = o.private_key.keys[0]
    alg = "ES384" if key.key_type == "EC" else "RS384"
    now = int(time.time())
    claims = {
        "iss": o.client_id,
        "sub": o.client_id,
        "aud": token_url,
        "jti": str(uuid.uuid4()),
        "exp": now + 300,
    }
    return jwt.encode({"alg": alg, "kid": key.kid, "typ": "JWT"}, claims, key)


def _json(response: httpx.Response, step: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200:
        if isinstance(body, dict) and "error" in body:
            detail = f"{body['error']}: {body.get('error_description', '')}".strip(": ")
        elif isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
            detail = str((body.get("issue") or [{}])[0].get("diagnostics", "OperationOutcome"))
        else:
            detail = _page_message(response.text)
        raise CheckFailed(step, f"HTTP {response.status_code}: {detail}")
    if not isinstance(body, dict):
        raise CheckFailed(step, "the answer is not a JSON object")
    return body


def _redirect_error(page: httpx.Response, step: str, redirect_uri: str) -> None:
    location = page.headers.get("location", "")
    answer = query_of(location) if location.startswith(redirect_uri) else {}
    if "error" in answer:
        raise CheckFailed(step, f"{answer['error']}: {answer.get('error_description', '')}".strip(": "))
    raise CheckFailed(step, f"unexpected redirect to {urljoin(str(page.url), location)[:200]}")


def _page_message(text: str) -> str:
    """The first paragraph or heading of an HTML page (the server's explanation), as plain text."""

    for pattern in (
        r'<p[^>]*class="[^"]*error[^"]*"[^>]*>(.*?)</p>',
        r"<main.*?<p[^>]*>(.*?)</p>",
        r"<h1[^>]*>(.*?)</h1>",
    ):
        found = re.search(pattern, text, re.IGNORECASE | re.DOTALL)
        if found:
            return " ".join(html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).split())[:300]
    return " ".join(text.split())[:200] or "no explanation"
