"""The staff console's pages (`/admin/`): sign-in with a required second factor, the review queue and the
review of one production request (approve, ask for changes, reject).

Staff sign in with their account's password, then TOTP; a staff account without TOTP must enrol before
anything else. Every page checks the permission it needs through the portal services (which check it again
and audit the action): a signed-in person without it gets 403.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from itsdangerous import BadSignature
from starlette.requests import Request
from starlette.responses import Response

from openpayer.portal.console_time import when
from openpayer.portal.errors import Forbidden, Invalid, PortalError
from openpayer.portal.pages import AreaPages, Handler
from openpayer.portal.people import Person
from openpayer.portal.questionnaire import VERSIONS
from openpayer.portal.staff import Permission, StaffMember
from openpayer.portal.web import Session, client_address, csrf_ok, redirect

Staff = tuple[Session, Person, StaffMember]


class ConsolePages(AreaPages):
    """Console templates are named in full (`portal/...`, `admin/...`)."""

    enrolment_salt = "openpayer.admin.totp-enrolment"

    def install(self, app: FastAPI) -> None:
        router = APIRouter(include_in_schema=False)
        routes: list[tuple[str, str, Handler, bool]] = [
            ("GET", "/admin/signin", self.signin_form, True),
            ("POST", "/admin/signin", self.signin, True),
            ("GET", "/admin/mfa", self.mfa_form, True),
            ("POST", "/admin/mfa", self.mfa, True),
            ("GET", "/admin/totp", self.totp_form, True),
            ("POST", "/admin/totp", self.totp, True),
            ("POST", "/admin/signout", self.signout, True),
            ("GET", "/admin/", self.queue, False),
            ("GET", "/admin/requests/{request_id:int}", self.request_page, False),
            ("POST", "/admin/requests/{request_id:int}/decide", self.decide, False),
        ]
        for method, path, handler, public in routes:
            router.add_api_route(path, self._guard(handler, method, public), methods=[method])
        app.include_router(router)

    def _staff(self, request: Request) -> Staff | None:
        """A fully signed-in staff member: session, second factor passed, active staff role."""
        session = self.area.session(request, self.clock.now())
        if session is None or not session.mfa:
            return None
        person = self.people.get(session.account_id)
        member = self.portal.staff.get(session.account_id)
        if person is None or person.disabled or member is None or member.status != "active":
            return None
        return session, person, member

    def _guard(self, handler: Handler, method: str, public: bool) -> Handler:
        async def guarded(request: Request) -> Response:
            if method == "POST":
                form = await request.form()
                if not csrf_ok(request, form.get("csrf_token")):
                    return self.message(
                        request, "Please try again", "The form expired; reload the page.", status=403
                    )
            staff = None if public else self._staff(request)
            if not public and staff is None:
                return redirect("/admin/signin")
            try:
                return await handler(request, staff, **request.path_params)
            except PortalError as error:
                person = staff[1] if staff else None
                return self.message(
                    request,
                    "Not allowed" if error.status == 403 else "That did not work",
                    error.message,
                    status=error.status,
                    person=person,
                )

        guarded.__name__ = handler.__name__
        return guarded

    # ---- sign-in -----------------------------------------------------------------------------------
    async def signin_form(self, request: Request, staff: Any) -> Response:
        return self.render(request, "portal/signin.html")

    async def signin(self, request: Request, staff: Any) -> Response:
        form = await request.form()
        email = str(form.get("email", ""))
        person = self.people.authenticate(email, str(form.get("password", "")))
        member = self.portal.staff.get(person.id) if person else None
        if person is None or member is None or member.status != "active":
            # The same answer for a wrong password and for an account that is not staff.
            return self.render(
                request,
                "portal/signin.html",
                401,
                error="The e-mail address or password is wrong.",
                email=email,
            )
        response = redirect("/admin/mfa" if person.has_totp else "/admin/totp")
        self.area.start(response, request, Session(person.id, self.clock.now(), mfa=False))
        return response

    def _half_signed_in(self, request: Request) -> tuple[Session, Person] | None:
        session = self.area.session(request, self.clock.now())
        person = self.people.get(session.account_id) if session else None
        if session is None or person is None or self.portal.staff.get(person.id) is None:
            return None
        return session, person

    async def mfa_form(self, request: Request, staff: Any) -> Response:
        if self._half_signed_in(request) is None:
            return redirect("/admin/signin")
        return self.render(request, "portal/mfa.html")

    async def mfa(self, request: Request, staff: Any) -> Response:
        half = self._half_signed_in(request)
        if half is None:
            return redirect("/admin/signin")
        session, person = half
        form = await request.form()
        if not self.people.verify_totp(person, str(form.get("code", ""))):
            return self.render(
                request, "portal/mfa.html", 401, error="That code is not right; try the current one."
            )
        response = redirect("/admin/")
        self.area.start(response, request, Session(person.id, session.signed_in_at, mfa=True))
        return response

    async def totp_form(self, request: Request, staff: Any) -> Response:
        half = self._half_signed_in(request)
        if half is None:
            return redirect("/admin/signin")
        _, person = half
        if person.has_totp:
            return redirect("/admin/mfa")
        secret = self.people.new_totp_secret()
        return self.render(
            request,
            "portal/totp.html",
            reason="Staff accounts need two-step sign-in.",
            secret=secret,
            uri=self.people.provisioning_uri(person, secret),
            sealed=self._enrolment.dumps({"a": person.id, "s": secret}),
        )

    async def totp(self, request: Request, staff: Any) -> Response:
        half = self._half_signed_in(request)
        if half is None:
            return redirect("/admin/signin")
        session, person = half
        if person.has_totp:
            return redirect("/admin/mfa")  # enrolment cannot replace a factor without passing it
        form = await request.form()
        try:
            data = self._enrolment.loads(str(form.get("sealed", "")))
        except BadSignature:
            data = None
        if not isinstance(data, dict) or data.get("a") != person.id:
            raise Invalid("the enrolment form was altered; start again")
        if not self.people.confirm_totp(person, str(data["s"]), str(form.get("code", ""))):
            return self.render(
                request,
                "portal/totp.html",
                422,
                error="That code is not right.",
                reason="",
                secret=data["s"],
                uri=self.people.provisioning_uri(person, str(data["s"])),
                sealed=str(form.get("sealed", "")),
            )
        response = redirect("/admin/")
        self.area.start(response, request, Session(person.id, session.signed_in_at, mfa=True))
        return response

    async def signout(self, request: Request, staff: Any) -> Response:
        response = redirect("/admin/signin")
        self.area.end(response, request)
        return response

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
