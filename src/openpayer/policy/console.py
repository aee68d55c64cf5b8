"""The inactivity policy in the staff console (`/admin/policy`): every subscription's state, last activity,
next step and its date; the notices and removals coming up; a pause with a reason and an end date; a
response recorded by staff.

Same sign-in, second factor, CSRF and error pages as the rest of the console (`portal.console`). Reading
needs `apps:read`; pausing and recording a response need `policy:manage`. Each change goes through the
policy engine (the same calls as `openpayer policy pause|respond`) and writes a staff audit row in the
transaction of the change.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response

from openpayer.config import Settings
from openpayer.policy.engine import InactivityPolicy, PolicyError, Status, parse_day
from openpayer.portal.area_pages import Route
from openpayer.portal.console import ConsolePages, Staff
from openpayer.portal.errors import Invalid, NotFound
from openpayer.portal.interfaces import Clock
from openpayer.portal.routes import console_area
from openpayer.portal.services import Portal
from openpayer.portal.staff import Permission, record_audit
from openpayer.portal.web import client_address, redirect

UPCOMING_DAYS = 30  # how far ahead the console lists notices and removals
STEP_LABELS = {
    "first_notice": "first notice to the developer",
    "second_notice": "second notice to the developer",
    "escalated": "notice to the organization's other staff",
    "removed": "removal",
    "active": "back to active",
    "resume": "the pause ends",
}


class PolicyConsole(ConsolePages):
    def __init__(self, *args: Any, policy: InactivityPolicy, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.policy = policy

    def install(self, app: FastAPI) -> None:
        routes: list[Route] = [
            ("GET", "/admin/policy", self.overview, False),
            ("GET", "/admin/policy/{subscription_id:int}", self.subscription, False),
            ("POST", "/admin/policy/{subscription_id:int}/pause", self.pause, False),
            ("POST", "/admin/policy/{subscription_id:int}/respond", self.respond, False),
        ]
        self.install_routes(app, routes)

    def _statuses(self) -> list[Status]:
        return self.policy.status()

    def _monitoring(self) -> dict[tuple[int, str], str]:
        return {(a.application_id, a.env): a.username for a in self.portal.monitoring.every()}

    async def overview(self, request: Request, staff: Staff) -> Response:
        session, person, _ = staff
        self.portal.staff.require(person.id, Permission.APPS_READ)
        statuses = self._statuses()
        today = self.policy.local_date(self.clock.now())
        horizon = today + timedelta(days=UPCOMING_DAYS)
        upcoming = sorted(
            (
                s
                for s in statuses
                if s.next_on is not None and s.next_on <= horizon and s.next_step in STEP_LABELS
            ),
            key=lambda s: (s.next_on or today, s.row.subscription_id),
        )
        return self.render(
            request,
            "admin/policy.html",
            session=session,
            person=person,
            statuses=statuses,
            upcoming=upcoming,
            horizon=horizon,
            today=today,
            labels=STEP_LABELS,
            day=self._day,
            monitoring=self._monitoring(),
        )

    async def subscription(
        self, request: Request, staff: Staff, subscription_id: int, **context: Any
    ) -> Response:
        session, person, member = staff
        self.portal.staff.require(person.id, Permission.APPS_READ)
        found = [s for s in self._statuses() if s.row.subscription_id == subscription_id]
        if not found:
            raise NotFound("no such subscription")
        status = found[0]
        return self.render(
            request,
            "admin/policy_subscription.html",
            context.pop("status_code", 200),
            session=session,
            person=person,
            item=status,
            labels=STEP_LABELS,
            day=self._day,
            transitions=self.policy.transitions(subscription_id),
            monitoring=self._monitoring().get((status.row.facts.application_id, status.row.env)),
            can_manage=member.can(Permission.POLICY_MANAGE),
            today=self.policy.local_date(self.clock.now()),
            **context,
        )

    async def pause(self, request: Request, staff: Staff, subscription_id: int) -> Response:
        _, person, _ = staff
        self.portal.staff.require(person.id, Permission.POLICY_MANAGE)
        form = await request.form()
        reason = str(form.get("reason", "")).strip()
        try:
            until = parse_day(str(form.get("until", "")).strip())
            self.policy.pause(
                subscription_id,
                until=until,
                reason=reason,
                actor=f"staff:{person.email}",
                also=self._audit(
                    request, person.id, "policy:pause", subscription_id, until=str(until), reason=reason
                ),
            )
        except PolicyError as error:
            return await self.subscription(
                request, staff, subscription_id, status_code=422, error=str(error), values=dict(form)
            )
        return redirect(f"/admin/policy/{subscription_id}")

    async def respond(self, request: Request, staff: Staff, subscription_id: int) -> Response:
        _, person, _ = staff
        self.portal.staff.require(person.id, Permission.POLICY_MANAGE)
        form = await request.form()
        note = str(form.get("note", "")).strip()[:1000]
        try:
            recorded = self.policy.respond(
                subscription_id,
                actor=f"staff:{person.email}",
                also=self._audit(request, person.id, "policy:respond", subscription_id, note=note),
            )
        except PolicyError as error:
            raise NotFound(str(error)) from error
        if not recorded:
            raise Invalid("nothing to record: the subscription is removed or paused")
        return redirect(f"/admin/policy/{subscription_id}")

    def _audit(
        self, request: Request, actor: int, action: str, subscription_id: int, **after: str
    ) -> Callable[[Connection], None]:
        def write(conn: Connection) -> None:
            record_audit(
                conn,
                at=self.clock.now(),
                actor=actor,
                action=action,
                target_type="subscription",
                target_id=subscription_id,
                after=after,
                address=client_address(request),
            )

        return write

    def _day(self, seconds: int | None) -> str:
        return "never" if seconds is None else self.policy.local_date(seconds).isoformat()


def install(app: FastAPI, portal: Portal, policy: InactivityPolicy, settings: Settings, clock: Clock) -> None:
    """The console's policy pages, on the console's session cookie (`app.py` calls this once)."""
    PolicyConsole(
        portal,
        portal.people,
        portal.notifier,
        console_area(settings, clock),
        clock,
        settings.resolved_secret_key,
        settings.public_base_url,
        policy=policy,
    ).install(app)
