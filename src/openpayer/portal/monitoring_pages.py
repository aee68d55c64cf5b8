"""The application's monitoring accounts in the developer portal (`/portal/apps/{id}/monitoring`).

A member of the application's organization creates one monitoring account per environment the application
is subscribed to, and can issue a new password; the password is shown once, in the response to the POST
(`Cache-Control: no-store`, as every portal page), never in a URL. The service (`monitoring.py`) checks the
membership again.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from openpayer.accounts.people import Person
from openpayer.portal.area_pages import Route
from openpayer.portal.monitoring import MonitoringService
from openpayer.portal.pages import DeveloperPages
from openpayer.portal.web import Session

Who = tuple[Session, Person]


class MonitoringPages(DeveloperPages):
    def install(self, app: FastAPI) -> None:
        routes: list[Route] = [
            ("GET", "/portal/apps/{app_id:int}/monitoring", self.monitoring, False),
            ("POST", "/portal/apps/{app_id:int}/monitoring/{env}", self.monitoring_create, False),
            ("POST", "/portal/apps/{app_id:int}/monitoring/{env}/password", self.monitoring_password, False),
        ]
        self.install_routes(app, routes)

    @property
    def service(self) -> MonitoringService:
        return self.portal.monitoring

    async def monitoring(self, request: Request, who: Who, app_id: int) -> Response:
        session, person = who
        application = self.portal.applications.for_member(person.id, app_id)
        accounts = {a.env: a for a in self.service.of_application(app_id)}
        return self.render(
            request,
            "monitoring.html",
            session=session,
            person=person,
            application=application,
            subscriptions=self.portal.applications.subscriptions(app_id),
            accounts=accounts,
            origin=self.origin(request),
        )

    async def monitoring_create(self, request: Request, who: Who, app_id: int, env: str) -> Response:
        created = self.service.create(who[1].id, app_id, env)
        return self._shown(request, who, app_id, created.account.username, created.password, env)

    async def monitoring_password(self, request: Request, who: Who, app_id: int, env: str) -> Response:
        renewed = self.service.new_password(who[1].id, app_id, env)
        return self._shown(request, who, app_id, renewed.account.username, renewed.password, env)

    def _shown(
        self, request: Request, who: Who, app_id: int, username: str, password: str, env: str
    ) -> Response:
        session, person = who
        return self.render(
            request,
            "monitoring_password.html",
            session=session,
            person=person,
            application=self.portal.applications.get(app_id),
            env=env,
            username=username,
            password=password,
            origin=self.origin(request),
        )
