"""A scripted SMART app: drives the standalone launch over HTTP, as a third-party app and its member would.

Used by the functional tests, the benchmark and the sandbox smoke checks. It speaks only HTTP to the
server (any `httpx.Client`-compatible client, e.g. Starlette's TestClient) and reads the pages' forms the
way a browser submits them.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

_INPUT = re.compile(r"<input\b[^>]*>", re.IGNORECASE)
_ATTR = re.compile(r'(\w[\w-]*)="([^"]*)"')


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def form_fields(page: str) -> list[tuple[str, str, str]]:
    """(name, value, type) of every input on a page, values unescaped as a browser would send them."""
    fields = []
    for tag in _INPUT.findall(page):
        attrs = {k.lower(): html.unescape(v) for k, v in _ATTR.findall(tag)}
        if "name" in attrs:
            fields.append((attrs["name"], attrs.get("value", ""), attrs.get("type", "text")))
    return fields


def hidden(page: str) -> dict[str, str]:
    return {name: value for name, value, kind in form_fields(page) if kind == "hidden"}


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@dataclass
class SmartApp:
    http: Any  # an httpx.Client, or Starlette's TestClient
    client_id: str
    redirect_uri: str
    env: str = "sandbox"
    origin: str = "http://testserver"
    client_secret: str | None = None
    verifier: str = ""
    state: str = ""
    last: dict[str, str] = field(default_factory=dict)

    @property
    def auth(self) -> str:
        return f"/{self.env}/auth"

    @property
    def aud(self) -> str:
        return f"{self.origin}/{self.env}/fhir"

    def authorize(self, scope: str, **overrides: str | None) -> Any:
        """GET /authorize with PKCE S256 and a fresh state; `overrides` replace or (None) drop parameters."""
        self.verifier, challenge = pkce_pair()
        self.state = secrets.token_urlsafe(16)
        params: dict[str, str | None] = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": scope,
            "state": self.state,
            "aud": self.aud,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        params.update(overrides)
        query = urlencode({k: v for k, v in params.items() if v is not None})
        return self.http.get(f"{self.auth}/authorize?{query}", follow_redirects=False)

    def sign_in(self, page: str, username: str, password: str) -> Any:
        data = {**hidden(page), "username": username, "password": password}
        return self.http.post(f"{self.auth}/authorize", data=data, follow_redirects=False)

    def consent(self, page: str, decision: str = "allow", untick: tuple[str, ...] = ()) -> Any:
        data: list[tuple[str, str]] = list(hidden(page).items())
        data += [(n, v) for n, v, kind in form_fields(page) if kind == "checkbox" and v not in untick]
        data.append(("decision", decision))
        return self.http.post(
            f"{self.auth}/authorize",
            content=urlencode(data),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            follow_redirects=False,
        )

    def code(self, scope: str, username: str, password: str, untick: tuple[str, ...] = ()) -> str:
        """Authorize, sign in, allow; returns the authorization code (checking `state` and `iss`)."""
        page = self.authorize(scope)
        assert page.status_code == 200, page.text
        # With a live sign-in session the consent page comes straight away.
        consent = page if 'name="decision"' in page.text else self.sign_in(page.text, username, password)
        assert consent.status_code == 200, consent.text
        back = self.consent(consent.text, untick=untick)
        assert back.status_code == 303, back.text
        self.last = query_of(back.headers["location"])
        assert self.last.get("state") == self.state
        assert self.last.get("iss") == f"{self.origin}{self.auth}"
        return self.last["code"]

    def token(self, data: dict[str, str]) -> Any:
        body = dict(data)
        kwargs: dict[str, Any] = {}
        if self.client_secret is not None:
            kwargs["auth"] = (self.client_id, self.client_secret)
        else:
            body.setdefault("client_id", self.client_id)
        return self.http.post(f"{self.auth}/token", data=body, **kwargs)

    def exchange(self, code: str, verifier: str | None = None) -> Any:
        return self.token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.redirect_uri,
                "code_verifier": self.verifier if verifier is None else verifier,
            }
        )

    def refresh(self, refresh_token: str, scope: str | None = None) -> Any:
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        if scope is not None:
            data["scope"] = scope
        return self.token(data)

    def launch(
        self, scope: str, username: str, password: str, untick: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        response = self.exchange(self.code(scope, username, password, untick))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


# ---- a small two-member world for tests and benchmarks -------------------------------------------------
TEST_PASSWORD = "correct horse battery staple"  # noqa: S105 - test fixture data, never a real account


def observation(patient: str, category: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": category}
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
        "subject": {"reference": f"Patient/{patient}"},
    }


def two_member_world(services: Any, env: str = "sandbox") -> dict[str, str]:
    """Members `member-a` and `member-b` (password `TEST_PASSWORD`), each with a Patient, a laboratory and a
    vital-signs Observation and a Coverage whose payor is the shared Organization `org`."""

    def make(resource: dict[str, Any]) -> str:
        return str(services.fhir.create(env, resource["resourceType"], resource).stored.id)

    ids = {"org": make({"resourceType": "Organization", "name": "Acme Health Plan"})}
    for who in ("a", "b"):
        pid = make({"resourceType": "Patient", "name": [{"family": who.upper() + "son"}]})
        ids[who] = pid
        ids[f"{who}_lab"] = make(observation(pid, "laboratory"))
        ids[f"{who}_vital"] = make(observation(pid, "vital-signs"))
        ids[f"{who}_cov"] = make(
            {
                "resourceType": "Coverage",
                "status": "active",
                "beneficiary": {"reference": f"Patient/{pid}"},
                "payor": [{"reference": f"Organization/{ids['org']}"}],
            }
        )
        services.auth.members.create(env, f"member-{who}", TEST_PASSWORD, pid)
    return ids
