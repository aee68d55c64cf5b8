"""The developer portal's pages (`/portal/`): account, organizations, applications, questionnaire, terms and
the production request. Thin: each handler checks the session and CSRF, calls a portal service, renders.

Every POST checks the CSRF token; refusals from the services (`PortalError`) render as a readable page with
their status (422, 403, 404, 409), never a 500. Credentials appear only in the response to the POST that
created them (`Cache-Control: no-store`), never in a URL.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, FastAPI
from itsdangerous import BadSignature, URLSafeSerializer
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from openpayer.portal.applications import ApplicationDetails
from openpayer.portal.business_days import CHICAGO
from openpayer.portal.errors import Forbidden, Invalid, PortalError
from openpayer.portal.interfaces import Clock
from openpayer.portal.notifications import Notifier
from openpayer.portal.organizations import MemberRole, OrganizationDetails
from openpayer.portal.people import PeopleService, Person
from openpayer.portal.questionnaire import CURRENT_QUESTIONNAIRE, VERSIONS
from openpayer.portal.services import Portal
from openpayer.portal.validation import LOGO_MAX_BYTES
from openpayer.portal.web import Area, Session, client_address, csrf_ok, redirect
from openpayer.portal.workflow import State

ORGANIZATION_FIELDS = [
    ("legal_name", "Legal name", "text", "organization"),
    ("website", "Website (https://)", "url", "url"),
    ("domain", "Domain (example.com)", "text", "off"),
    ("address", "Postal address", "textarea", "street-address"),
    ("technical_contact_name", "Technical contact: name", "text", "name"),
    ("technical_contact_email", "Technical contact: e-mail", "email", "email"),
    ("security_contact_name", "Security contact: name", "text", "off"),
    ("security_contact_email", "Security contact: e-mail", "email", "off"),
]
CLIENT_TYPES = [
    ("public", "Public (a browser or mobile app; PKCE, no secret)"),
    ("confidential_secret", "Confidential, with a client secret (a server)"),
    ("private_key_jwt", "Confidential, with signed assertions (private_key_jwt; give a JWKS URL)"),
]
SECTIONS = [("privacy", "Privacy"), ("security", "Security practices"), ("monitoring", "Monitoring")]

Handler = Callable[..., Awaitable[Response]]


def due_text(ts: int) -> str:
    """A due instant (the start of the day after the due day) as the last day it is still in time."""
    last = datetime.fromtimestamp(ts - 1, CHICAGO)
    return last.strftime("%A %-d %B %Y, end of day (Central time)")


class AreaPages:
    """What the developer portal and the staff console share: their services, the TOTP enrolment signer,
    absolute links and rendering. `template_prefix` is where an area's templates live."""

    template_prefix = ""
    enrolment_salt = ""

    def __init__(
        self,
        portal: Portal,
        people: PeopleService,
        notifier: Notifier,
        area: Area,
        clock: Clock,
        secret_key: str,
        public_base_url: str | None,
    ) -> None:
        self.portal = portal
        self.people = people
        self.notifier = notifier
        self.area = area
        self.clock = clock
        self.public_base_url = public_base_url
        self._enrolment = URLSafeSerializer(secret_key, salt=self.enrolment_salt)

    def origin(self, request: Request) -> str:
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        return f"{request.url.scheme}://{request.url.netloc}"

    def render(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        return self.area.render(request, self.template_prefix + template, status, due=due_text, **context)

    def message(
        self, request: Request, heading: str, *lines: str, status: int = 200, **context: Any
    ) -> Response:
        return self.area.render(
            request,
            "portal/message.html",
            status,
            due=due_text,
            heading=heading,
            lines=list(lines),
            **context,
        )


class DeveloperPages(AreaPages):
    template_prefix = "portal/"
    enrolment_salt = "openpayer.portal.totp-enrolment"

    def signed_in(self, request: Request) -> tuple[Session, Person] | None:
        session = self.area.session(request, self.clock.now())
        if session is None:
            return None
        person = self.people.get(session.account_id)
        if person is None or person.disabled or (person.has_totp and not session.mfa):
            return None
        return session, person

    def refuse(self, request: Request, error: PortalError, **context: Any) -> Response:
        return self.message(request, "That did not work", error.message, status=error.status, **context)

    # ---- install -----------------------------------------------------------------------------------
    def install(self, app: FastAPI) -> None:
        router = APIRouter(include_in_schema=False)
        routes: list[tuple[str, str, Handler]] = [
            ("GET", "/portal/", self.home),
            ("GET", "/portal/signup", self.signup_form),
            ("POST", "/portal/signup", self.signup),
            ("GET", "/portal/verify", self.verify),
            ("GET", "/portal/signin", self.signin_form),
            ("POST", "/portal/signin", self.signin),
            ("GET", "/portal/mfa", self.mfa_form),
            ("POST", "/portal/mfa", self.mfa),
            ("POST", "/portal/signout", self.signout),
            ("GET", "/portal/totp", self.totp_form),
            ("POST", "/portal/totp", self.totp),
            ("GET", "/portal/organizations/new", self.organization_form),
            ("POST", "/portal/organizations/new", self.organization_create),
            ("GET", "/portal/organizations/{org_id:int}", self.organization),
            ("POST", "/portal/organizations/{org_id:int}/invite", self.invite),
            ("GET", "/portal/organizations/{org_id:int}/terms", self.terms_form),
            ("POST", "/portal/organizations/{org_id:int}/terms", self.terms_accept),
            ("GET", "/portal/invitations/{token}", self.invitation),
            ("POST", "/portal/invitations/{token}", self.invitation_accept),
            ("GET", "/portal/organizations/{org_id:int}/apps/new", self.app_form),
            ("POST", "/portal/organizations/{org_id:int}/apps/new", self.app_register),
            ("GET", "/portal/apps/{app_id:int}", self.application),
            ("POST", "/portal/apps/{app_id:int}/subscriptions/{sub_id:int}/reveal", self.reveal),
            ("POST", "/portal/apps/{app_id:int}/subscriptions/{sub_id:int}/rotate", self.rotate),
            ("GET", "/portal/apps/{app_id:int}/questionnaire", self.questionnaire_form),
            ("POST", "/portal/apps/{app_id:int}/questionnaire", self.questionnaire),
            ("POST", "/portal/apps/{app_id:int}/production", self.production),
            ("POST", "/portal/requests/{request_id:int}/reply", self.reply),
        ]
        for method, path, handler in routes:
            router.add_api_route(path, self._guard(handler, method), methods=[method])
        app.include_router(router)

    def _guard(self, handler: Handler, method: str) -> Handler:
        """CSRF on every POST; a `PortalError` becomes a readable page; sign-in required unless public."""
        public = handler.__name__ in {
            "signup_form",
            "signup",
            "verify",
            "signin_form",
            "signin",
            "mfa_form",
            "mfa",
            "home",
            "signout",
        }

        async def guarded(request: Request) -> Response:
            if method == "POST":
                form = await request.form()
                if not csrf_ok(request, form.get("csrf_token")):
                    return self.message(
                        request,
                        "Please try again",
                        "The form expired; reload the page and submit it again.",
                        status=403,
                    )
            who = self.signed_in(request)
            if not public and who is None:
                return redirect("/portal/signin")
            try:
                return await handler(request, who, **request.path_params)
            except PortalError as error:
                return self.refuse(request, error, person=who[1] if who else None)

        guarded.__name__ = handler.__name__
        return guarded

    # ---- account -----------------------------------------------------------------------------------
    async def home(self, request: Request, who: tuple[Session, Person] | None) -> Response:
        if who is None:
            return self.message(
                request,
                "OpenPayer developer portal",
                "Register apps that connect members to their health plan data (the Patient Access API).",
                link=("/portal/signin", "Sign in or create an account"),
            )
        session, person = who
        organizations = self.portal.organizations.for_account(person.id)
        return self.render(
            request, "dashboard.html", session=session, person=person, organizations=organizations
        )

    async def signup_form(self, request: Request, who: Any) -> Response:
        return self.render(request, "signup.html")

    async def signup(self, request: Request, who: Any) -> Response:
        form = await request.form()
        email, password = str(form.get("email", "")), str(form.get("password", ""))
        try:
            person = self.people.create(email, password)
        except PortalError as error:
            return self.render(request, "signup.html", error.status, error=error.message, email=email)
        link = f"{self.origin(request)}/portal/verify?token={self.people.verification_token(person)}"
        self.notifier.verify_email(person.email, link)
        return self.message(request, "Check your e-mail", f"We sent a verification link to {person.email}.")

    async def verify(self, request: Request, who: Any) -> Response:
        person = self.people.verify_email(request.query_params.get("token", ""))
        if person is None:
            return self.message(
                request, "This link does not work", "It is invalid or older than 24 hours.", status=400
            )
        return self.message(request, "E-mail address verified", link=("/portal/signin", "Sign in"))

    async def signin_form(self, request: Request, who: Any) -> Response:
        return self.render(request, "signin.html")

    async def signin(self, request: Request, who: Any) -> Response:
        form = await request.form()
        email = str(form.get("email", ""))
        person = self.people.authenticate(email, str(form.get("password", "")))
        if person is None:
            return self.render(
                request, "signin.html", 401, error="The e-mail address or password is wrong.", email=email
            )
        if not person.email_verified:
            return self.render(
                request,
                "signin.html",
                403,
                error="Verify your e-mail address first: open the link we sent.",
                email=email,
            )
        response = redirect("/portal/mfa" if person.has_totp else "/portal/")
        self.area.start(response, request, Session(person.id, self.clock.now(), mfa=False))
        return response

    async def mfa_form(self, request: Request, who: Any) -> Response:
        if self.area.session(request, self.clock.now()) is None:
            return redirect("/portal/signin")
        return self.render(request, "mfa.html")

    async def mfa(self, request: Request, who: Any) -> Response:
        session = self.area.session(request, self.clock.now())
        person = self.people.get(session.account_id) if session else None
        if session is None or person is None:
            return redirect("/portal/signin")
        form = await request.form()
        if not self.people.verify_totp(person, str(form.get("code", ""))):
            return self.render(request, "mfa.html", 401, error="That code is not right; try the current one.")
        response = redirect("/portal/")
        self.area.start(response, request, Session(person.id, session.signed_in_at, mfa=True))
        return response

    async def signout(self, request: Request, who: Any) -> Response:
        response = redirect("/portal/signin")
        self.area.end(response, request)
        return response

    async def totp_form(self, request: Request, who: tuple[Session, Person]) -> Response:
        session, person = who
        secret = self.people.new_totp_secret()
        return self.render(
            request,
            "totp.html",
            session=session,
            person=person,
            reason="Two-step sign-in is required before production access.",
            secret=secret,
            uri=self.people.provisioning_uri(person, secret),
            sealed=self._enrolment.dumps({"a": person.id, "s": secret}),
        )

    async def totp(self, request: Request, who: tuple[Session, Person]) -> Response:
        session, person = who
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
                "totp.html",
                422,
                session=session,
                person=person,
                error="That code is not right.",
                reason="",
                secret=data["s"],
                uri=self.people.provisioning_uri(person, str(data["s"])),
                sealed=str(form.get("sealed", "")),
            )
        response = redirect("/portal/")
        self.area.start(response, request, Session(person.id, session.signed_in_at, mfa=True))
        return response

    # ---- organizations -----------------------------------------------------------------------------
    async def organization_form(self, request: Request, who: tuple[Session, Person]) -> Response:
        session, person = who
        return self.render(
            request,
            "organization_form.html",
            session=session,
            person=person,
            fields=ORGANIZATION_FIELDS,
            values={},
        )

    async def organization_create(self, request: Request, who: tuple[Session, Person]) -> Response:
        session, person = who
        form = await request.form()
        values = {name: str(form.get(name, "")) for name, *_ in ORGANIZATION_FIELDS}
        try:
            org = self.portal.organizations.create(person.id, OrganizationDetails(**values))
        except Invalid as error:
            return self.render(
                request,
                "organization_form.html",
                error.status,
                session=session,
                person=person,
                fields=ORGANIZATION_FIELDS,
                values=values,
                error=error.message,
            )
        return redirect(f"/portal/organizations/{org.id}")

    async def organization(self, request: Request, who: tuple[Session, Person], org_id: int) -> Response:
        session, person = who
        membership = self.portal.organizations.require_member(person.id, org_id)
        members = self.portal.organizations.members(person.id, org_id)
        emails = {m.account_id: p.email for m in members if (p := self.people.get(m.account_id))}
        terms = self.portal.terms.current()
        return self.render(
            request,
            "organization.html",
            session=session,
            person=person,
            org=self.portal.organizations.get(org_id),
            applications=self.portal.applications.of_organization(person.id, org_id),
            members=members,
            emails=emails,
            is_owner=membership.role is MemberRole.OWNER,
            invitations=self.portal.organizations.pending_invitations(person.id, org_id),
            terms=terms,
            acceptance=self.portal.terms.acceptance_of_current(org_id),
        )

    async def invite(self, request: Request, who: tuple[Session, Person], org_id: int) -> Response:
        _, person = who
        form = await request.form()
        invitation, token = self.portal.organizations.invite(
            person.id, org_id, str(form.get("email", "")), str(form.get("role", "developer"))
        )
        org = self.portal.organizations.get(org_id)
        self.notifier.invitation(
            invitation.email,
            organization=org.legal_name,
            inviter=person.email,
            role=invitation.role.value,
            link=f"{self.origin(request)}/portal/invitations/{token}",
        )
        return redirect(f"/portal/organizations/{org_id}")

    async def invitation(self, request: Request, who: tuple[Session, Person], token: str) -> Response:
        session, person = who
        invitation = self.portal.organizations.invitation(token)
        org = self.portal.organizations.get(invitation.organization_id)
        return self.render(
            request,
            "invitation.html",
            session=session,
            person=person,
            invitation=invitation,
            org=org,
            token=token,
        )

    async def invitation_accept(self, request: Request, who: tuple[Session, Person], token: str) -> Response:
        _, person = who
        if not person.email_verified:
            raise Forbidden("verify your e-mail address first")
        membership = self.portal.organizations.accept(token, person.id, person.email)
        return redirect(f"/portal/organizations/{membership.organization_id}")

    async def terms_form(self, request: Request, who: tuple[Session, Person], org_id: int) -> Response:
        session, person = who
        self.portal.organizations.require_member(person.id, org_id)
        return self.render(
            request,
            "terms.html",
            session=session,
            person=person,
            org=self.portal.organizations.get(org_id),
            terms=self.portal.terms.current(),
        )

    async def terms_accept(self, request: Request, who: tuple[Session, Person], org_id: int) -> Response:
        _, person = who
        form = await request.form()
        if form.get("agree") != "yes":
            raise Invalid("tick the box to accept the terms", "agree")
        self.portal.terms.accept(person.id, org_id, str(form.get("version", "")), client_address(request))
        return redirect(f"/portal/organizations/{org_id}")

    # ---- applications ------------------------------------------------------------------------------
    async def app_form(self, request: Request, who: tuple[Session, Person], org_id: int) -> Response:
        session, person = who
        self.portal.organizations.require_member(person.id, org_id)
        return self.render(
            request,
            "app_form.html",
            session=session,
            person=person,
            org=self.portal.organizations.get(org_id),
            values={},
            client_types=CLIENT_TYPES,
        )

    async def app_register(self, request: Request, who: tuple[Session, Person], org_id: int) -> Response:
        session, person = who
        form = await request.form()
        values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
        logo: bytes | None = None
        upload = form.get("logo")
        if isinstance(upload, UploadFile) and upload.filename:
            logo = await upload.read(LOGO_MAX_BYTES + 1)
        details = ApplicationDetails(
            name=values.get("name", ""),
            description=values.get("description", ""),
            website=values.get("website", ""),
            privacy_policy_url=values.get("privacy_policy_url", ""),
            terms_url=values.get("terms_url", ""),
            support_email=values.get("support_email", ""),
            redirect_uris=tuple(values.get("redirect_uris", "").splitlines()),
            client_type=values.get("client_type", ""),
            jwks_url=values.get("jwks_url", ""),
            scopes=tuple(values.get("scopes", "").split()),
            backend_access=values.get("backend_access") == "yes",
        )
        try:
            application, credentials = self.portal.applications.register(person.id, org_id, details, logo)
        except Invalid as error:
            return self.render(
                request,
                "app_form.html",
                error.status,
                session=session,
                person=person,
                org=self.portal.organizations.get(org_id),
                values=values,
                client_types=CLIENT_TYPES,
                error=error.message,
            )
        return self.render(
            request,
            "credentials.html",
            session=session,
            person=person,
            application=application,
            credentials=credentials,
        )

    async def application(self, request: Request, who: tuple[Session, Person], app_id: int) -> Response:
        session, person = who
        application = self.portal.applications.for_member(person.id, app_id)
        requests = self.portal.reviews.for_application(person.id, app_id)
        open_or_done = any(r.state is not State.REJECTED for r in requests)
        subscriptions = self.portal.applications.subscriptions(app_id)
        risk = self.portal.risk.for_developers([s.id for s in subscriptions]) if self.portal.risk else {}
        return self.render(
            request,
            "application.html",
            session=session,
            person=person,
            application=application,
            subscriptions=subscriptions,
            risk=risk,
            answer=self.portal.questionnaire.latest(app_id),
            acceptance=self.portal.terms.acceptance_of_current(application.organization_id),
            requests=requests,
            threads={r.id: self.portal.reviews.thread(r.id) for r in requests},
            can_request=not open_or_done,
        )

    async def reveal(
        self, request: Request, who: tuple[Session, Person], app_id: int, sub_id: int
    ) -> Response:
        session, person = who
        application = self.portal.applications.for_member(person.id, app_id)
        if self.portal.applications.subscription_by_id(sub_id).application_id != app_id:
            raise Forbidden("that subscription belongs to another application")
        credentials = self.portal.applications.reveal_credentials(person.id, sub_id)
        return self.render(
            request,
            "credentials.html",
            session=session,
            person=person,
            application=application,
            credentials=credentials,
        )

    async def rotate(
        self, request: Request, who: tuple[Session, Person], app_id: int, sub_id: int
    ) -> Response:
        session, person = who
        application = self.portal.applications.for_member(person.id, app_id)
        if self.portal.applications.subscription_by_id(sub_id).application_id != app_id:
            raise Forbidden("that subscription belongs to another application")
        form = await request.form()
        raw = str(form.get("overlap_hours", "0")).strip() or "0"
        if not raw.isdigit():
            raise Invalid("the overlap is a whole number of hours from 0 to 24", "overlap")
        credentials = self.portal.applications.rotate_secret(person.id, sub_id, int(raw) * 3600)
        return self.render(
            request,
            "credentials.html",
            session=session,
            person=person,
            application=application,
            credentials=credentials,
        )

    async def questionnaire_form(
        self, request: Request, who: tuple[Session, Person], app_id: int
    ) -> Response:
        session, person = who
        application = self.portal.applications.for_member(person.id, app_id)
        answer = self.portal.questionnaire.latest(app_id)
        return self.render(
            request,
            "questionnaire.html",
            session=session,
            person=person,
            application=application,
            questions=VERSIONS[CURRENT_QUESTIONNAIRE],
            sections=SECTIONS,
            values=answer.answers if answer and answer.current else {},
        )

    async def questionnaire(self, request: Request, who: tuple[Session, Person], app_id: int) -> Response:
        session, person = who
        application = self.portal.applications.for_member(person.id, app_id)
        form = await request.form()
        questions = VERSIONS[CURRENT_QUESTIONNAIRE]
        answers = {q.id: str(form.get(q.id, "")) for q in questions}
        try:
            self.portal.questionnaire.answer(person.id, app_id, answers)
        except Invalid as error:
            return self.render(
                request,
                "questionnaire.html",
                error.status,
                session=session,
                person=person,
                application=application,
                questions=questions,
                sections=SECTIONS,
                values=answers,
                error=error.message + (f" ({error.field.replace('_', ' ')})" if error.field else ""),
            )
        return redirect(f"/portal/apps/{app_id}")

    async def production(self, request: Request, who: tuple[Session, Person], app_id: int) -> Response:
        session, person = who
        if not (person.has_totp and session.mfa):
            raise Forbidden("set up two-step sign-in before requesting production access")
        form = await request.form()
        production = self.portal.reviews.submit(person.id, app_id, str(form.get("note", "")))
        application = self.portal.applications.get(app_id)
        self.notifier.to_reviewers(
            application=application.name,
            subject="submitted",
            summary=f"{application.name} asks for production access; due {due_text(production.due_at)}.",
            body=str(form.get("note", "")).strip(),
            link=f"{self.origin(request)}/admin/requests/{production.id}",
        )
        return redirect(f"/portal/apps/{app_id}")

    async def reply(self, request: Request, who: tuple[Session, Person], request_id: int) -> Response:
        _, person = who
        form = await request.form()
        message = str(form.get("message", ""))
        current = self.portal.reviews.get(request_id)
        if current.state is State.CHANGES_REQUESTED:
            self.portal.reviews.resubmit(person.id, request_id, message)
        else:
            self.portal.reviews.comment(person.id, request_id, message, staff=False)
        application = self.portal.applications.get(current.application_id)
        self.notifier.to_reviewers(
            application=application.name,
            subject="the developer answered",
            summary=f"The developer of {application.name} wrote in production request {request_id}.",
            body=message.strip(),
            link=f"{self.origin(request)}/admin/requests/{request_id}",
        )
        return redirect(f"/portal/apps/{current.application_id}")
