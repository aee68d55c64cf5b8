"""What the console's sections share (organizations, audit, staff, reports): they install their routes behind
the console's guard (session with second factor, active staff, CSRF on every POST, `PortalError` as a
readable page) and render with the signed-in person, so that each section stays a small module registered with
one line in `portal/routes.py`. Permissions are checked by the portal services each handler calls.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import Response

from openpayer.portal.area_pages import Handler
from openpayer.portal.console import ConsolePages, Staff
from openpayer.portal.console_time import when, when_micros

Route = tuple[str, str, Handler]


class ConsoleSection:
    def __init__(self, console: ConsolePages) -> None:
        self.console = console
        self.portal = console.portal
        self.clock = console.clock

    def routes(self) -> list[Route]:
        raise NotImplementedError

    def install(self, app: FastAPI) -> None:
        router = APIRouter(include_in_schema=False)
        for method, path, handler in self.routes():
            router.add_api_route(path, self.console.guard(handler, method, False), methods=[method])
        app.include_router(router)

    def render(
        self, request: Request, staff: Staff, template: str, status: int = 200, **context: Any
    ) -> Response:
        session, person, member = staff
        return self.console.render(
            request,
            template,
            status,
            session=session,
            person=person,
            staff=member,
            when=when,
            when_micros=when_micros,
            **context,
        )


async def form_text(request: Request, name: str) -> str:
    value = (await request.form()).get(name, "")
    return value if isinstance(value, str) else ""
