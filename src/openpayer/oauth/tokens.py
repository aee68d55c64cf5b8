"""Access and refresh tokens: opaque 256-bit random strings, stored only as SHA-256 digests.

Checking a bearer token on a FHIR request is one indexed lookup (joined with its client and consent grant so
that suspension and revocation take effect), cached in-process for a few seconds (`auth_token_cache_seconds`).
Revocations made by this process clear the cache at once; a client's suspension, restore or removal clears
every process's cache within a second (`oauth/revocation.py`); other revocations are seen by other
processes within the cache period.
"""

from __future__ import annotations

import functools
import hashlib
import operator
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    Engine,
    and_,
    bindparam,
    false,
    insert,
    literal,
    null,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.sql.elements import ColumnElement

from openpayer.clock import Clock
from openpayer.db import DriverStatement, GroupCommit
from openpayer.members.models import consent_grant
from openpayer.oauth.clients import ClientCheck
from openpayer.oauth.models import oauth_client, oauth_token

_CACHE_SIZE = 10_000


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: int
    digest: str
    env: str
    kind: str
    client_id: str
    grant_id: int | None
    code_digest: str | None
    member_id: int | None
    patient_id: str | None
    scope: str
    issued_at: int
    expires_at: int
    revoked: bool
    rotated_at: int | None
    client_active: bool
    grant_expires_at: int | None
    grant_revoked: bool
    client_current: bool = True  # the `client_check` given to `find`, evaluated on the token's client

    def active(self, now: int) -> bool:
        return (
            not self.revoked
            and self.expires_at > now
            and self.client_active
            and not self.grant_revoked
            and (self.grant_expires_at is None or self.grant_expires_at > now)
        )


class TokenStore:
    def __init__(self, engine: Engine, clock: Clock, cache_seconds: float = 5.0) -> None:
        self.engine = engine
        self.clock = clock
        self.cache_seconds = cache_seconds
        self._cache: OrderedDict[str, tuple[float, TokenInfo | None, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._epoch = 0  # raised by `forget_all`: a check read before a drop is not cached after it
        # Called in the transaction of a revocation by id (the composition root adds the revocation feed,
        # so that other processes drop their cached checks too).
        self.revoked_listeners: list[Callable[[Connection], None]] = []

    def issue(
        self,
        conn: Connection,
        *,
        env: str,
        kind: str,
        client_id: str,
        scope: str,
        expires_at: int,
        grant_id: int | None = None,
        member_id: int | None = None,
        patient_id: str | None = None,
        code_digest: str | None = None,
    ) -> str:
        return self.issue_many(
            conn,
            env=env,
            kinds=[(kind, expires_at)],
            client_id=client_id,
            scope=scope,
            grant_id=grant_id,
            member_id=member_id,
            patient_id=patient_id,
            code_digest=code_digest,
        )[0]

    def issue_many(
        self,
        conn: Connection,
        *,
        env: str,
        kinds: list[tuple[str, int]],
        client_id: str,
        scope: str,
        grant_id: int | None = None,
        member_id: int | None = None,
        patient_id: str | None = None,
        code_digest: str | None = None,
        rotating: int | None = None,
    ) -> list[str]:
        """New tokens of the given (kind, expires_at), in one statement; returns them in that order. With
        `rotating` (PostgreSQL only), the same statement marks that refresh token rotated, if it is not."""
        tokens = [secrets.token_urlsafe(32) for _ in kinds]
        now = self.clock.now()
        params: dict[str, Any] = {}
        for n, (token, (kind, expires_at)) in enumerate(zip(tokens, kinds, strict=True)):
            row = _token_row(
                token,
                env=env,
                kind=kind,
                client_id=client_id,
                scope=scope,
                issued_at=now,
                expires_at=expires_at,
                grant_id=grant_id,
                code_digest=code_digest,
                member_id=member_id,
                patient_id=patient_id,
            )
            params.update({f"{name}_{n}": value for name, value in row.items()})
        if rotating is not None:
            params.update(rotated_id=rotating, rotated_at=now)
        _insert_rows(len(kinds), rotating is not None).rows(conn, params)  # one statement, one round trip
        return tokens

    def issue_guarded(
        self,
        engine: Engine,
        guard: tuple[Any, dict[str, Any], tuple[str, ...]],
        *,
        env: str,
        kind: str,
        client_id: str,
        scope: str,
        expires_at: int,
    ) -> str | None:
        """A new token, written by the same statement as `guard` (an `INSERT ... RETURNING` such as
        `ClientStore.jti_guard`) and only if that returned a row; None, with nothing written, if not.
        PostgreSQL only: one statement, committed with those of the grants waiting beside it
        (`db.GroupCommit`), which are sorted by the guard's key parameters (its third part)."""
        statement, guard_params, key = guard
        token = secrets.token_urlsafe(32)
        row = _token_row(
            token,
            env=env,
            kind=kind,
            client_id=client_id,
            scope=scope,
            issued_at=self.clock.now(),
            expires_at=expires_at,
        )
        params = {**guard_params, **{f"t_{name}": value for name, value in row.items()}}
        inserted = _guarded_insert(statement, key).rows(engine, params)
        return token if inserted else None

    def find(
        self,
        conn: Connection,
        env: str,
        token: str,
        kind: str | None = None,
        client_check: ClientCheck | None = None,
    ) -> TokenInfo | None:
        """The token's record in `env` (active or not), or None. `client_check`, a condition on the
        token's client row, is evaluated in the same query (`TokenInfo.client_current`)."""
        query = _find_statement(kind is not None, client_check.condition if client_check else None)
        params = {"digest": token_digest(token), "env": env, "kind": kind}
        if client_check is not None:
            params.update(client_check.params)
        rows = query.rows(conn, params)
        return _token_info(rows[0]) if rows else None

    def cached_access(self, env: str, token: str) -> tuple[TokenInfo | None, Any] | None:
        """From the cache only: None on a miss, `(None, None)` for a known-bad token, else `(info, extra)`."""
        hit = self._cache.get(f"{env}:{token_digest(token)}")
        if hit is None or time.monotonic() - hit[0] >= self.cache_seconds:
            return None
        info = hit[1]
        if info is None or not info.active(self.clock.now()):
            return (None, None)
        return info, hit[2]

    def check_access(self, env: str, token: str) -> tuple[TokenInfo, Any] | None:
        """An active access token of `env` and the cached per-token extra (see `remember`), or None."""
        key = f"{env}:{token_digest(token)}"
        now = self.clock.now()
        hit = self._cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < self.cache_seconds:
            info = hit[1]
            return (info, hit[2]) if info is not None and info.active(now) else None
        epoch = self._epoch
        with self.engine.connect() as conn:
            info = self.find(conn, env, token, "access")
        with self._lock:
            if epoch == self._epoch:
                self._cache[key] = (time.monotonic(), info, None)
                if len(self._cache) > _CACHE_SIZE:
                    self._cache.popitem(last=False)
        return (info, None) if info is not None and info.active(now) else None

    def remember(self, env: str, token: str, extra: Any) -> None:
        """Keep derived data (e.g. the parsed scopes and SQL restriction) beside a cached token."""
        key = f"{env}:{token_digest(token)}"
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache[key] = (hit[0], hit[1], extra)

    def forget_all(self) -> None:
        with self._lock:
            self._epoch += 1
            self._cache.clear()

    # ---- revocation ------------------------------------------------------------------------------------
    def revoke_ids(self, conn: Connection, ids: Iterable[int]) -> None:
        ids = list(ids)
        if ids:
            conn.execute(update(oauth_token).where(oauth_token.c.id.in_(ids)).values(revoked=True))
            for listener in self.revoked_listeners:
                listener(conn)
        self.forget_all()

    def revoke_grant_tokens(self, conn: Connection, grant_id: int) -> None:
        """Every token issued under a consent grant (SMART: revoking access revokes its tokens). Called by
        `GrantStore.revoke_in` when the grant is revoked (the composition root registers it)."""
        conn.execute(update(oauth_token).where(oauth_token.c.grant_id == grant_id).values(revoked=True))
        self.forget_all()

    def revoke_client(self, conn: Connection, env: str, client_id: str) -> None:
        """Revoke every token and consent grant of a client (its removal): they stop working at once."""
        conn.execute(
            update(consent_grant)
            .where(consent_grant.c.client_id == client_id, consent_grant.c.revoked_at.is_(None))
            .values(revoked_at=self.clock.now())
        )
        conn.execute(
            update(oauth_token)
            .where(oauth_token.c.env == env, oauth_token.c.client_id == client_id)
            .values(revoked=True)
        )
        self.forget_all()

    def revoke_code_family(self, conn: Connection, code_digest: str, grant_id: int | None) -> None:
        """RFC 6749 §4.1.2 / RFC 9700 §4.2: a reused code revokes every token issued from it (the caller
        revokes its consent grant too)."""
        condition = oauth_token.c.code_digest == code_digest
        if grant_id is not None:
            condition = or_(condition, and_(oauth_token.c.grant_id == grant_id))
        conn.execute(update(oauth_token).where(condition).values(revoked=True))
        self.forget_all()

    def issued_from_code(self, conn: Connection, code_digest: str) -> bool:
        """Whether any token was issued from the authorization code (a redeemed code, not a spent one)."""
        found = conn.execute(
            select(oauth_token.c.id).where(oauth_token.c.code_digest == code_digest).limit(1)
        ).first()
        return found is not None

    def mark_rotated(self, conn: Connection, token_id: int) -> bool:
        """Consume a refresh token; False if it was already rotated (a reuse)."""
        done = conn.execute(_MARK_ROTATED, {"token_id": token_id, "now": self.clock.now()}).rowcount
        return bool(done)


# The statements of a grant, built once with bind parameters: SQLAlchemy then finds each compiled in its
# cache without building and hashing a new statement per request (a sixth of a refresh's CPU, py-spy).
_MARK_ROTATED = (
    update(oauth_token)
    .where(oauth_token.c.id == bindparam("token_id"), oauth_token.c.rotated_at.is_(None))
    .values(rotated_at=bindparam("now", type_=BigInteger()))
)
_ISSUED_COLUMNS = (
    "digest",
    "env",
    "kind",
    "client_id",
    "grant_id",
    "code_digest",
    "member_id",
    "patient_id",
    "scope",
    "issued_at",
    "expires_at",
)


def _token_row(
    token: str,
    *,
    env: str,
    kind: str,
    client_id: str,
    scope: str,
    issued_at: int,
    expires_at: int,
    grant_id: int | None = None,
    code_digest: str | None = None,
    member_id: int | None = None,
    patient_id: str | None = None,
) -> dict[str, Any]:
    """A new token's row, by `_ISSUED_COLUMNS` (the token itself only as its digest)."""
    return {
        "digest": token_digest(token),
        "env": env,
        "kind": kind,
        "client_id": client_id,
        "grant_id": grant_id,
        "code_digest": code_digest,
        "member_id": member_id,
        "patient_id": patient_id,
        "scope": scope,
        "issued_at": issued_at,
        "expires_at": expires_at,
    }


_FOUND_COLUMNS = ("id", *_ISSUED_COLUMNS, "revoked", "rotated_at")
_FOUND_ROW = (*_FOUND_COLUMNS, "client_active", "grant_expires_at", "grant_revoked_at", "client_current")


def _token_info(row: Any) -> TokenInfo:
    """A `_find_statement` row (`_FOUND_ROW`: the token's columns, then the four joined values)."""
    found = dict(zip(_FOUND_ROW, row, strict=True))
    return TokenInfo(
        **{name: found[name] for name in _FOUND_COLUMNS if name != "revoked"},
        revoked=bool(found["revoked"]),
        client_active=bool(found["client_active"]),
        grant_expires_at=found["grant_expires_at"],
        grant_revoked=found["grant_revoked_at"] is not None,
        client_current=bool(found["client_current"]),
    )


@functools.cache
def _insert_rows(count: int, rotating: bool = False) -> DriverStatement:
    """INSERT of `count` tokens, parameters `<column>_<n>` (`revoked` false, `rotated_at` null). As text:
    SQLAlchemy compiles a multi-row `insert().values([...])` anew on every execution ("no key"). With
    `rotating`, a PostgreSQL data-modifying CTE first marks the refresh token `:rotated_id` rotated (if it is
    not: a concurrent rotation waits for this one, then changes nothing, as in grace)."""
    names = ", ".join(_ISSUED_COLUMNS)
    rows = ", ".join(
        "(" + ", ".join(f":{name}_{n}" for name in _ISSUED_COLUMNS) + ", :revoked, NULL)"
        for n in range(count)
    )
    # Column and parameter names only: every value is a bound parameter.
    rotation = (
        "WITH rotated AS (UPDATE oauth_token SET rotated_at = :rotated_at"
        " WHERE id = :rotated_id AND rotated_at IS NULL) "
        if rotating
        else ""
    )
    statement = text(f"{rotation}INSERT INTO oauth_token ({names}, revoked, rotated_at) VALUES {rows}")  # noqa: S608
    return DriverStatement(
        statement.bindparams(bindparam("revoked", value=False, type_=Boolean())), prepared=True
    )


@functools.cache
def _guarded_insert(guard: Any, key: tuple[str, ...]) -> GroupCommit:
    """`WITH guard AS (<guard> RETURNING ...) INSERT INTO oauth_token ... SELECT ... FROM guard`: the token
    row exists only if the guard's insert returned one. Parameters `t_<column>`, typed from the table's
    columns (an `INSERT ... SELECT` of untyped parameters would be text)."""
    checked = guard.cte("guard")
    t = oauth_token.c
    values = select(
        *(bindparam(f"t_{name}", type_=t[name].type) for name in _ISSUED_COLUMNS),
        false(),
        null(),
    ).select_from(checked)
    statement = DriverStatement(
        insert(oauth_token)
        .from_select([*_ISSUED_COLUMNS, "revoked", "rotated_at"], values)
        .add_cte(checked)
        .returning(oauth_token.c.id),
        prepared=True,  # every table by a unique key: the generic plan is the custom one
    )
    return GroupCommit(statement, order=operator.itemgetter(*key))


@functools.cache
def _find_statement(by_kind: bool, client_check: ColumnElement[bool] | None) -> DriverStatement:
    """The token (by digest and env, and kind), its client's state and grant; with `client_check`, that
    condition evaluated on the client's row (a module-level condition, so the cache stays small)."""
    t, c, g = oauth_token, oauth_client, consent_grant
    current = (client_check if client_check is not None else literal(True)).label("client_current")
    query = (
        select(
            *(t.c[name] for name in _FOUND_COLUMNS),
            (c.c.status == "active").label("client_active"),
            g.c.expires_at.label("grant_expires_at"),
            g.c.revoked_at.label("grant_revoked_at"),
            current,
        )
        .select_from(t.join(c, c.c.client_id == t.c.client_id).outerjoin(g, g.c.id == t.c.grant_id))
        .where(t.c.digest == bindparam("digest"), t.c.env == bindparam("env"))
    )
    if by_kind:
        query = query.where(t.c.kind == bindparam("kind"))
    return DriverStatement(query, prepared=True)  # by the token's unique digest
