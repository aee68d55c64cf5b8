"""Installs the developer portal (`/portal/`) and the staff console (`/admin/`) on the application."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from openpayer.config import Settings
from openpayer.portal.console import ConsolePages
from openpayer.portal.console_audit import AuditPages
from openpayer.portal.console_orgs import DirectoryPages
from openpayer.portal.console_reports import ReportPages
from openpayer.portal.console_staff import AdministrationPages
from openpayer.portal.interfaces import Clock
from openpayer.portal.monitoring_pages import MonitoringPages
from openpayer.portal.pages import DeveloperPages
from openpayer.portal.services import Portal
from openpayer.portal.web import Area
from openpayer.web.pages import page

AREAS = ("/portal", "/admin")


def area(settings: Settings, path: str, cookie: str, clock: Clock | None = None) -> Area:
    return Area(
        path,
        cookie,
        settings.resolved_secret_key,
        idle=settings.portal_session_idle,
        max_age=settings.portal_session_max_age,
        secure=settings.auth_cookie_secure,
        clock=clock,
    )


def console_area(settings: Settings, clock: Clock | None = None) -> Area:
    """The staff console's session, for console pages installed by the domains above the portal."""
    return area(settings, "/admin", "op_admin", clock)


def install(app: FastAPI, portal: Portal, settings: Settings, clock: Clock) -> None:
    secret = settings.resolved_secret_key
    base_url = settings.public_base_url
    developer_area = area(settings, "/portal", "op_portal", clock)
    DeveloperPages(portal, portal.people, portal.notifier, developer_area, clock, secret, base_url).install(
        app
    )
    MonitoringPages(portal, portal.people, portal.notifier, developer_area, clock, secret, base_url).install(
        app
    )
    console = ConsolePages(
        portal, portal.people, portal.notifier, console_area(settings, clock), clock, secret, base_url
    )
    console.install(app)
    DirectoryPages(console).install(app)
    AuditPages(console).install(app)
    AdministrationPages(console).install(app)
    ReportPages(console).install(app)


def is_page_path(path: str) -> bool:
    return any(path == a or path.startswith(a + "/") for a in AREAS)


def error_page(request: Request, status: int) -> Response:
    """A readable page for an unknown address or method under /portal or /admin (not FHIR's JSON)."""
    heading = "Page not found" if status == 404 else "That did not work"
    area = "/admin" if request.url.path.startswith("/admin") else "/portal"
    return page("portal/message.html", status, heading=heading, lines=[], area=area, csrf_token="")
