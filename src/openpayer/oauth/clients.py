"""Registered clients and client authentication (RFC 6749 §2.3; OIDC Core §9; SMART Backend Services).

Methods: `none` (public apps, PKCE only), `client_secret_basic`/`client_secret_post` (confidential symmetric;
secrets are 256 random bits, stored as SHA-256 digests, compared in constant time) and `private_key_jwt`
(confidential asymmetric; RS384/ES384 assertions verified against the registered JWKS or JWKS URL, `jti`
replay rejected, `exp` at most five minutes ahead). Every failure is `invalid_client` (401).

A secret can be rotated (`rotate_secret`): the new one is shown once; the old one stops working at once, or
after an overlap the developer chooses of at most `MAX_SECRET_OVERLAP` (24 hours), so that a deployed app can
switch without an outage.

The token endpoint authenticates against clients (and their parsed keys) cached in the process, and then
`confirm`s inside the grant's own transaction that the stored client is still the one it authenticated
against: active, with the same method, secrets, keys and scopes. That check is folded into the `jti` insert
for `private_key_jwt` (an `INSERT ... SELECT ... WHERE EXISTS`), or is one `SELECT` for the others, so a
client suspended, given new keys or a new secret by any process stops at once, at no extra commit. A failed
confirmation drops the cached client and the endpoint authenticates again from the database.

A `jti` is recorded with an upsert that replaces only an expired record of the same `jti`: the replay check
is one unique-index probe, never a scan (expired records are purged by the `oauth.cleanup` job).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import unquote, urlsplit

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry
from sqlalchemy import BigInteger, Connection, Engine, String, Text, and_, bindparam, exists, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from openpayer.clock import Clock
from openpayer.db import write_transaction
from openpayer.oauth.errors import InvalidClientError, client_error
from openpayer.oauth.models import oauth_assertion_jti, oauth_client
from openpayer.web.threads import off_loop

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGS = ["RS384", "ES384"]
# Built once: `jwt.decode(..., algorithms=)` builds a registry, copying the header table, on every call.
_ASSERTION_REGISTRY = JWSRegistry(algorithms=ASSERTION_ALGS)
MAX_ASSERTION_LIFETIME = 300
_JWKS_URL_CACHE_SECONDS = 300.0
MAX_SECRET_OVERLAP = 24 * 3600
_CLIENT_CACHE_SECONDS = 60.0  # bounds memory only: `confirm` checks every use against the stored client
_CLIENT_CACHE_SIZE = 10_000


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    env: str
    name: str
    developer: str
    privacy_policy_url: str | None
    redirect_uris: tuple[str, ...]
    auth_method: str  # none | client_secret | private_key_jwt
    secret_digest: str | None
    jwks: str | None
    jwks_url: str | None
    scopes: str
    status: str
    previous_secret_digest: str | None = None
    previous_secret_expires_at: int | None = None

    @property
    def public(self) -> bool:
        return self.auth_method == "none"

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def origins(self) -> frozenset[str]:
        found = set()
        for uri in self.redirect_uris:
            parts = urlsplit(uri)
            if parts.scheme in ("http", "https") and parts.netloc:
                found.add(f"{parts.scheme}://{parts.netloc}")
        return frozenset(found)


class StaleClientError(Exception):
    """The stored client is no longer the one a request authenticated against (suspended, new keys...)."""


@dataclass(frozen=True, slots=True)
class ClientCheck:
    """A condition on the client's row (always the same statement fragment, so statements built with it
    are compiled once) and the bind parameters that give it the cached client's values."""

    condition: ColumnElement[bool]
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Authenticated:
    """A client that passed authentication, and what the grant's transaction must still record: the
    assertion's `jti` (private_key_jwt) and whether the client came from this process's cache."""

    client: Client
    jti: str | None = None
    jti_expires_at: int = 0
    cached: bool = False


def _row_to_client(row: Any) -> Client:
    return Client(
        client_id=row.client_id,
        env=row.env,
        name=row.name,
        developer=row.developer or "",
        privacy_policy_url=row.privacy_policy_url,
        redirect_uris=tuple(json.loads(row.redirect_uris)),
        auth_method=row.auth_method,
        secret_digest=row.secret_digest,
        jwks=row.jwks,
        jwks_url=row.jwks_url,
        scopes=row.scopes or "",
        status=row.status,
        previous_secret_digest=row.previous_secret_digest,
        previous_secret_expires_at=row.previous_secret_expires_at,
    )


class ClientStore:
    def __init__(self, engine: Engine, clock: Clock, cache_seconds: float = 5.0) -> None:
        self.engine = engine
        self.clock = clock
        self.cache_seconds = cache_seconds
        self._origins: dict[str, tuple[float, frozenset[str]]] = {}
        self._jwks_urls: dict[str, tuple[float, dict[str, Any]]] = {}
        self._clients: dict[tuple[str, str], tuple[float, Client]] = {}
        self._keysets: dict[str, KeySet] = {}  # parsed JWKS by its text
        self._lock = threading.Lock()
        # Called in the transaction of every status change (the composition root adds
        # `RevocationFeed.raise_generation`, which tells every process to drop its caches).
        self.status_listeners: list[Callable[[Connection], None]] = []

    # ---- registration ---------------------------------------------------------------------------------
    def register(
        self,
        env: str,
        *,
        name: str,
        redirect_uris: Sequence[str],
        public: bool = False,
        jwks: Mapping[str, Any] | None = None,
        jwks_url: str | None = None,
        scopes: Sequence[str] = (),
        developer: str = "",
        privacy_policy_url: str | None = None,
    ) -> tuple[str, str | None]:
        """Register a client; returns (client_id, secret): the secret is shown once, only its digest kept."""
        _check_urls(redirect_uris, privacy_policy_url)
        if jwks is not None:
            KeySet.import_key_set(dict(jwks))  # type: ignore[arg-type]  # fail early on a bad JWKS
        client_id = secrets.token_urlsafe(24)
        secret: str | None = None
        if jwks is not None or jwks_url:
            method = "private_key_jwt"
        elif public:
            method = "none"
        else:
            method = "client_secret"
            secret = secrets.token_urlsafe(32)  # 256 bits
        with write_transaction(self.engine) as conn:
            conn.execute(
                oauth_client.insert().values(
                    client_id=client_id,
                    env=env,
                    name=name,
                    developer=developer,
                    privacy_policy_url=privacy_policy_url,
                    redirect_uris=json.dumps(list(redirect_uris)),
                    auth_method=method,
                    secret_digest=digest(secret) if secret else None,
                    jwks=json.dumps(dict(jwks)) if jwks is not None else None,
                    jwks_url=jwks_url,
                    scopes=" ".join(scopes),
                    status="active",
                    created_at=self.clock.now(),
                )
            )
        self._origins.pop(env, None)
        return client_id, secret

    def update(
        self,
        env: str,
        client_id: str,
        *,
        name: str,
        redirect_uris: Sequence[str],
        scopes: Sequence[str] = (),
        developer: str = "",
        privacy_policy_url: str | None = None,
    ) -> bool:
        """Change what members see and where codes may go; the client's credentials stay as they are."""
        _check_urls(redirect_uris, privacy_policy_url)
        with write_transaction(self.engine) as conn:
            done = conn.execute(
                oauth_client.update()
                .where(oauth_client.c.env == env, oauth_client.c.client_id == client_id)
                .values(
                    name=name,
                    redirect_uris=json.dumps(list(redirect_uris)),
                    scopes=" ".join(scopes),
                    developer=developer,
                    privacy_policy_url=privacy_policy_url,
                )
            ).rowcount
        self._origins.pop(env, None)
        return bool(done)

    def set_status(self, env: str, client_id: str, status: str) -> bool:
        with write_transaction(self.engine) as conn:
            return self.set_status_in(conn, env, client_id, status)

    def set_status_in(self, conn: Connection, env: str, client_id: str, status: str) -> bool:
        """`set_status` inside the caller's transaction (a removal that must commit with its record)."""
        done = conn.execute(
            oauth_client.update()
            .where(oauth_client.c.env == env, oauth_client.c.client_id == client_id)
            .values(status=status)
        ).rowcount
        if done:
            for listener in self.status_listeners:
                listener(conn)
        self.forget(env, client_id)
        return bool(done)

    def forget(self, env: str, client_id: str) -> None:
        """Drop a cached client (other processes find out through `confirm`)."""
        with self._lock:
            self._clients.pop((env, client_id), None)

    def forget_all(self) -> None:
        """Drop every cached client and origin list (a status changed in another process)."""
        with self._lock:
            self._clients.clear()
        self._origins.clear()

    def rotate_secret(self, env: str, client_id: str, overlap_seconds: int = 0) -> str:
        """A new secret for a `client_secret` client, shown once. The current one keeps working for
        `overlap_seconds` (0 to 24 h); a secret that was still in its overlap stops now."""
        if not 0 <= overlap_seconds <= MAX_SECRET_OVERLAP:
            raise ValueError("the overlap is between 0 seconds and 24 hours")
        secret = secrets.token_urlsafe(32)
        with write_transaction(self.engine) as conn:
            row = conn.execute(
                select(oauth_client.c.auth_method, oauth_client.c.secret_digest).where(
                    oauth_client.c.env == env, oauth_client.c.client_id == client_id
                )
            ).first()
            if row is None or row.auth_method != "client_secret":
                raise ValueError("only a client with a secret can rotate it")
            conn.execute(
                oauth_client.update()
                .where(oauth_client.c.env == env, oauth_client.c.client_id == client_id)
                .values(
                    secret_digest=digest(secret),
                    previous_secret_digest=row.secret_digest if overlap_seconds else None,
                    previous_secret_expires_at=self.clock.now() + overlap_seconds
                    if overlap_seconds
                    else None,
                )
            )
        return secret

    def get(self, env: str, client_id: str | None) -> Client | None:
        if not client_id:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                select(oauth_client).where(oauth_client.c.env == env, oauth_client.c.client_id == client_id)
            ).first()
        return _row_to_client(row) if row is not None else None

    def list(self, env: str) -> list[Client]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(oauth_client).where(oauth_client.c.env == env)).all()
        return [_row_to_client(row) for row in rows]

    def origins(self, env: str) -> frozenset[str]:
        """Origins of active clients' redirect URIs: the only ones CORS admits on token and FHIR endpoints."""
        cached = self._origins.get(env)
        if cached and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[1]
        found = frozenset().union(*(c.origins for c in self.list(env) if c.active))
        self._origins[env] = (time.monotonic(), found)
        return found

    # ---- authentication (RFC 6749 §2.3) ---------------------------------------------------------------
    def authenticate(
        self, env: str, form: Mapping[str, str], headers: Mapping[str, str], token_url: str
    ) -> Client:
        """The client a token/introspection/revocation request comes from, or `invalid_client` (401).
        Reads the client from the database and records an assertion's `jti` in a transaction of its own."""
        authenticated = self.check_credentials(env, form, headers, token_url, cached=False)
        if authenticated.jti is not None:
            with write_transaction(self.engine) as conn:
                self.confirm(conn, authenticated)
        return authenticated.client

    def check_credentials(
        self,
        env: str,
        form: Mapping[str, str],
        headers: Mapping[str, str],
        token_url: str,
        *,
        cached: bool,
    ) -> Authenticated:
        """Authenticate without writing: the caller's transaction must `confirm` the result. With `cached`,
        the client may come from this process's cache; credentials a cached client refuses are checked
        again against the stored client (it may have a new secret or new keys)."""
        if cached:
            try:
                return self._credentials(env, form, headers, token_url, cached=True)
            except InvalidClientError:
                pass
        return self._credentials(env, form, headers, token_url, cached=False)

    def still_current(self, authenticated: Authenticated) -> bool:
        """Whether a cached client is unchanged in the database (checked before a grant's error is
        answered, so that a client changed elsewhere is never told more than a stored one would be)."""
        if not authenticated.cached:
            return True
        with self.engine.connect() as conn:
            current = conn.execute(_IS_UNCHANGED, _unchanged_params(authenticated.client)).first()
        if current is None:
            self.forget(authenticated.client.env, authenticated.client.client_id)
        return current is not None

    def _credentials(
        self,
        env: str,
        form: Mapping[str, str],
        headers: Mapping[str, str],
        token_url: str,
        *,
        cached: bool,
    ) -> Authenticated:
        basic = _basic_credentials(headers.get("authorization"))
        assertion_type = form.get("client_assertion_type")
        if basic is not None:
            client_id, secret = basic
            client, hit = self._active(env, client_id, cached)
            self._check_secret(client, secret)
            if form.get("client_id") not in (None, client_id):
                raise client_error("client_id does not match the authenticated client")
            return Authenticated(client, cached=hit)
        if assertion_type is not None:
            if assertion_type != ASSERTION_TYPE:
                raise client_error("unsupported client_assertion_type")
            return self._check_assertion(
                env, form.get("client_assertion", ""), form.get("client_id"), token_url, cached
            )
        client, hit = self._active(env, form.get("client_id"), cached)
        if "client_secret" in form:
            self._check_secret(client, form["client_secret"])
            return Authenticated(client, cached=hit)
        if not client.public:
            raise client_error("this client must authenticate")
        return Authenticated(client, cached=hit)

    def confirm(self, conn: Connection, authenticated: Authenticated) -> None:
        """In the grant's transaction: record the assertion's `jti` (refusing a replay) and check that the
        stored client is unchanged since it was read; `StaleClientError` if it is not and it came from the
        cache, `invalid_client` if it was read from the database for this request."""
        client = authenticated.client
        if authenticated.jti is None:
            if not authenticated.cached:
                return  # read from the database in this request: nothing to re-check
            if conn.execute(_IS_UNCHANGED, _unchanged_params(client)).first() is None:
                self._stale(authenticated)
            return
        recorded = conn.execute(_RECORD_JTI[conn.dialect.name], self._jti_params(authenticated)).first()
        if recorded is None:
            self.refused(conn, authenticated)

    def jti_guard(self, authenticated: Authenticated) -> tuple[Any, dict[str, Any], tuple[str, ...]]:
        """`confirm` of an assertion as an `INSERT ... RETURNING` (PostgreSQL) with its parameters, for a
        grant to run as a CTE of its own insert: one statement, one round trip. No row: see `refused`.
        Third, the parameters that name the row it locks (the `jti`'s key), for batches to sort by."""
        return _RECORD_JTI["postgresql"], self._jti_params(authenticated), _JTI_KEY

    def refused(self, conn: Connection, authenticated: Authenticated) -> NoReturn:
        """After the `jti` insert returned no row: the client changed (`StaleClientError`, or
        `invalid_client` when it was read for this request) or the `jti` was used before (a replay)."""
        if conn.execute(_IS_UNCHANGED, _unchanged_params(authenticated.client)).first() is None:
            self._stale(authenticated)
        raise client_error("this client assertion was already used (jti replay)")

    def _jti_params(self, authenticated: Authenticated) -> dict[str, Any]:
        client = authenticated.client
        return {
            **_unchanged_params(client),
            "jti_env": client.env,
            "jti_client_id": client.client_id,
            "jti": authenticated.jti,
            "jti_expires_at": authenticated.jti_expires_at,
            "jti_now": self.clock.now(),
        }

    @staticmethod
    def unchanged_check(authenticated: Authenticated) -> ClientCheck | None:
        """The condition `confirm` checks with a `SELECT`, for a grant to evaluate in a query of its own
        on the client's row (a `jti` still needs `confirm`)."""
        if authenticated.cached and authenticated.jti is None:
            return ClientCheck(_UNCHANGED, _unchanged_params(authenticated.client))
        return None

    def _stale(self, authenticated: Authenticated) -> NoReturn:
        client = authenticated.client
        self.forget(client.env, client.client_id)
        if authenticated.cached:
            raise StaleClientError(client.client_id)
        raise client_error("unknown or inactive client")

    def _active(self, env: str, client_id: str | None, cached: bool) -> tuple[Client, bool]:
        """The active client and whether it came from the cache."""
        if not client_id:
            raise client_error("unknown or inactive client")
        if cached:
            hit = self._clients.get((env, client_id))
            if hit is not None and time.monotonic() - hit[0] < _CLIENT_CACHE_SECONDS:
                return hit[1], True
        client = self.get(env, client_id)
        if client is None or not client.active:
            self.forget(env, client_id)
            raise client_error("unknown or inactive client")
        with self._lock:
            if len(self._clients) >= _CLIENT_CACHE_SIZE:
                self._clients.clear()
            self._clients[(env, client_id)] = (time.monotonic(), client)
        return client, False

    def _check_secret(self, client: Client, secret: str) -> None:
        expected = client.secret_digest or ""
        previous = client.previous_secret_digest or ""
        in_overlap = (client.previous_secret_expires_at or 0) > self.clock.now()
        # Always compare both, also for clients without a secret, so timing does not tell them apart.
        given = digest(secret)
        ok = hmac.compare_digest(given, expected.rjust(64, "0"))
        ok_previous = hmac.compare_digest(given, previous.rjust(64, "0"))
        if not (ok or (ok_previous and in_overlap and previous)) or client.auth_method != "client_secret":
            raise client_error("client authentication failed")

    def _check_assertion(
        self, env: str, assertion: str, claimed_id: str | None, token_url: str, cached: bool
    ) -> Authenticated:
        """RFC 7523 §3 / SMART Backend Services "Authenticating to the Token endpoint"."""
        # Read `iss` without trusting it, only to find the keys the signature must verify with.
        issuer = _peek_claim(assertion, "iss")
        client, hit = self._active(env, issuer if isinstance(issuer, str) else None, cached)
        if claimed_id not in (None, client.client_id) or client.auth_method != "private_key_jwt":
            raise client_error("client authentication failed")
        try:
            token = jwt.decode(assertion, self._keyset(client), registry=_ASSERTION_REGISTRY)
        except (JoseError, ValueError) as exc:
            raise client_error("client assertion signature is not valid") from exc
        claims = token.claims
        now = self.clock.now()
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        exp = claims.get("exp")
        if claims.get("iss") != client.client_id or claims.get("sub") != client.client_id:
            raise client_error("iss and sub must be the client_id")
        if token_url not in audiences:
            raise client_error("aud must be the token endpoint URL")
        if not isinstance(exp, int) or exp <= now or exp > now + MAX_ASSERTION_LIFETIME + 5:
            raise client_error("exp must be in the future and at most five minutes ahead")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise client_error("jti is required")
        return Authenticated(client, jti=jti, jti_expires_at=exp, cached=hit)

    def _keyset(self, client: Client) -> KeySet:
        if client.jwks:
            keyset = self._keysets.get(client.jwks)
            if keyset is None:
                keyset = KeySet.import_key_set(json.loads(client.jwks))
                with self._lock:
                    if len(self._keysets) >= _CLIENT_CACHE_SIZE:
                        self._keysets.clear()
                    self._keysets[client.jwks] = keyset
            return keyset
        url = client.jwks_url or ""
        cached = self._jwks_urls.get(url)
        if cached is None or time.monotonic() - cached[0] > _JWKS_URL_CACHE_SECONDS:
            try:
                response = off_loop(httpx.get, url, timeout=5.0, follow_redirects=False)
                response.raise_for_status()
                cached = (time.monotonic(), response.json())
            except (httpx.HTTPError, ValueError) as exc:
                raise client_error("the client's JWKS URL could not be read") from exc
            self._jwks_urls[url] = cached
        return KeySet.import_key_set(cached[1])  # type: ignore[arg-type]


def _check_urls(redirect_uris: Sequence[str], privacy_policy_url: str | None) -> None:
    for uri in redirect_uris:
        parts = urlsplit(uri)
        if not parts.scheme or parts.fragment or (parts.scheme in ("http", "https") and not parts.netloc):
            raise ValueError(f"redirect URI {uri!r} must be absolute and without a fragment")
    if privacy_policy_url and urlsplit(privacy_policy_url).scheme not in ("https", "http"):
        raise ValueError("the privacy policy must be an http(s) URL")  # it becomes a link on the consent page


# The stored row is still the client as it was authenticated: active, same method, secrets, keys and
# scopes (the values as stored, so a change by any process, through any code path, is seen). Built once with
# bind parameters (`_unchanged_params`), so that the statements using it are compiled once per process.
_c = oauth_client.c
_UNCHANGED: ColumnElement[bool] = and_(
    _c.client_id == bindparam("uc_client_id", type_=String()),
    _c.env == bindparam("uc_env", type_=String()),
    _c.status == "active",
    _c.auth_method == bindparam("uc_auth_method", type_=String()),
    _c.secret_digest.is_not_distinct_from(bindparam("uc_secret_digest", type_=String())),
    _c.previous_secret_digest.is_not_distinct_from(bindparam("uc_previous_secret_digest", type_=String())),
    _c.previous_secret_expires_at.is_not_distinct_from(
        bindparam("uc_previous_secret_expires_at", type_=BigInteger())
    ),
    _c.jwks.is_not_distinct_from(bindparam("uc_jwks", type_=Text())),
    _c.jwks_url.is_not_distinct_from(bindparam("uc_jwks_url", type_=String())),
    _c.scopes == bindparam("uc_scopes", type_=Text()),
)
_IS_UNCHANGED = select(literal(1)).where(_UNCHANGED)


def _unchanged_params(client: Client) -> dict[str, Any]:
    return {
        "uc_client_id": client.client_id,
        "uc_env": client.env,
        "uc_auth_method": client.auth_method,
        "uc_secret_digest": client.secret_digest,
        "uc_previous_secret_digest": client.previous_secret_digest,
        "uc_previous_secret_expires_at": client.previous_secret_expires_at,
        "uc_jwks": client.jwks,
        "uc_jwks_url": client.jwks_url,
        "uc_scopes": client.scopes,
    }


def _record_jti(dialect: Any) -> Any:
    """Insert the `jti` if the client is unchanged; over an expired record of the same `jti`, replace it.
    Returns no row for a replay (an unexpired record exists) or a changed client."""
    j = oauth_assertion_jti
    values = select(
        bindparam("jti_env", type_=String()),
        bindparam("jti_client_id", type_=String()),
        bindparam("jti", type_=String()),
        bindparam("jti_expires_at", type_=BigInteger()),
    ).where(exists().where(_UNCHANGED))
    statement = dialect.insert(j).from_select(["env", "client_id", "jti", "expires_at"], values)
    # RETURNING, not the row count: psycopg reports -1 for an INSERT ... SELECT ... ON CONFLICT.
    return statement.on_conflict_do_update(
        index_elements=[j.c.env, j.c.client_id, j.c.jti],
        set_={"expires_at": statement.excluded.expires_at},
        where=j.c.expires_at < bindparam("jti_now", type_=BigInteger()),
    ).returning(j.c.jti)


_RECORD_JTI = {"postgresql": _record_jti(postgresql), "sqlite": _record_jti(sqlite)}
_JTI_KEY = ("jti_env", "jti_client_id", "jti")


def _peek_claim(assertion: str, name: str) -> object:
    try:
        payload = assertion.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return None
    return data.get(name) if isinstance(data, dict) else None


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise client_error("malformed Basic credentials") from exc
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise client_error("malformed Basic credentials")
    # RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
    return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))
