"""Monitoring accounts: a member account an organization manages solely for its health checks.

The inactivity policy asks seasonal apps for a scheduled synthetic sign-in and a light API call
(docs/policy.md, "Health checks"). That sign-in needs a member account, and no real member's. So an
organization creates, per application and environment, a **monitoring account**: a member account of that
environment bound to a new, empty synthetic Patient (tagged `HTEST`, "test health data"; no name, no
identifiers, nothing else). Its tokens reach that Patient's compartment only, like any member's, so it cannot
reach real members' records. Its sign-ins and calls count as activity like any other.

The password is random and shown once; a new one can be issued (the old one stops). `is_monitoring` lets a
report (the CMS usage metrics) or the console tell these accounts from members.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, select, tuple_
from sqlalchemy.exc import IntegrityError

from openpayer.db import write_transaction
from openpayer.portal.applications import ApplicationService
from openpayer.portal.errors import Conflict, NotFound
from openpayer.portal.interfaces import Clock
from openpayer.portal.models import portal_monitoring_account

# FHIR R4 Meta.tag from v3 ActReason: "HTEST — test health data".
SYNTHETIC_TAG = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
    "code": "HTEST",
    "display": "test health data",
}


class MemberAccounts(Protocol):
    """The members domain's store (`openpayer.members.accounts.MemberStore`)."""

    def create(self, env: str, username: str, password: str, patient_id: str) -> Any: ...

    def set_password(self, env: str, member_id: int, password: str) -> None: ...

    def disable_in(self, conn: Connection, env: str, member_id: int) -> None: ...


class SyntheticPatients(Protocol):
    """Creates an empty synthetic Patient in an environment; its id (wired to the FHIR service)."""

    def __call__(self, env: str, resource: dict[str, Any]) -> str: ...


@dataclass(frozen=True, slots=True)
class MonitoringAccount:
    id: int
    application_id: int
    env: str
    username: str
    member_id: int
    patient_id: str
    created_by: int
    created_at: int


@dataclass(frozen=True, slots=True)
class NewPassword:
    """What the developer sees once."""

    account: MonitoringAccount
    password: str


class MonitoringService:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        applications: ApplicationService,
        members: MemberAccounts,
        patients: SyntheticPatients,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.applications = applications
        self.members = members
        self.patients = patients

    def create(self, account_id: int, application_id: int, env: str) -> NewPassword:
        """A monitoring account for the application in `env`, with its password (shown once)."""
        application = self.applications.for_member(account_id, application_id)
        subscription = self.applications.subscription(application.id, env)
        if subscription is None or subscription.status != "active":
            raise Conflict(f"the application has no active {env} subscription")
        if self.get(application_id, env) is not None:
            raise Conflict(f"the application already has a {env} monitoring account")
        username = f"monitor-{application_id}-{env}"
        password = secrets.token_urlsafe(18)
        patient_id = self.patients(env, {"resourceType": "Patient", "meta": {"tag": [SYNTHETIC_TAG]}})
        try:
            member = self.members.create(env, username, password, patient_id)
        except IntegrityError as exc:
            raise Conflict(f"the member name {username} is taken in {env}") from exc
        now = self.clock.now()
        try:
            with write_transaction(self.engine) as conn:
                conn.execute(
                    portal_monitoring_account.insert().values(
                        application_id=application_id,
                        env=env,
                        username=username,
                        member_id=int(member.id),
                        patient_id=patient_id,
                        created_by=account_id,
                        created_at=now,
                    )
                )
        except IntegrityError as exc:  # two requests at once: the loser's member cannot sign in
            self.members.set_password(env, int(member.id), secrets.token_urlsafe(32))
            raise Conflict(f"the application already has a {env} monitoring account") from exc
        found = self.get(application_id, env)
        assert found is not None
        return NewPassword(found, password)

    def new_password(self, account_id: int, application_id: int, env: str) -> NewPassword:
        """A fresh password for the monitoring account (the old one stops working), shown once."""
        self.applications.for_member(account_id, application_id)
        found = self.get(application_id, env)
        if found is None:
            raise NotFound(f"the application has no {env} monitoring account")
        password = secrets.token_urlsafe(18)
        self.members.set_password(env, found.member_id, password)
        return NewPassword(found, password)

    def retire_in(self, conn: Connection, pairs: Iterable[tuple[int, str]]) -> None:
        """In the caller's transaction: the monitoring accounts of these (application, environment) pairs
        can no longer sign in (their subscription is removed). The rows stay, so reports still know their
        synthetic Patients."""
        pairs = list(pairs)
        if not pairs:
            return
        t = portal_monitoring_account
        rows = conn.execute(
            select(t.c.env, t.c.member_id).where(tuple_(t.c.application_id, t.c.env).in_(pairs))
        )
        for env, member_id in rows.all():
            self.members.disable_in(conn, env, member_id)

    def get(self, application_id: int, env: str) -> MonitoringAccount | None:
        return next((m for m in self.of_application(application_id) if m.env == env), None)

    def of_application(self, application_id: int) -> list[MonitoringAccount]:
        t = portal_monitoring_account
        with self.engine.connect() as conn:
            rows = conn.execute(select(t).where(t.c.application_id == application_id).order_by(t.c.env))
            return [_account(r) for r in rows]

    def every(self) -> list[MonitoringAccount]:
        """Every monitoring account (the console labels them)."""
        t = portal_monitoring_account
        with self.engine.connect() as conn:
            return [_account(r) for r in conn.execute(select(t).order_by(t.c.id))]

    def is_monitoring(self, env: str, *, patient_id: str | None = None, member_id: int | None = None) -> bool:
        """Whether a Patient (or a member account) of `env` is a monitoring account's, for reports."""
        return bool(self.monitoring_patients(env) & {patient_id}) or (
            member_id is not None and member_id in self.monitoring_members(env)
        )

    def monitoring_patients(self, env: str) -> frozenset[str]:
        """Every monitoring account's synthetic Patient id in `env` (a report excludes them in one go)."""
        t = portal_monitoring_account
        with self.engine.connect() as conn:
            return frozenset(conn.execute(select(t.c.patient_id).where(t.c.env == env)).scalars())

    def monitoring_members(self, env: str) -> frozenset[int]:
        t = portal_monitoring_account
        with self.engine.connect() as conn:
            return frozenset(conn.execute(select(t.c.member_id).where(t.c.env == env)).scalars())


def _account(row: Any) -> MonitoringAccount:
    return MonitoringAccount(
        row.id,
        row.application_id,
        row.env,
        row.username,
        row.member_id,
        row.patient_id,
        row.created_by,
        row.created_at,
    )
