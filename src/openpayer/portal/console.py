"""The staff console's pages (`/admin/`): sign-in with a required second factor, the review queue and the
review of one production request (approve, ask for changes, reject).

Staff sign in with their account's password, then TOTP; a staff account without TOTP must enrol before
anything else. Every page checks the permission it needs through the portal services (which check it again
and audit the action): a signed-in person without it gets 403.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from openpayer.accounts.events import SignInArea
from openpayer.accounts.people import Person
from openpayer.portal.account_pages import AccountPages
from openpayer.portal.area_pages import Route
from openpayer.portal.console_time import when
from openpayer.portal.errors import Forbidden
from openpayer.portal.questionnaire import VERSIONS
from openpayer.portal.staff import Permission, StaffMember
from openpayer.portal.web import Session, client_address, redirect

Staff = tuple[Session, Person, StaffMember]


class ConsolePages(AccountPages):
    """Console templates are named in full (`portal/...`, `admin/...`)."""

    template_prefix = ""
    enrolment_salt = "admin.totp-enrolment"
    signin_area = SignInArea.ADMIN
    enrolment_reason = "Staff accounts need two-step sign-in."
    enrolment_completes_sign_in = True

    def render(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        if "/" not in template:  # the shared sign-in pages name their template alone
            template = "portal/" + template
        return super().render(request, template, status, **context)

    def install(self, app: FastAPI) -> None:
        routes: list[Route] = [
            *self.account_routes(),
            *self.recovery_routes(),
            ("GET", "/admin/", self.queue, False),
            ("GET", "/admin/requests/{request_id:int}", self.request_page, False),
            ("POST", "/admin/requests/{request_id:int}/decide", self.decide, False),
        ]
        self.install_routes(app, routes)

    def who(self, request: Request) -> Staff | None:
        """A fully signed-in staff member: session, second factor passed, active staff role."""
        found = self.session_person(request)
        if found is None or not found[0].mfa:
            return None
        session, person = found
        member = self.portal.staff.get(person.id)
        if member is None or member.status != "active":
            return None
        return session, person, member

    _staff = who

    def account_context(self, who: Any) -> dict[str, Any]:
        session, person, member = who
        return {"session": session, "person": person, "staff": member}

    def totp_required(self, person: Person) -> str | None:
        """Staff always sign in with a second factor."""
        return "Staff accounts need two-step sign-in: it stays on. You can replace the authenticator."

    def refusal(self, person: Person) -> tuple[int, str, bool] | None:
        member = self.portal.staff.get(person.id)
        if member is None or member.status != "active":
            # The same answer for a wrong password and for an account that is not staff.
            return 401, "The e-mail address or password is wrong.", True
        return None

    def may_continue(self, person: Person) -> bool:
        return self.portal.staff.get(person.id) is not None

    def may_reset(self, person: Person) -> bool:
        member = self.portal.staff.get(person.id)
        return member is not None and member.status == "active"

    # ---- review ------------------------------------------------------------------------------------
    async def queue(self, request: Request, staff: Staff) -> Response:
        session, person, member = staff
        items = self.portal.reviews.queue(person.id)
        return self.render(
            request, "admin/queue.html", session=session, person=person, staff=member, items=items
        )

    async def request_page(self, request: Request, staff: Staff, request_id: int) -> Response:
        session, person, member = staff
        self.portal.staff.require(person.id, Permission.APPS_READ)
        production = self.portal.reviews.get(request_id)
        application = self.portal.applications.get(production.application_id)
        answer = self.portal.questionnaire.latest(application.id)
        return self.render(
            request,
            "admin/request.html",
            session=session,
            person=person,
            staff=member,
            sandbox=self.portal.oversight.sandbox_record(person.id, application.id),
            when=when,
            production=production,
            overdue=production.overdue(self.clock.now()),
            application=application,
            org=self.portal.organizations.get(application.organization_id),
            questions=VERSIONS[answer.version] if answer else (),
            answers=answer.answers if answer else {},
            thread=self.portal.reviews.thread(request_id),
            can_review=member.can(Permission.APPS_REVIEW),
        )

    async def decide(self, request: Request, staff: Staff, request_id: int) -> Response:
        _, person, _ = staff
        form = await request.form()
        action, message = str(form.get("action", "")), str(form.get("message", ""))
        address = client_address(request)
        reviews = self.portal.reviews
        if action == "approve":
            production, _ = reviews.approve(person.id, request_id, message, address)
            summary = "Production access is approved. Reveal the production credentials in the portal (once)."
        elif action == "request_changes":
            production = reviews.request_changes(person.id, request_id, message, address)
            summary = "The reviewers ask for changes before production access."
        elif action == "reject":
            production = reviews.reject(person.id, request_id, message, address)
            summary = "The production request was rejected."
        else:
            raise Forbidden("unknown decision")
        application = self.portal.applications.get(production.application_id)
        self.notifier.to_developers(
            application.organization_id,
            application=application.name,
            subject=production.state.value.replace("_", " "),
            summary=summary,
            body=message.strip(),
            link=f"{self.origin(request)}/portal/apps/{application.id}",
        )
        return redirect(f"/admin/requests/{request_id}")
