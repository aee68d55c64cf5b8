"""Consent grants: the member's decision (member, app, scopes, time, expiry), kept apart from tokens.

Tokens point at their grant; revoking the grant (by the member, or on refresh-token or code reuse) revokes
every token issued under it: the authorization server's token store listens (`revoked_listeners`, wired by
the composition root), so this domain needs nothing of OAuth.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, select, update

from openpayer.clock import Clock
from openpayer.db import write_transaction
from openpayer.members.models import consent_grant


@dataclass(frozen=True, slots=True)
class Grant:
    id: int
    env: str
    member_id: int
    client_id: str
    patient_id: str
    scope: str
    created_at: int
    expires_at: int
    revoked_at: int | None

    def active(self, now: int) -> bool:
        return self.revoked_at is None and self.expires_at > now


class GrantStore:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock
        # Called in the revoking transaction with (conn, grant_id): what else ends with the grant (tokens).
        self.revoked_listeners: list[Callable[[Connection, int], None]] = []

    def create(
        self,
        conn: Connection,
        *,
        env: str,
        member_id: int,
        client_id: str,
        patient_id: str,
        scope: str,
        expires_at: int,
    ) -> int:
        new_id = conn.execute(
            consent_grant.insert().values(
                env=env,
                member_id=member_id,
                client_id=client_id,
                patient_id=patient_id,
                scope=scope,
                created_at=self.clock.now(),
                expires_at=expires_at,
            )
        ).inserted_primary_key[0]  # type: ignore[index]
        return int(new_id)

    def get(self, conn: Connection, grant_id: int) -> Grant | None:
        row = conn.execute(select(consent_grant).where(consent_grant.c.id == grant_id)).first()
        return Grant(**row._mapping) if row is not None else None

    def for_member(self, env: str, member_id: int) -> list[Grant]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(consent_grant).where(
                    consent_grant.c.env == env, consent_grant.c.member_id == member_id
                )
            ).all()
        return [Grant(**row._mapping) for row in rows]

    def revoke(self, env: str, grant_id: int) -> None:
        with write_transaction(self.engine) as conn:
            grant = self.get(conn, grant_id)
            if grant is not None and grant.env == env:
                self.revoke_in(conn, grant_id)

    def revoke_in(self, conn: Connection, grant_id: int) -> None:
        """Revoke the grant in the caller's transaction, and everything issued under it."""
        conn.execute(
            update(consent_grant)
            .where(consent_grant.c.id == grant_id, consent_grant.c.revoked_at.is_(None))
            .values(revoked_at=self.clock.now())
        )
        for listener in self.revoked_listeners:
            listener(conn, grant_id)
