"""The developer portal's pages (`/portal/`): account, organizations, applications, questionnaire, terms and
the production request. Thin: each handler checks the session and CSRF, calls a portal service, renders.

Every POST checks the CSRF token; refusals from the services (`PortalError`) render as a readable page with
their status (422, 403, 404, 409), never a 500. Credentials appear only in the response to the POST that
created them (`Cache-Control: no-store`), never in a URL.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from openpayer.accounts.events import SignInArea
from openpayer.accounts.people import Person
from openpayer.portal.account_pages import AccountPages
from openpayer.portal.applications import ApplicationDetails
from openpayer.portal.area_pages import AreaPages, Handler, Route, due_text
from openpayer.portal.errors import Forbidden, Invalid, PortalError
from openpayer.portal.organizations import MemberRole, OrganizationDetails
from openpayer.portal.questionnaire import CURRENT_QUESTIONNAIRE, VERSIONS
from openpayer.portal.validation import LOGO_MAX_BYTES
from openpayer.portal.web import Session, client_address, redirect
from openpayer.portal.workflow import State

__all__ = ["AreaPages", "DeveloperPages", "Handler", "due_text"]  # AreaPages, Handler: for console modules

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


class DeveloperPages(AccountPages):
    template_prefix = "portal/"
    enrolment_salt = "portal.totp-enrolment"
    signin_area = SignInArea.PORTAL
    enrolment_reason = "Two-step sign-in is required before production access."

    def who(self, request: Request) -> tuple[Session, Person] | None:
        """A signed-in developer: a current session, second factor passed when the account has one."""
        found = self.session_person(request)
        if found is None or (found[1].has_totp and not found[0].mfa):
            return None
        return found

    def signin_url(self, request: Request) -> str:
        """An invitation followed while signed out comes back after signing in (or signing up)."""
        if request.method == "GET" and request.url.path.startswith("/portal/invitations/"):
            return f"/portal/signin?{urlencode({'next': request.url.path})}"
        return "/portal/signin"

    def signin_notice(self, next_url: str | None) -> str | None:
        if next_url and next_url.startswith("/portal/invitations/"):
            return "Sign in, or create an account, to answer the invitation."
        return None

    signed_in = who

    def refusal(self, person: Person) -> tuple[int, str, bool] | None:
        if not person.email_verified:
            return 403, "Verify your e-mail address first: open the link we sent.", False
        return None

    def enrolling(self, request: Request) -> tuple[Session, Person] | Response:
        """A signed-in developer enrols the factor from their account; replacing one needs the current
        password and code (`/portal/authenticator`)."""
        found = self.who(request)
        if found is None:
            return redirect("/portal/signin")
        return redirect("/portal/authenticator") if found[1].has_totp else found

    def totp_required(self, person: Person) -> str | None:
        """A production request needs two-step sign-in, so it stays on while the developer's organizations
        have production access or a request under review."""
        if self.portal.reviews.in_production(person.id):
            return (
                "Two-step sign-in stays on while an organization you belong to has production access or a "
                "production request under review. You can replace the authenticator instead."
            )
        return None

    def enrolment_context(self, session: Session, person: Person) -> dict[str, Any]:
        return {"session": session, "person": person}

    def show(
        self, request: Request, who: tuple[Session, Person], template: str, status: int = 200, **context: Any
    ) -> Response:
        """A page of a signed-in developer (the header names them; the view renews the session)."""
        session, person = who
        return self.render(request, template, status, session=session, person=person, **context)

    def organization_page(
        self,
        request: Request,
        who: tuple[Session, Person],
        org_id: int,
        template: str,
        status: int = 200,
        **context: Any,
    ) -> Response:
        """A page about one organization: only its members see it (403 for anyone else)."""
        self.portal.organizations.require_member(who[1].id, org_id)
        org = self.portal.organizations.get(org_id)
        return self.show(request, who, template, status, org=org, **context)

    # ---- install -----------------------------------------------------------------------------------
    def install(self, app: FastAPI) -> None:
        routes: list[Route] = [
            ("GET", "/portal/", self.home, True),
            ("GET", "/portal/signup", self.signup_form, True),
            ("POST", "/portal/signup", self.signup, True),
            ("GET", "/portal/verify", self.verify, True),
            ("GET", "/portal/verify/resend", self.resend_form, True),
            ("POST", "/portal/verify/resend", self.resend, True),
            *self.account_routes(),
            *self.recovery_routes(),
            ("GET", "/portal/organizations/new", self.organization_form, False),
            ("POST", "/portal/organizations/new", self.organization_create, False),
            ("GET", "/portal/organizations/{org_id:int}", self.organization, False),
            ("POST", "/portal/organizations/{org_id:int}/invite", self.invite, False),
            ("GET", "/portal/organizations/{org_id:int}/terms", self.terms_form, False),
            ("POST", "/portal/organizations/{org_id:int}/terms", self.terms_accept, False),
            ("GET", "/portal/invitations/{token}", self.invitation, False),
            ("POST", "/portal/invitations/{token}", self.invitation_accept, False),
            ("GET", "/portal/organizations/{org_id:int}/apps/new", self.app_form, False),
            ("POST", "/portal/organizations/{org_id:int}/apps/new", self.app_register, False),
            ("GET", "/portal/apps/{app_id:int}", self.application, False),
            ("POST", "/portal/apps/{app_id:int}/subscriptions/{sub_id:int}/reveal", self.reveal, False),
            ("POST", "/portal/apps/{app_id:int}/subscriptions/{sub_id:int}/rotate", self.rotate, False),
            ("GET", "/portal/apps/{app_id:int}/questionnaire", self.questionnaire_form, False),
            ("POST", "/portal/apps/{app_id:int}/questionnaire", self.questionnaire, False),
            ("POST", "/portal/apps/{app_id:int}/production", self.production, False),
            ("POST", "/portal/requests/{request_id:int}/reply", self.reply, False),
        ]
        self.install_routes(app, routes)

    # ---- account -----------------------------------------------------------------------------------
    async def home(self, request: Request, who: tuple[Session, Person] | None) -> Response:
        if who is None:
            return self.message(
                request,
                "OpenPayer developer portal",
                "Register apps that connect members to their health plan data (the Patient Access API).",
                link=("/portal/signin", "Sign in or create an account"),
            )
        organizations = self.portal.organizations.for_account(who[1].id)
        return self.show(request, who, "dashboard.html", organizations=organizations)

    async def signup_form(self, request: Request, who: Any) -> Response:
        next_url = self.safe_next(request.query_params.get("next"))
        return self.render(request, "signup.html", next=next_url, notice=self.signin_notice(next_url))

    async def signup(self, request: Request, who: Any) -> Response:
        form = await request.form()
        email, password = str(form.get("email", "")), str(form.get("password", ""))
        next_url = self.safe_next(form.get("next"))
        try:
            person = self.people.create(email, password)
        except PortalError as error:
            return self.render(
                request, "signup.html", error.status, error=error.message, email=email, next=next_url
            )
        self.send_verification(request, person, next_url)
        return self.message(request, "Check your e-mail", f"We sent a verification link to {person.email}.")

    def send_verification(self, request: Request, person: Person, next_url: str | None) -> None:
        query = {"token": self.people.verification_token(person), **({"next": next_url} if next_url else {})}
        self.notifier.verify_email(person.email, f"{self.origin(request)}/portal/verify?{urlencode(query)}")

    async def verify(self, request: Request, who: Any) -> Response:
        person = self.people.verify_email(request.query_params.get("token", ""))
        if person is None:
            return self.message(
                request,
                "This link does not work",
                "It is invalid or older than 24 hours.",
                status=400,
                link=("/portal/verify/resend", "Send a new link"),
            )
        signin = self._with_next("/portal/signin", self.safe_next(request.query_params.get("next")))
        return self.message(request, "E-mail address verified", link=(signin, "Sign in"))

    async def resend_form(self, request: Request, who: Any) -> Response:
        return self.render(request, "verify_resend.html")

    async def resend(self, request: Request, who: Any) -> Response:
        form = await request.form()
        address = str(form.get("email", "")).strip()
        person = self.portal.recovery.resend_verification(address, client_address(request))
        if person is not None:
            self.send_verification(request, person, None)
        return self.message(
            request,
            "Check your e-mail",
            f"If an unverified account uses {address or 'that address'}, we sent it a new verification link.",
            "The link works for 24 hours.",
        )

    # ---- organizations -----------------------------------------------------------------------------
    async def organization_form(self, request: Request, who: tuple[Session, Person]) -> Response:
        return self.show(request, who, "organization_form.html", fields=ORGANIZATION_FIELDS, values={})

    async def organization_create(self, request: Request, who: tuple[Session, Person]) -> Response:
        form = await request.form()
        values = {name: str(form.get(name, "")) for name, *_ in ORGANIZATION_FIELDS}
        try:
            org = self.portal.organizations.create(who[1].id, OrganizationDetails(**values))
        except Invalid as error:
            return self.show(
                request,
                who,
                "organization_form.html",
                error.status,
                fields=ORGANIZATION_FIELDS,
                values=values,
                error=error.message,
            )
        return redirect(f"/portal/organizations/{org.id}")

    async def organization(self, request: Request, who: tuple[Session, Person], org_id: int) -> Response:
        person = who[1]
        membership = self.portal.organizations.require_member(person.id, org_id)
        members = self.portal.organizations.members(person.id, org_id)
        emails = {m.account_id: p.email for m in members if (p := self.people.get(m.account_id))}
        return self.organization_page(
            request,
            who,
            org_id,
            "organization.html",
            applications=self.portal.applications.of_organization(person.id, org_id),
            members=members,
            emails=emails,
            is_owner=membership.role is MemberRole.OWNER,
            invitations=self.portal.organizations.pending_invitations(person.id, org_id),
            terms=self.portal.terms.current(),
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
        invitation = self.portal.organizations.invitation(token)
        org = self.portal.organizations.get(invitation.organization_id)
        return self.show(request, who, "invitation.html", invitation=invitation, org=org, token=token)

    async def invitation_accept(self, request: Request, who: tuple[Session, Person], token: str) -> Response:
        _, person = who
        if not person.email_verified:
            raise Forbidden("verify your e-mail address first")
        membership = self.portal.organizations.accept(token, person.id, person.email)
        return redirect(f"/portal/organizations/{membership.organization_id}")

    async def terms_form(self, request: Request, who: tuple[Session, Person], org_id: int) -> Response:
        return self.organization_page(request, who, org_id, "terms.html", terms=self.portal.terms.current())

    async def terms_accept(self, request: Request, who: tuple[Session, Person], org_id: int) -> Response:
        _, person = who
        form = await request.form()
        if form.get("agree") != "yes":
            raise Invalid("tick the box to accept the terms", "agree")
        self.portal.terms.accept(person.id, org_id, str(form.get("version", "")), client_address(request))
        return redirect(f"/portal/organizations/{org_id}")

    # ---- applications ------------------------------------------------------------------------------
    async def app_form(self, request: Request, who: tuple[Session, Person], org_id: int) -> Response:
        return self.organization_page(
            request, who, org_id, "app_form.html", values={}, client_types=CLIENT_TYPES
        )

    async def app_register(self, request: Request, who: tuple[Session, Person], org_id: int) -> Response:
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
            application, credentials = self.portal.applications.register(who[1].id, org_id, details, logo)
        except Invalid as error:
            return self.show(
                request,
                who,
                "app_form.html",
                error.status,
                org=self.portal.organizations.get(org_id),
                values=values,
                client_types=CLIENT_TYPES,
                error=error.message,
            )
        return self.show(request, who, "credentials.html", application=application, credentials=credentials)

    async def application(self, request: Request, who: tuple[Session, Person], app_id: int) -> Response:
        person = who[1]
        application = self.portal.applications.for_member(person.id, app_id)
        requests = self.portal.reviews.for_application(person.id, app_id)
        open_or_done = any(r.state is not State.REJECTED for r in requests)
        subscriptions = self.portal.applications.subscriptions(app_id)
        risk = self.portal.risk.for_developers([s.id for s in subscriptions]) if self.portal.risk else {}
        return self.show(
            request,
            who,
            "application.html",
            application=application,
            subscriptions=subscriptions,
            risk=risk,
            answer=self.portal.questionnaire.latest(app_id),
            acceptance=self.portal.terms.acceptance_of_current(application.organization_id),
            requests=requests,
            threads={r.id: self.portal.reviews.thread(r.id) for r in requests},
            can_request=not open_or_done,
        )

    def _subscription_of(self, who: tuple[Session, Person], app_id: int, sub_id: int) -> Any:
        """The application, when the developer may see it and the subscription is one of its own."""
        application = self.portal.applications.for_member(who[1].id, app_id)
        if self.portal.applications.subscription_by_id(sub_id).application_id != app_id:
            raise Forbidden("that subscription belongs to another application")
        return application

    async def reveal(
        self, request: Request, who: tuple[Session, Person], app_id: int, sub_id: int
    ) -> Response:
        application = self._subscription_of(who, app_id, sub_id)
        credentials = self.portal.applications.reveal_credentials(who[1].id, sub_id)
        return self.show(request, who, "credentials.html", application=application, credentials=credentials)

    async def rotate(
        self, request: Request, who: tuple[Session, Person], app_id: int, sub_id: int
    ) -> Response:
        application = self._subscription_of(who, app_id, sub_id)
        form = await request.form()
        raw = str(form.get("overlap_hours", "0")).strip() or "0"
        if not raw.isdigit():
            raise Invalid("the overlap is a whole number of hours from 0 to 24", "overlap")
        credentials = self.portal.applications.rotate_secret(who[1].id, sub_id, int(raw) * 3600)
        return self.show(request, who, "credentials.html", application=application, credentials=credentials)

    async def questionnaire_form(
        self, request: Request, who: tuple[Session, Person], app_id: int
    ) -> Response:
        application = self.portal.applications.for_member(who[1].id, app_id)
        answer = self.portal.questionnaire.latest(app_id)
        return self.show(
            request,
            who,
            "questionnaire.html",
            application=application,
            questions=VERSIONS[CURRENT_QUESTIONNAIRE],
            sections=SECTIONS,
            values=answer.answers if answer and answer.current else {},
        )

    async def questionnaire(self, request: Request, who: tuple[Session, Person], app_id: int) -> Response:
        application = self.portal.applications.for_member(who[1].id, app_id)
        form = await request.form()
        questions = VERSIONS[CURRENT_QUESTIONNAIRE]
        answers = {q.id: str(form.get(q.id, "")) for q in questions}
        try:
            self.portal.questionnaire.answer(who[1].id, app_id, answers)
        except Invalid as error:
            return self.show(
                request,
                who,
                "questionnaire.html",
                error.status,
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
