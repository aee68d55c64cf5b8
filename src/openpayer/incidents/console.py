"""The console's incident-response pages (`/admin/incidents`, `/admin/risk`, `/admin/breach-alerts`).

They share the console's sign-in, CSRF and refusal pages (`portal.console.ConsolePages`); each handler
parses the form, calls an incident-response service (which checks the permission again and audits the
action) and renders. Reading needs `incidents:manage` or `audit:read`; every change `incidents:manage`, and
suspend/restore/rotate also the portal's `subscriptions:suspend` / `subscriptions:rotate`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from openpayer.incidents.service import ACTIONS, SEVERITIES, STATUSES
from openpayer.incidents.services import Incidents
from openpayer.portal.area_pages import Handler
from openpayer.portal.console import ConsolePages, Staff
from openpayer.portal.errors import Invalid
from openpayer.portal.staff import Permission
from openpayer.portal.web import client_address, redirect


def when(seconds: int | None) -> str:
    if seconds is None:
        return ""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _ids(value: object) -> list[int]:
    parts = str(value or "").replace(",", " ").split()
    if not all(p.isdigit() for p in parts):
        raise Invalid("give subscription ids as numbers, separated by spaces or commas", "subscriptions")
    return [int(p) for p in parts]


def _int(value: object, field: str) -> int:
    text = str(value or "").strip()
    if not text.isdigit():
        raise Invalid(f"choose a {field}", field)
    return int(text)


class IncidentPages(ConsolePages):
    def __init__(self, *args: Any, incidents: Incidents) -> None:
        super().__init__(*args)
        self.incidents = incidents

    def install(self, app: FastAPI) -> None:
        routes: list[tuple[str, str, Handler]] = [
            ("GET", "/admin/incidents", self.incident_list),
            ("POST", "/admin/incidents", self.incident_create),
            ("GET", "/admin/incidents/{incident_id:int}", self.incident_page),
            ("GET", "/admin/incidents/{incident_id:int}/export", self.incident_export),
            ("POST", "/admin/incidents/{incident_id:int}/note", self.incident_note),
            ("POST", "/admin/incidents/{incident_id:int}/change", self.incident_change),
            ("POST", "/admin/incidents/{incident_id:int}/link", self.incident_link),
            ("POST", "/admin/incidents/{incident_id:int}/act", self.incident_act),
            ("GET", "/admin/risk", self.risk_page),
            ("POST", "/admin/risk/{flag_id:int}/clear", self.risk_clear),
            ("POST", "/admin/risk/{flag_id:int}/incident", self.risk_incident),
            ("GET", "/admin/breach-alerts", self.breach_queue),
            ("GET", "/admin/breach-alerts/{alert_pk:int}", self.breach_page),
            ("POST", "/admin/breach-alerts/{alert_pk:int}/match", self.breach_match),
            ("POST", "/admin/breach-alerts/{alert_pk:int}/dismiss", self.breach_dismiss),
        ]
        self.install_routes(app, [(method, path, handler, False) for method, path, handler in routes])

    def page(self, request: Request, staff: Staff, template: str, **context: Any) -> Response:
        session, person, member = staff
        return self.render(
            request,
            template,
            session=session,
            person=person,
            staff=member,
            when=when,
            can_manage=member.can(Permission.INCIDENTS_MANAGE),
            **context,
        )

    # ---- incidents -----------------------------------------------------------------------------------
    async def incident_list(self, request: Request, staff: Staff) -> Response:
        status = request.query_params.get("status") or None
        if status not in (None, *STATUSES):
            status = None
        items = self.incidents.incidents.all(staff[1].id, status)
        return self.page(
            request,
            staff,
            "admin/incidents.html",
            items=items,
            filter_status=status,
            statuses=STATUSES,
            severities=SEVERITIES,
        )

    async def incident_create(self, request: Request, staff: Staff) -> Response:
        form = await request.form()
        created = self.incidents.incidents.create(
            staff[1].id,
            title=str(form.get("title", "")),
            severity=str(form.get("severity", "")),
            summary=str(form.get("summary", "")),
            subscriptions=_ids(form.get("subscriptions")),
            address=client_address(request),
        )
        return redirect(f"/admin/incidents/{created.id}")

    async def incident_page(self, request: Request, staff: Staff, incident_id: int) -> Response:
        actor = staff[1].id
        service = self.incidents.incidents
        found = service.get(actor, incident_id)
        subscriptions, organizations = service.linked(found)
        flags = self.incidents.risk.of_subscriptions(found.subscriptions)
        owner = self.portal.staff.get(found.owner_account_id) if found.owner_account_id else None
        timeline = service.timeline(actor, incident_id)
        actors = {}
        for account in {e.actor_account_id for e in timeline if e.actor_account_id is not None}:
            member = self.portal.staff.get(account)
            actors[account] = member.email if member else f"account {account}"
        return self.page(
            request,
            staff,
            "admin/incident.html",
            incident=found,
            subscriptions=subscriptions,
            organizations=organizations,
            flags=flags,
            owner=owner,
            timeline=timeline,
            actors=actors,
            statuses=STATUSES,
            severities=SEVERITIES,
            actions=ACTIONS,
        )

    async def incident_export(self, request: Request, staff: Staff, incident_id: int) -> Response:
        data = self.incidents.incidents.export(staff[1].id, incident_id, client_address(request))
        return Response(
            json.dumps(data, indent=2, sort_keys=True, default=str),
            media_type="application/json",
            headers={
                "Content-Disposition": f'attachment; filename="incident-{incident_id}.json"',
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )

    async def incident_note(self, request: Request, staff: Staff, incident_id: int) -> Response:
        form = await request.form()
        self.incidents.incidents.note(
            staff[1].id, incident_id, str(form.get("body", "")), client_address(request)
        )
        return redirect(f"/admin/incidents/{incident_id}#timeline")

    async def incident_change(self, request: Request, staff: Staff, incident_id: int) -> Response:
        form = await request.form()
        field = str(form.get("field", ""))
        if field not in ("status", "severity", "owner_account_id"):
            raise Invalid("change the status, the severity or the owner", "field")
        value = str(form.get(field, ""))
        if field == "owner_account_id" and value == "me":
            value = str(staff[1].id)
        self.incidents.incidents.change(staff[1].id, incident_id, field, value, client_address(request))
        return redirect(f"/admin/incidents/{incident_id}")

    async def incident_link(self, request: Request, staff: Staff, incident_id: int) -> Response:
        form = await request.form()
        kind = str(form.get("kind", ""))
        target = _int(form.get("target_id"), kind or "subscription")
        self.incidents.incidents.link(staff[1].id, incident_id, kind, target, client_address(request))
        return redirect(f"/admin/incidents/{incident_id}")

    async def incident_act(self, request: Request, staff: Staff, incident_id: int) -> Response:
        form = await request.form()
        self.incidents.incidents.act(
            staff[1].id,
            incident_id,
            str(form.get("action", "")),
            _int(form.get("subscription_id"), "subscription"),
            str(form.get("reason", "")),
            client_address(request),
        )
        return redirect(f"/admin/incidents/{incident_id}#timeline")

    # ---- at risk -------------------------------------------------------------------------------------
    async def risk_page(self, request: Request, staff: Staff) -> Response:
        self.incidents.incidents.can_read(staff[1].id)
        return self.page(
            request,
            staff,
            "admin/risk.html",
            raised=self.incidents.risk.raised(),
            inactive=self.incidents.risk.inactive_at_risk(),
            severities=SEVERITIES,
        )

    async def risk_clear(self, request: Request, staff: Staff, flag_id: int) -> Response:
        form = await request.form()
        self.incidents.risk.clear(staff[1].id, flag_id, str(form.get("note", "")), client_address(request))
        return redirect("/admin/risk")

    async def risk_incident(self, request: Request, staff: Staff, flag_id: int) -> Response:
        form = await request.form()
        created = self.incidents.incidents.from_flag(
            staff[1].id, flag_id, str(form.get("severity", "high")), client_address(request)
        )
        return redirect(f"/admin/incidents/{created.id}")

    # ---- breach alerts -------------------------------------------------------------------------------
    async def breach_queue(self, request: Request, staff: Staff) -> Response:
        actor = staff[1].id
        breach = self.incidents.breach
        return self.page(
            request,
            staff,
            "admin/breach_alerts.html",
            queue=breach.queue(actor),
            recent=breach.recent(actor),
            rejected=breach.rejected(actor),
        )

    async def breach_page(self, request: Request, staff: Staff, alert_pk: int) -> Response:
        alert = self.incidents.breach.get(staff[1].id, alert_pk)
        candidates = self.incidents.breach.candidates(alert) if alert.status == "unmatched" else []
        return self.page(request, staff, "admin/breach_alert.html", alert=alert, candidates=candidates)

    async def breach_match(self, request: Request, staff: Staff, alert_pk: int) -> Response:
        form = await request.form()
        organization = _int(form.get("organization_id"), "organization")
        self.incidents.breach.match(staff[1].id, alert_pk, organization, client_address(request))
        return redirect(f"/admin/breach-alerts/{alert_pk}")

    async def breach_dismiss(self, request: Request, staff: Staff, alert_pk: int) -> Response:
        form = await request.form()
        self.incidents.breach.dismiss(
            staff[1].id, alert_pk, str(form.get("note", "")), client_address(request)
        )
        return redirect("/admin/breach-alerts")
