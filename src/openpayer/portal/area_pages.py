"""What the developer portal (`/portal/`) and the staff console (`/admin/`) share: their services, the guard
every route goes through (CSRF, session, readable refusals), rendering, and one sign-in flow (password, second
factor, TOTP enrolment, sign-out) parameterised by area.

An area says what it asks beyond the password (`refusal`: a verified address, an active staff role), who may
finish a half-done sign-in (`may_continue`), and whether TOTP enrolment is part of signing in (staff) or a
page of a signed-in account (developers). The sign-in itself (throttling, events) is the accounts domain's
`PeopleSignIn`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import Response

from openpayer.accounts.events import SignInArea
from openpayer.accounts.people import PeopleService, Person
from openpayer.accounts.people_signin import RecoveryCodeUsed, Throttled
from openpayer.accounts.sessions import Signer
from openpayer.portal.business_days import CHICAGO
from openpayer.portal.errors import Invalid, PortalError
from openpayer.portal.interfaces import Clock
from openpayer.portal.notifications import Notifier
from openpayer.portal.services import Portal
from openpayer.portal.web import Area, Session, client_address, csrf_ok, redirect
from openpayer.security.events import RECOVERY_CODE

Handler = Callable[..., Awaitable[Response]]
Route = tuple[str, str, Handler, bool]  # method, path, handler, public (no sign-in needed)
ENROLMENT_MAX_AGE = 1800  # seconds an enrolment form (its sealed secret) stays valid


def due_text(ts: int) -> str:
    """A due instant (the start of the day after the due day) as the last day it is still in time."""
    last = datetime.fromtimestamp(ts - 1, CHICAGO)
    return last.strftime("%A %-d %B %Y, end of day (Central time)")


class AreaPages:
    """Services, guard and rendering of one area. `template_prefix` is where an area's templates live;
    `who` returns whatever a fully signed-in request carries to the handlers (None when not signed in)."""

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
        self.signer = Signer(secret_key)

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

    def session_person(self, request: Request) -> tuple[Session, Person] | None:
        """The session of the request and its account: in time, the account enabled, and the session of
        the account's current generation (a password reset or "sign out everywhere" ends the older ones)."""
        session = self.area.session(request, self.clock.now())
        person = self.people.get(session.account_id) if session else None
        if session is None or person is None or person.disabled:
            return None
        if session.generation != person.session_generation:
            return None
        return session, person

    # ---- routes and the guard ----------------------------------------------------------------------
    def who(self, request: Request) -> Any:
        return None

    def signin_url(self, request: Request) -> str:
        """Where a request that needs a session goes without one."""
        return f"{self.area.path}/signin"

    def install_routes(self, app: FastAPI, routes: list[Route]) -> None:
        router = APIRouter(include_in_schema=False)
        for method, path, handler, public in routes:
            router.add_api_route(path, self.guard(handler, method, public), methods=[method])
        app.include_router(router)

    def guard(self, handler: Handler, method: str, public: bool) -> Handler:
        """CSRF on every POST; sign-in required unless public; a `PortalError` becomes a readable page."""

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
            who = self.who(request)
            if not public and who is None:
                return redirect(self.signin_url(request))
            try:
                return await handler(request, who, **request.path_params)
            except PortalError as error:
                return self.message(
                    request,
                    "Not allowed" if error.status == 403 else "That did not work",
                    error.message,
                    status=error.status,
                    person=who[1] if who else None,
                )

        guarded.__name__ = handler.__name__
        return guarded


class SignInPages(AreaPages):
    """Sign-in, second factor, TOTP enrolment and sign-out, the same for developers and staff."""

    signin_area = SignInArea.PORTAL
    enrolment_reason = ""
    enrolment_completes_sign_in = False  # staff: an account without TOTP enrols before anything else

    def account_routes(self) -> list[Route]:
        p = self.area.path
        return [
            ("GET", f"{p}/signin", self.signin_form, True),
            ("POST", f"{p}/signin", self.signin, True),
            ("GET", f"{p}/mfa", self.mfa_form, True),
            ("POST", f"{p}/mfa", self.mfa, True),
            ("GET", f"{p}/totp", self.totp_form, True),
            ("POST", f"{p}/totp", self.totp, True),
            ("POST", f"{p}/signout", self.signout, True),
        ]

    # ---- what an area decides ----------------------------------------------------------------------
    def refusal(self, person: Person) -> tuple[int, str, bool] | None:
        """Why a person with the right password may not sign in here: (status, message, counts as failure)."""
        return None

    def may_continue(self, person: Person) -> bool:
        """May a half signed-in person (password passed) go on to the second factor here?"""
        return True

    def enrolling(self, request: Request) -> tuple[Session, Person] | Response:
        """Who may enrol TOTP now, or where to send them instead."""
        half = self.half_signed_in(request)
        if half is None:
            return redirect(f"{self.area.path}/signin")
        if half[1].has_totp:
            return redirect(f"{self.area.path}/mfa")  # enrolment cannot replace a factor without passing it
        return half

    def enrolment_context(self, session: Session, person: Person) -> dict[str, Any]:
        return {}

    # ---- the flow ----------------------------------------------------------------------------------
    def half_signed_in(self, request: Request) -> tuple[Session, Person] | None:
        found = self.session_person(request)
        return found if found is not None and self.may_continue(found[1]) else None

    def safe_next(self, value: object) -> str | None:
        """A page of this area to go back to after signing in: a local path only (never another site)."""
        if not isinstance(value, str) or not value.startswith(f"{self.area.path}/") or len(value) > 512:
            return None
        if "//" in value or "\\" in value or any(ord(c) < 33 or ord(c) == 127 for c in value):
            return None
        parts = urlsplit(value)
        return value if not parts.scheme and not parts.netloc else None

    def _with_next(self, url: str, next_url: str | None) -> str:
        return f"{url}?{urlencode({'next': next_url})}" if next_url else url

    def _signed_in(
        self, request: Request, session: Session, person: Person, detail: str | None = None
    ) -> Session:
        """Record the completed sign-in; the session to carry on with (second factor passed if any)."""
        self.portal.signin.signed_in(self.signin_area, person, client_address(request), detail=detail)
        return Session(person.id, session.signed_in_at, person.has_totp, person.session_generation)

    def _complete(
        self,
        request: Request,
        session: Session,
        person: Person,
        next_url: str | None = None,
        detail: str | None = None,
    ) -> Response:
        renewed = self._signed_in(request, session, person, detail)
        response = redirect(next_url or f"{self.area.path}/")
        self.area.start(response, request, renewed)
        return response

    def codes_page(
        self, request: Request, codes: list[str], heading: str, *lines: str, **context: Any
    ) -> Response:
        """New recovery codes, shown this once (only their digests are kept), with a way on."""
        return self.render(
            request,
            "recovery_codes.html",
            heading=heading,
            lines=list(lines),
            codes=codes,
            next=context.pop("next", None) or f"{self.area.path}/",
            **context,
        )

    def signin_notice(self, next_url: str | None) -> str | None:
        return None

    async def signin_form(self, request: Request, who: Any) -> Response:
        next_url = self.safe_next(request.query_params.get("next"))
        return self.render(request, "signin.html", next=next_url, notice=self.signin_notice(next_url))

    async def signin(self, request: Request, who: Any) -> Response:
        form = await request.form()
        email, address = str(form.get("email", "")), client_address(request)
        next_url = self.safe_next(form.get("next"))
        person = self.portal.signin.with_password(
            self.signin_area, email, str(form.get("password", "")), address
        )
        if isinstance(person, Throttled):
            page = self.render(request, "signin.html", 429, error=person.message, email=email)
            page.headers["Retry-After"] = str(person.retry_after)
            return page
        if person is None:
            error = "The e-mail address or password is wrong."
            return self.render(request, "signin.html", 401, error=error, email=email, next=next_url)
        refusal = self.refusal(person)
        if refusal is not None:
            status, error, failure = refusal
            self.portal.signin.refused(self.signin_area, person, address, failure=failure)
            unverified = not person.email_verified and not failure
            return self.render(
                request, "signin.html", status, error=error, email=email, next=next_url, unverified=unverified
            )
        session = Session(person.id, self.clock.now(), False, person.session_generation)
        if not person.has_totp and not self.enrolment_completes_sign_in:
            return self._complete(request, session, person, next_url)
        step = f"{self.area.path}/mfa" if person.has_totp else f"{self.area.path}/totp"
        response = redirect(self._with_next(step, next_url) if person.has_totp else step)
        self.area.start(response, request, session)
        return response

    async def mfa_form(self, request: Request, who: Any) -> Response:
        if self.half_signed_in(request) is None:
            return redirect(f"{self.area.path}/signin")
        return self.render(request, "mfa.html", next=self.safe_next(request.query_params.get("next")))

    async def mfa(self, request: Request, who: Any) -> Response:
        half = self.half_signed_in(request)
        if half is None:
            return redirect(f"{self.area.path}/signin")
        session, person = half
        form = await request.form()
        code, next_url = str(form.get("code", "")), self.safe_next(form.get("next"))
        client = client_address(request)
        if "recovery_code" in form:  # the other form of the page: a recovery code for a lost authenticator
            return self._recovery_sign_in(request, session, person, str(form["recovery_code"]), next_url)
        checked = self.portal.signin.second_factor(self.signin_area, person, code, client)
        if isinstance(checked, Throttled):
            page = self.render(request, "mfa.html", 429, error=checked.message, next=next_url)
            page.headers["Retry-After"] = str(checked.retry_after)
            return page
        if not checked:
            error = "That code is not right; try the current one."
            return self.render(request, "mfa.html", 401, error=error, next=next_url)
        return self._complete(request, session, person, next_url)

    def _recovery_sign_in(
        self, request: Request, session: Session, person: Person, typed: str, next_url: str | None
    ) -> Response:
        """A recovery code in place of the authenticator's code: spent once, throttled like a TOTP code; the
        owner is mailed that one was used and how many are left."""
        used = self.portal.signin.recovery_code(self.signin_area, person, typed, client_address(request))
        if isinstance(used, Throttled):
            page = self.render(request, "mfa.html", 429, error=used.message, next=next_url)
            page.headers["Retry-After"] = str(used.retry_after)
            return page
        if not isinstance(used, RecoveryCodeUsed):
            error = "That recovery code is not right, or it was used already."
            return self.render(request, "mfa.html", 401, error=error, next=next_url)
        origin = self.origin(request)
        self.notifier.recovery_code_used(
            person.email,
            remaining=used.remaining,
            security_link=f"{origin}{self.area.path}/authenticator",
            link=f"{origin}{self.area.path}/forgot",
        )
        return self._complete(request, session, person, next_url, detail=RECOVERY_CODE)

    async def totp_form(self, request: Request, who: Any) -> Response:
        enrolling = self.enrolling(request)
        if isinstance(enrolling, Response):
            return enrolling
        session, person = enrolling
        secret = self.people.new_totp_secret()
        return self.render(
            request,
            "totp.html",
            reason=self.enrolment_reason,
            secret=secret,
            uri=self.people.provisioning_uri(person, secret),
            sealed=self.signer.dumps(self.enrolment_salt, {"a": person.id, "s": secret}),
            **self.enrolment_context(session, person),
        )

    async def totp(self, request: Request, who: Any) -> Response:
        enrolling = self.enrolling(request)
        if isinstance(enrolling, Response):
            return enrolling
        session, person = enrolling
        form = await request.form()
        sealed = str(form.get("sealed", ""))
        data = self.signer.loads(self.enrolment_salt, sealed, ENROLMENT_MAX_AGE)
        if not isinstance(data, dict) or data.get("a") != person.id:
            raise Invalid("the enrolment form was altered or is too old; start again")
        secret = str(data["s"])
        codes = self.people.confirm_totp(person, secret, str(form.get("code", "")))
        if codes is None:
            return self.render(
                request,
                "totp.html",
                422,
                error="That code is not right.",
                reason="",
                secret=secret,
                uri=self.people.provisioning_uri(person, secret),
                sealed=sealed,
                **self.enrolment_context(session, person),
            )
        enrolled = replace(person, has_totp=True)
        if self.enrolment_completes_sign_in:
            carried_on = self._signed_in(request, session, enrolled)
        else:
            carried_on = replace(session, mfa=True)
        return self.codes_page(
            request,
            codes,
            "Two-step sign-in is on",
            "From now on, signing in asks for a code from the authenticator after the password.",
            session=carried_on,
            person=enrolled,
        )

    async def signout(self, request: Request, who: Any) -> Response:
        response = redirect(f"{self.area.path}/signin")
        self.area.end(response, request)
        return response
