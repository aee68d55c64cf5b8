"""Installs incident response on the application: the breach-alert webhook and the console's pages."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from openpayer.config import Settings
from openpayer.incidents.breach import MAX_BODY
from openpayer.incidents.console import IncidentPages
from openpayer.incidents.services import Incidents
from openpayer.portal.interfaces import Clock
from openpayer.portal.services import Portal
from openpayer.portal.web import Area
from openpayer.web.threads import run_blocking

WEBHOOK_PATH = "/security/alerts"


def install(app: FastAPI, incidents: Incidents, portal: Portal, settings: Settings, clock: Clock) -> None:
    async def breach_alert(request: Request) -> Response:
        """`POST /security/alerts`: a signed breach alert (docs/security.md, "Breach alerts")."""
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                break  # kept (truncated) and refused with 413
        address = request.client.host if request.client else None
        outcome = await run_blocking(incidents.breach.receive, body, request.headers, address)
        return JSONResponse(outcome.body, status_code=outcome.status)

    app.add_route(WEBHOOK_PATH, breach_alert, methods=["POST"], include_in_schema=False)
    area = Area(
        "/admin",
        "op_admin",
        settings.resolved_secret_key,
        idle=settings.portal_session_idle,
        max_age=settings.portal_session_max_age,
        secure=settings.auth_cookie_secure,
    )
    IncidentPages(
        portal,
        portal.people,
        portal.notifier,
        area,
        clock,
        settings.resolved_secret_key,
        settings.public_base_url,
        incidents=incidents,
    ).install(app)
