"""The apps connected to a member's data, and disconnecting one (the member's connected-apps page).

An app is connected while one of the member's consent grants to it is active (not revoked, not expired).
Every authorization makes a new grant, so one app may hold several: the page shows one entry per app with
what the grants together allow, the first grant's date ("since") and the last use (the newest of: a FHIR
read of the member's data by the app, from the audit log; a token issued to it under these grants).

Revoking an app revokes all of the member's active grants to it in one transaction; the grants' listeners
revoke every access and refresh token issued under them (`GrantStore.revoked_listeners`), so the app's
next request with any of them is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from openpayer.db import write_transaction
from openpayer.members.accounts import Member
from openpayer.members.consent import Grant
from openpayer.oauth.directory import AppProfile
from openpayer.oauth.models import oauth_token
from openpayer.oauth.scopes import FHIR_USER, OFFLINE, OPENID, describe, parse_scopes
from openpayer.security.audit import AuditEvent

if TYPE_CHECKING:
    from openpayer.oauth.service import AuthServer


@dataclass(frozen=True, slots=True)
class Connection:
    client_id: str
    name: str
    developer: str
    reads: tuple[str, ...]  # what the app may read, in plain language
    identity: bool  # it learns who the member is (openid / fhirUser)
    offline: bool  # it keeps access after the member leaves it (refresh tokens)
    since: int
    until: int  # when the last of its grants ends, unless revoked before
    last_used: int | None
    profile: AppProfile | None  # what the developer portal knows of the app (None: operator-registered)


def _active(server: AuthServer, env: str, member: Member) -> list[Grant]:
    now = server.clock.now()
    return [g for g in server.grants.for_member(env, member.id) if g.active(now)]


def connected_apps(server: AuthServer, env: str, member: Member) -> list[Connection]:
    """One entry per app with an active grant from this member, most recently used first."""
    by_client: dict[str, list[Grant]] = {}
    for grant in _active(server, env, member):
        by_client.setdefault(grant.client_id, []).append(grant)
    if not by_client:
        return []
    issued = _last_token_issued(server, [g.id for gs in by_client.values() for g in gs])
    accessed = server.audit.last_access(env, member.id, member.patient_id)
    found = []
    for client_id, grants in by_client.items():
        client = server.clients.get(env, client_id)
        reads: dict[str, None] = {}
        identity = offline = False
        for grant in grants:
            scopes = parse_scopes(grant.scope)
            for resource in scopes.resources:
                reads.setdefault(describe(resource), None)
            identity = identity or scopes.has(OPENID) or scopes.has(FHIR_USER)
            offline = offline or scopes.has(OFFLINE)
        uses = [t for g in grants if (t := issued.get(g.id)) is not None]
        if client_id in accessed:
            uses.append(accessed[client_id])
        found.append(
            Connection(
                client_id=client_id,
                name=client.name if client is not None else client_id,
                developer=client.developer if client is not None else "",
                reads=tuple(reads),
                identity=identity,
                offline=offline,
                since=min(g.created_at for g in grants),
                until=max(g.expires_at for g in grants),
                last_used=max(uses) if uses else None,
                profile=server.directory.profile(env, client_id),
            )
        )
    return sorted(found, key=lambda c: (-(c.last_used or c.since), c.name))


def disconnect(server: AuthServer, env: str, member: Member, client_id: str) -> bool:
    """Revoke every active grant of this member to the app, and with them its tokens; False when the app
    was not connected (nothing changes, so a repeated click is harmless)."""
    grants = [g for g in _active(server, env, member) if g.client_id == client_id]
    if not grants:
        return False
    with write_transaction(server.engine) as conn:
        for grant in grants:
            server.grants.revoke_in(conn, grant.id)
    server.audit.record(
        env,
        AuditEvent.CONSENT_REVOKE,
        200,
        client_id=client_id,
        member_id=member.id,
        patient_id=member.patient_id,
    )
    return True


def _last_token_issued(server: AuthServer, grant_ids: list[int]) -> dict[int, int]:
    with server.engine.connect() as conn:
        rows = conn.execute(
            select(oauth_token.c.grant_id, func.max(oauth_token.c.issued_at))
            .where(oauth_token.c.grant_id.in_(grant_ids))
            .group_by(oauth_token.c.grant_id)
        ).all()
    return {int(row[0]): int(row[1]) for row in rows}
