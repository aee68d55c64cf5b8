"""Account recovery pages of `/portal/` and `/admin/`, one implementation for both areas: "forgot password"
(an e-mailed, single-use, expiring link; `openpayer.accounts.recovery`), choosing the new password, changing
the password and replacing or removing the authenticator (TOTP) while signed in, a new set of recovery codes,
and "sign out everywhere".
The developer portal adds a new verification link for an unverified address.

Every answer to a request for a link is the same whether or not an account uses the address, and whether or
not the request was throttled, so the pages reveal nothing about who has an account.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from openpayer.accounts.people import Person
from openpayer.accounts.people_signin import Throttled
from openpayer.accounts.recovery import LINK_DOES_NOT_WORK, RESET_LIFETIME
from openpayer.portal.area_pages import ENROLMENT_MAX_AGE, Route, SignInPages
from openpayer.portal.errors import Invalid
from openpayer.portal.web import client_address, redirect


class AccountPages(SignInPages):
    def recovery_routes(self) -> list[Route]:
        p = self.area.path
        return [
            ("GET", f"{p}/forgot", self.forgot_form, True),
            ("POST", f"{p}/forgot", self.forgot, True),
            ("GET", f"{p}/reset", self.reset_form, True),
            ("POST", f"{p}/reset", self.reset, True),
            ("POST", f"{p}/signout-everywhere", self.signout_everywhere, False),
            ("GET", f"{p}/password", self.password_form, False),
            ("POST", f"{p}/password", self.change_password, False),
            ("GET", f"{p}/authenticator", self.authenticator_form, False),
            ("POST", f"{p}/authenticator/replace", self.replace_authenticator, False),
            ("POST", f"{p}/authenticator/confirm", self.confirm_authenticator, False),
            ("POST", f"{p}/authenticator/remove", self.remove_authenticator, False),
            ("POST", f"{p}/authenticator/recovery-codes", self.new_recovery_codes, False),
        ]

    def account_context(self, who: Any) -> dict[str, Any]:
        """What a signed-in page of the area renders with (the console adds the staff member for its menu)."""
        return {"session": who[0], "person": who[1]}

    def may_reset(self, person: Person) -> bool:
        """Whether this area sends a reset link to the account (the console: staff only)."""
        return True

    # ---- forgot password ---------------------------------------------------------------------------
    async def forgot_form(self, request: Request, who: Any) -> Response:
        return self.render(request, "forgot.html")

    async def forgot(self, request: Request, who: Any) -> Response:
        form = await request.form()
        address = str(form.get("email", "")).strip()
        issued = self.portal.recovery.request_reset(address, client_address(request))
        if issued is not None and self.may_reset(issued[0]):
            person, token = issued
            link = f"{self.origin(request)}{self.area.path}/reset?{urlencode({'token': token})}"
            self.notifier.password_reset(person.email, link, RESET_LIFETIME // 60)
        return self.message(
            request,
            "Check your e-mail",
            f"If an account uses {address or 'that address'}, we sent it a link to choose a new password.",
            f"The link works once, within {RESET_LIFETIME // 60} minutes. Nothing came? Check the spam "
            "folder, or ask again in a few minutes.",
        )

    # ---- choosing the new password -----------------------------------------------------------------
    def _link_does_not_work(self, request: Request) -> Response:
        return self.message(
            request,
            "This link does not work",
            LINK_DOES_NOT_WORK,
            status=400,
            link=(f"{self.area.path}/forgot", "Ask for a new link"),
        )

    async def reset_form(self, request: Request, who: Any) -> Response:
        token = request.query_params.get("token", "")
        person = self.portal.recovery.reset_for(token)
        if person is None or not self.may_reset(person):
            return self._link_does_not_work(request)
        return self.render(request, "reset.html", token=token, email=person.email)

    async def reset(self, request: Request, who: Any) -> Response:
        form = await request.form()
        token = str(form.get("token", ""))
        person = self.portal.recovery.reset_for(token)
        if person is None or not self.may_reset(person):
            return self._link_does_not_work(request)
        try:
            changed = self.portal.recovery.reset(token, str(form.get("password", "")))
        except Invalid as error:
            if error.field == "token":
                return self._link_does_not_work(request)
            return self.render(
                request, "reset.html", error.status, error=error.message, token=token, email=person.email
            )
        self.notifier.password_changed(changed.email, f"{self.origin(request)}{self.area.path}/forgot")
        response = self.message(
            request,
            "Password changed",
            "Every session of the account has ended. Sign in with the new password.",
            link=(f"{self.area.path}/signin", "Sign in"),
        )
        self.area.end(response, request)
        return response

    # ---- changing the password while signed in ---------------------------------------------------------
    async def password_form(self, request: Request, who: Any) -> Response:
        return self.render(request, "password.html", **self.account_context(who))

    async def change_password(self, request: Request, who: Any) -> Response:
        """The current password first (throttled like a sign-in), then the new one with the reset's rules; on
        success every other session ends and this one carries on under the new generation."""
        session, person = who[0], who[1]
        form = await request.form()
        current, new = str(form.get("current_password", "")), str(form.get("new_password", ""))
        checked = self.portal.signin.confirm_password(
            self.signin_area, person, current, client_address(request)
        )
        if isinstance(checked, Throttled):
            page = self._password_page(request, who, 429, checked.message)
            page.headers["Retry-After"] = str(checked.retry_after)
            return page
        if not checked:
            return self._password_page(request, who, 401, "The current password is wrong.")
        if new != str(form.get("confirm_password", "")):
            return self._password_page(request, who, 422, "The new password and its confirmation differ.")
        try:
            changed = self.people.change_password(person, new)
        except Invalid as error:
            return self._password_page(request, who, error.status, error.message)
        self.notifier.password_changed_signed_in(
            changed.email, f"{self.origin(request)}{self.area.path}/forgot"
        )
        context = {**self.account_context(who), "person": changed}
        context["session"] = replace(session, generation=changed.session_generation)
        return self.message(
            request,
            "Password changed",
            "Use the new password from now on. Every other session of the account has ended; this one stays.",
            link=(f"{self.area.path}/", "Continue"),
            **context,
        )

    def _password_page(self, request: Request, who: Any, status: int, error: str) -> Response:
        """The form again with why (never the passwords typed)."""
        return self.render(request, "password.html", status, error=error, **self.account_context(who))

    # ---- replacing or removing the authenticator while signed in -----------------------------------------
    def totp_required(self, person: Person) -> str | None:
        """Why this account may not turn two-step sign-in off (None: it may); each area says."""
        return None

    async def authenticator_form(self, request: Request, who: Any) -> Response:
        if not who[1].has_totp:
            return redirect(f"{self.area.path}/totp")  # nothing to replace yet: enrol
        return self._authenticator_page(request, who, 200)

    async def replace_authenticator(self, request: Request, who: Any) -> Response:
        """Once the person proves it is them, a new key to add; the old one stays until a code confirms it."""
        refused = await self._reauthenticated(request, who)
        if refused is not None:
            return refused
        person = who[1]
        secret = self.people.new_totp_secret()
        sealed = self.signer.dumps(
            self._replace_salt, {"a": person.id, "s": secret, "g": person.session_generation}
        )
        return self._new_key_page(request, who, 200, secret, sealed)

    async def confirm_authenticator(self, request: Request, who: Any) -> Response:
        """A code from the new key puts it in place of the old one. The sealed form is bound to the account
        and its session generation, so it is spent by any change that ended the other sessions."""
        person = who[1]
        form = await request.form()
        sealed = str(form.get("sealed", ""))
        data = self.signer.loads(self._replace_salt, sealed, ENROLMENT_MAX_AGE)
        if (
            not person.has_totp
            or not isinstance(data, dict)
            or data.get("a") != person.id
            or data.get("g") != person.session_generation
        ):
            raise Invalid("the form was altered or is too old; start again from Two-step sign-in")
        secret = str(data["s"])
        replaced = self.people.replace_totp(person, secret, str(form.get("code", "")))
        if replaced is None:
            error = "That code is not right; enter the one the new authenticator shows now."
            return self._new_key_page(request, who, 422, secret, sealed, error=error)
        changed, codes = replaced
        return self._authenticator_changed(request, who, changed, removed=False, codes=codes)

    async def remove_authenticator(self, request: Request, who: Any) -> Response:
        """Turn two-step sign-in off where the area allows it, after the same proof as a replacement."""
        required = self.totp_required(who[1])
        if required is not None:
            return self._authenticator_page(request, who, 403, required)
        refused = await self._reauthenticated(request, who)
        if refused is not None:
            return refused
        removed = self.people.remove_totp(who[1])
        return self._authenticator_changed(request, who, removed, removed=True)

    async def new_recovery_codes(self, request: Request, who: Any) -> Response:
        """A new set of recovery codes, after the same proof as a replacement: the old set stops working,
        the new one is shown this once, and a notice is mailed; other sessions go on."""
        refused = await self._reauthenticated(request, who)
        if refused is not None:
            return refused
        person = who[1]
        codes = self.people.recovery_codes.issue(person.id)
        self.notifier.recovery_codes_new(person.email, link=f"{self.origin(request)}{self.area.path}/forgot")
        return self.codes_page(
            request,
            codes,
            "New recovery codes",
            "The earlier recovery codes no longer work.",
            **self.account_context(who),
        )

    @property
    def _replace_salt(self) -> str:
        return f"{self.enrolment_salt}.replace"

    async def _reauthenticated(self, request: Request, who: Any) -> Response | None:
        """The current password, then a code from the current authenticator, each throttled and counted like
        a sign-in's (a stolen session is no oracle for either); the refusal page, or None when both pass."""
        person = who[1]
        if not person.has_totp:
            return redirect(f"{self.area.path}/totp")
        form = await request.form()
        client = client_address(request)
        password, code = str(form.get("current_password", "")), str(form.get("code", ""))
        checked = self.portal.signin.confirm_password(self.signin_area, person, password, client)
        error = "The current password is wrong."
        if checked is True:
            checked = self.portal.signin.second_factor(self.signin_area, person, code, client)
            error = "That code from the current authenticator is not right; try the one it shows now."
        if isinstance(checked, Throttled):
            page = self._authenticator_page(request, who, 429, checked.message)
            page.headers["Retry-After"] = str(checked.retry_after)
            return page
        return None if checked else self._authenticator_page(request, who, 401, error)

    def _authenticator_page(
        self, request: Request, who: Any, status: int, error: str | None = None
    ) -> Response:
        required = self.totp_required(who[1])
        return self.render(
            request,
            "authenticator.html",
            status,
            error=error,
            required=required,
            codes_left=self.people.recovery_codes.remaining(who[1].id),
            **self.account_context(who),
        )

    def _new_key_page(
        self, request: Request, who: Any, status: int, secret: str, sealed: str, error: str | None = None
    ) -> Response:
        """The enrolment page, for the new key (shown as text and as an `otpauth://` link)."""
        return self.render(
            request,
            "totp.html",
            status,
            error=error,
            heading="Add the new authenticator",
            reason="Until you confirm a code from the new key, the old authenticator stays in use.",
            secret=secret,
            uri=self.people.provisioning_uri(who[1], secret),
            sealed=sealed,
            action=f"{self.area.path}/authenticator/confirm",
            button="Use the new authenticator",
            **self.account_context(who),
        )

    def _authenticator_changed(
        self, request: Request, who: Any, changed: Person, *, removed: bool, codes: list[str] | None = None
    ) -> Response:
        """Mail the notice, keep this session under the new generation (every other one has ended); a new
        authenticator comes with new recovery codes, shown this once."""
        link = f"{self.origin(request)}{self.area.path}/forgot"
        self.notifier.authenticator_changed(changed.email, removed=removed, link=link)
        context = {**self.account_context(who), "person": changed}
        context["session"] = replace(who[0], generation=changed.session_generation)
        others = "Every other session of the account has ended; this one stays."
        if removed:
            return self.message(
                request,
                "Two-step sign-in turned off",
                "Signing in now needs only the password, and the recovery codes no longer work.",
                others,
                link=(f"{self.area.path}/", "Continue"),
                **context,
            )
        return self.codes_page(
            request,
            codes or [],
            "Authenticator replaced",
            "Use the new authenticator from now on; the old one and the old recovery codes no longer work.",
            others,
            **context,
        )

    # ---- sign out everywhere -----------------------------------------------------------------------
    async def signout_everywhere(self, request: Request, who: Any) -> Response:
        """End every session of the account (this one too): a lost laptop, a shared computer."""
        self.people.end_sessions(who[1].id)
        response = redirect(f"{self.area.path}/signin")
        self.area.end(response, request)
        return response
