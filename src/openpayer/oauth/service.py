"""The authorization server's parts, built once per process by the composition root (openpayer.bootstrap)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from joserfc import jwt
from sqlalchemy import Engine
from starlette.requests import Request

from openpayer.accounts.signin import SignIn
from openpayer.clock import Clock
from openpayer.config import Settings
from openpayer.members.accounts import Member, MemberStore
from openpayer.members.consent import GrantStore
from openpayer.oauth.activity import ActivityLog
from openpayer.oauth.clients import ClientStore
from openpayer.oauth.directory import AppDirectory, NoDirectory
from openpayer.oauth.keys import ALG, KeyStore
from openpayer.oauth.reach import Reach
from openpayer.oauth.tokens import TokenStore
from openpayer.security.audit import AuditLog
from openpayer.security.monitor import SecurityMonitor
from openpayer.security.sealing import Sealer


@dataclass(frozen=True, slots=True)
class Urls:
    """Absolute URLs of one environment, from the configured public base URL or the request's origin."""

    origin: str
    env: str

    @property
    def issuer(self) -> str:
        return f"{self.origin}/{self.env}/auth"

    @property
    def fhir(self) -> str:
        return f"{self.origin}/{self.env}/fhir"

    def auth(self, endpoint: str) -> str:
        return f"{self.issuer}/{endpoint}"


@dataclass
class AuthServer:
    settings: Settings
    engine: Engine
    clock: Clock
    keys: KeyStore
    clients: ClientStore
    tokens: TokenStore
    members: MemberStore
    grants: GrantStore
    audit: AuditLog
    sealer: Sealer
    security: SecurityMonitor  # the security event stream, throttling and detection
    signin: SignIn[Member]  # member sign-in and second factor (openpayer.accounts.signin)
    reach: Reach  # whether a read is inside a token's restriction (cached; the guard's)
    resource_types: frozenset[str]  # what scopes may name (the FHIR engine's resource types)
    activity: ActivityLog  # last authorization and call per client, for the inactivity policy
    # What members are told about an app (attestations, developer, gallery); the portal's, bound in bootstrap.
    directory: AppDirectory = field(default_factory=NoDirectory)

    def urls(self, request: Request, env: str) -> Urls:
        configured = self.settings.public_base_url
        origin = configured.rstrip("/") if configured else f"{request.url.scheme}://{request.url.netloc}"
        return Urls(origin, env)

    def fhir_audiences(self, request: Request, env: str) -> set[str]:
        """The `aud` values an authorization request may name: this environment's FHIR base URL(s)."""
        bases = {self.urls(request, env).fhir, f"{request.url.scheme}://{request.url.netloc}/{env}/fhir"}
        return bases | {b + "/" for b in bases}

    def id_token(
        self,
        urls: Urls,
        *,
        client_id: str,
        member_id: int,
        patient_id: str,
        nonce: str | None,
        auth_time: int,
        extra: dict[str, str] | None = None,
    ) -> str:
        """OpenID Connect Core §2 ID token, RS256, with SMART's `fhirUser` (absolute Patient URL);
        `extra`: the `profile` claims when that scope was granted."""
        key = self.keys.signing_key(urls.env)
        now = self.clock.now()
        claims: dict[str, Any] = {
            "iss": urls.issuer,
            "sub": str(member_id),
            "aud": client_id,
            "iat": now,
            "exp": now + self.settings.auth_access_token_lifetime,
            "auth_time": auth_time,
            "fhirUser": f"{urls.fhir}/Patient/{patient_id}",
        }
        if nonce:
            claims["nonce"] = nonce
        claims.update(extra or {})
        return jwt.encode({"alg": ALG, "kid": key.kid, "typ": "JWT"}, claims, key)
