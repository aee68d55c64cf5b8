"""The authorization endpoint (RFC 6749 §3.1, §4.1.1–4.1.2; SMART App Launch 2.2 "Obtain authorization code").

GET and POST (SMART `authorize-post`) start a request; the sign-in, second-factor and consent forms post back
here with a `step` field. Rules, in the order RFC 6749 §4.1.2.1 asks for:
- an unknown `client_id` or a `redirect_uri` not registered exactly shows an error page and never redirects;
- every other error redirects to the app with `error`, `state` and `iss` (RFC 9207);
- PKCE with S256 is required of every client (RFC 9700 §2.1.1), `state` is required, and `aud` must be this
  environment's FHIR base URL (SMART "aud"), or no code is issued.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from authlib.common.urls import add_params_to_uri
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from openpayer.accounts.sessions import SESSION_COOKIE, Signer
from openpayer.accounts.signin import NeedsSecondFactor, Refused
from openpayer.db import write_transaction
from openpayer.members.accounts import Member
from openpayer.oauth.grants.authorization_code import create_code
from openpayer.oauth.member_pages.common import branding, day
from openpayer.oauth.scopes import FHIR_USER, OFFLINE, OPENID, PROFILE, describe, parse_scopes
from openpayer.security.audit import AuditEvent
from openpayer.web.cookies import cookie_secure, set_cookie
from openpayer.web.csrf import csrf_ok, csrf_token, set_csrf_cookie
from openpayer.web.pages import page
from openpayer.web.threads import run_blocking

if TYPE_CHECKING:
    from openpayer.oauth.service import AuthServer

REQUEST_MAX_AGE = 1800
IDENTITY = (OPENID, FHIR_USER, PROFILE)
CHOICES = frozenset({*IDENTITY, OFFLINE})
_PKCE_CHALLENGE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


class _Flow:
    """One authorization request in progress: the validated parameters and the app."""

    def __init__(self, request: Request, server: AuthServer, env: str) -> None:
        self.request = request
        self.server = server
        self.settings = server.settings
        self.env = env
        self.urls = self.server.urls(request, env)
        self.signer = Signer(server.settings.resolved_secret_key)
        self.action = f"/{env}/auth/authorize"
        self.secure = cookie_secure(request, server.settings.auth_cookie_secure)

    @property
    def client_ip(self) -> str:
        return self.request.client.host if self.request.client else "unknown"

    # ---- responses -----------------------------------------------------------------------------------
    def error_page(self, message: str, status: int = 400) -> Response:
        return page(
            "error.html",
            status,
            env=self.env,
            env_label=self.env.title(),
            message=message,
            **branding(self.server, self.env),
        )

    def suspended_page(self) -> Response:
        """A suspended app (staff incident response) gets no new authorization: the member is told why,
        and no redirect carries anything back to the app."""
        return self.error_page(
            "This app is suspended by the health plan, so it cannot connect to your health information "
            "right now. Your data has not been shared with it. Contact the app's developer for more.",
            403,
        )

    def redirect(self, params: dict[str, Any], *, after_post: bool) -> Response:
        """Back to the app with RFC 9207's `iss`; 303 after a form post so credentials are not re-posted."""
        params = {**params, "iss": self.urls.issuer}
        location = add_params_to_uri(self.req["r"], [(k, v) for k, v in params.items() if v is not None])
        return RedirectResponse(location, status_code=303 if after_post else 302)

    def fail(self, error: str, description: str, *, after_post: bool = False) -> Response:
        return self.redirect(
            {"error": error, "error_description": description, "state": self.req.get("s")},
            after_post=after_post,
        )

    def _form_page(self, template: str, status: int = 200, **context: Any) -> Response:
        token = csrf_token(self.request, secure=self.secure)
        targets = tuple(self.client.origins) if template == "consent.html" else ()
        response = page(
            template,
            status,
            form_targets=targets,
            env=self.env,
            env_label=self.env.title(),
            action=self.action,
            auth_request=self.carrier,
            csrf_token=token,
            client_name=self.client.name,
            # Signing out here keeps the request: the sign-in page of the same authorization follows.
            signout={"action": self.action, "fields": {"step": "signout", "auth_request": self.carrier}},
            **branding(self.server, self.env),
            **context,
        )
        set_csrf_cookie(response, self.env, token, secure=self.secure)
        return response

    def signin_page(
        self, error: str | None = None, username: str | None = None, status: int = 200
    ) -> Response:
        return self._form_page("signin.html", status, error=error, username=username)

    def consent_page(self, member: Member | None = None) -> Response:
        """What the app is (developer, attestations), what it asks for and for how long; identity and
        offline access are choices the member can decline like any record type."""
        scopes = parse_scopes(self.req["sc"])
        resources = [{"scope": r.text, "label": describe(r)} for r in scopes.resources]
        settings = self.settings
        profile = self.server.directory.profile(self.env, self.client.client_id)
        refresh_days = settings.auth_refresh_token_days
        member = member or self.session_member()
        return self._form_page(
            "consent.html",
            client=self.client,
            profile=profile,
            developer=profile.developer if profile is not None else self.client.developer,
            privacy_policy_url=(profile.privacy_policy_url if profile else None)
            or self.client.privacy_policy_url,
            resources=resources,
            identity=" ".join(s for s in scopes.special if s in IDENTITY),
            profile_claims=scopes.has(PROFILE),
            offline=scopes.has(OFFLINE),
            refresh_days=refresh_days,
            refresh_until=day(self.server, self.server.clock.now() + refresh_days * 86400),
            access_minutes=settings.auth_access_token_lifetime // 60,
            member_name=member.username if member is not None else None,
        )

    # ---- starting a request --------------------------------------------------------------------------
    def start(self, params: dict[str, str], duplicated: set[str]) -> Response:
        client = self.server.clients.get(self.env, params.get("client_id"))
        if client is not None and client.status == "suspended" and "client_id" not in duplicated:
            return self.suspended_page()
        if client is None or not client.active or "client_id" in duplicated:
            return self.error_page("The app that sent you here is not registered with this health plan.")
        redirect_uri = params.get("redirect_uri")
        if not redirect_uri or redirect_uri not in client.redirect_uris or "redirect_uri" in duplicated:
            return self.error_page(
                "The app sent you to an address it has not registered, so we stopped here."
            )
        self.client = client
        self.req: dict[str, Any] = {"c": client.client_id, "r": redirect_uri, "s": params.get("state")}
        if duplicated:
            return self.fail(
                "invalid_request", "parameters must not be repeated: " + ", ".join(sorted(duplicated))
            )
        if params.get("response_type") != "code":
            return self.fail("unsupported_response_type", "response_type must be code")
        if not params.get("state"):
            return self.fail("invalid_request", "state is required")
        challenge = params.get("code_challenge", "")
        if params.get("code_challenge_method") != "S256" or not _PKCE_CHALLENGE.match(challenge):
            return self.fail(
                "invalid_request", "PKCE is required: code_challenge with code_challenge_method S256"
            )
        if params.get("aud") not in self.server.fhir_audiences(self.request, self.env):
            return self.fail("invalid_request", "aud must be the FHIR base URL of this environment")
        scopes = parse_scopes(params.get("scope"), known_types=self.server.resource_types)
        if not scopes.granted:
            return self.fail("invalid_scope", "none of the requested scopes can be granted")
        self.req.update({"sc": str(scopes), "cc": challenge, "n": params.get("nonce")})
        self.carrier = self.signer.dumps("authorize", self.req)
        member = self.session_member()
        prompt = set(params.get("prompt", "").split())
        if "none" in prompt:
            # Consent is asked for every authorization, so a silent request cannot succeed.
            return self.fail(
                "login_required" if member is None else "consent_required", "interaction required"
            )
        if member is None or "login" in prompt:
            return self.signin_page()
        return self.consent_page(member)

    def session_member(self) -> Member | None:
        found = self.server.signin.session(self.env, self.request.cookies.get(SESSION_COOKIE))
        if found is None:
            return None
        member, self.auth_time = found
        return member

    # ---- the forms -----------------------------------------------------------------------------------
    def step(self, form: FormData) -> Response:
        req = self.signer.loads("authorize", str(form.get("auth_request", "")), REQUEST_MAX_AGE)
        if not isinstance(req, dict):
            return self.error_page("This sign-in page has expired. Return to the app and start again.")
        client = self.server.clients.get(self.env, req["c"])
        if client is not None and client.status == "suspended":
            return self.suspended_page()
        if client is None or not client.active or req["r"] not in client.redirect_uris:
            return self.error_page("The app that sent you here is not registered with this health plan.")
        self.client, self.req, self.carrier = client, req, str(form["auth_request"])
        if not csrf_ok(self.request, str(form.get("csrf_token", "")), secure=self.secure):
            return self.error_page("The form could not be verified. Return to the app and start again.", 403)
        step = form.get("step")
        if step == "signin":
            return self.sign_in(str(form.get("username", "")), str(form.get("password", "")))
        if step == "mfa":
            return self.second_factor(str(form.get("pending", "")), str(form.get("otp", "")))
        if step == "consent":
            return self.decide(form)
        if step == "signout":
            found = self.server.signin.session(self.env, self.request.cookies.get(SESSION_COOKIE))
            if found is not None:  # ended on the server too, with any copy of the cookie
                self.server.members.end_sessions(self.env, found[0].id)
            response = self.signin_page()
            path = f"/{self.env}/auth"
            response.delete_cookie(SESSION_COOKIE, path=path, secure=self.secure, httponly=True)
            return response
        return self.error_page("The form could not be understood.")

    # ---- sign-in: the steps are openpayer.accounts.signin's; this flow renders them -------------------
    def sign_in(self, username: str, password: str) -> Response:
        result = self.server.signin.with_password(
            self.env, username, password, ip=self.client_ip, client_id=self.client.client_id
        )
        if isinstance(result, Refused):
            return _retry_after(
                self.signin_page(
                    result.message, username=username, status=429 if result.retry_after else 401
                ),
                result.retry_after,
            )
        if isinstance(result, NeedsSecondFactor):
            return self._form_page("mfa.html", pending=result.pending)
        return self.signed_in(result.account, result.session)

    def second_factor(self, pending: str, otp: str) -> Response:
        result = self.server.signin.with_second_factor(
            self.env, pending, otp, ip=self.client_ip, client_id=self.client.client_id
        )
        if isinstance(result, Refused):
            status = 429 if result.retry_after else 401
            if result.retry_second_factor:
                page = self._form_page("mfa.html", status, pending=pending, error=result.message)
                return _retry_after(page, result.retry_after)
            return _retry_after(self.signin_page(result.message, status=status), result.retry_after)
        return self.signed_in(result.account, result.session)

    def signed_in(self, member: Member, session: str) -> Response:
        """The consent page, setting the new sign-in session cookie."""
        response = self.consent_page(member)
        set_cookie(
            response,
            SESSION_COOKIE,
            session,
            path=f"/{self.env}/auth",
            secure=self.secure,
            max_age=self.settings.auth_session_lifetime,
        )
        return response

    def decide(self, form: FormData) -> Response:
        member = self.session_member()
        if member is None:
            return self.signin_page("Please sign in again.")
        audit = self.server.audit
        base = {"client_id": self.client.client_id, "member_id": member.id, "patient_id": member.patient_id}
        if form.get("decision") != "allow":
            audit.record(self.env, AuditEvent.CONSENT_DENY, 200, **base)  # type: ignore[arg-type]
            return self.fail("access_denied", "the member denied access", after_post=True)
        requested = parse_scopes(self.req["sc"])
        ticked = {part for v in form.getlist("scope") for part in str(v).split()}
        asked_for_records = bool(requested.resources)
        requested.resources = [r for r in requested.resources if r.text in ticked]
        # Identity and offline access are the member's choices too: granted only when left ticked.
        requested.special = [s for s in requested.special if s not in CHOICES or s in ticked]
        scope = str(requested)
        identity = requested.has(OPENID) or requested.has(FHIR_USER)
        # Unticking every record type shares nothing: no token for identity or offline access alone; a
        # request for identity alone needs the identity choice.
        if (asked_for_records and not requested.resources) or not (requested.resources or identity):
            audit.record(self.env, AuditEvent.CONSENT_DENY, 200, **base)  # type: ignore[arg-type]
            return self.fail("access_denied", "the member shared no records", after_post=True)
        settings = self.settings
        now = self.server.clock.now()
        lifetime = (
            settings.auth_refresh_token_days * 86400
            if requested.has(OFFLINE)
            else settings.auth_access_token_lifetime
        )
        with write_transaction(self.server.engine) as conn:
            grant_id = self.server.grants.create(
                conn,
                env=self.env,
                member_id=member.id,
                client_id=self.client.client_id,
                patient_id=member.patient_id,
                scope=scope,
                expires_at=now + lifetime,
            )
            code = create_code(
                conn,
                self.server,
                env=self.env,
                client=self.client,
                grant_id=grant_id,
                member=member,
                redirect_uri=self.req["r"],
                scope=scope,
                code_challenge=self.req["cc"],
                nonce=self.req.get("n"),
                auth_time=getattr(self, "auth_time", now),
            )
        audit.record(self.env, AuditEvent.CONSENT_ALLOW, 200, **base)  # type: ignore[arg-type]
        return self.redirect({"code": code, "state": self.req["s"]}, after_post=True)


def _retry_after(response: Response, seconds: int | None) -> Response:
    """A throttled sign-in: 429 with `Retry-After` (RFC 9110 §10.2.3) beside the readable message."""
    if seconds:
        response.headers["Retry-After"] = str(seconds)
    return response


def _single_values(items: list[tuple[str, Any]]) -> tuple[dict[str, str], set[str]]:
    values: dict[str, str] = {}
    duplicated: set[str] = set()
    for key, value in items:
        if not isinstance(value, str):
            continue
        if key in values:
            duplicated.add(key)
        values[key] = value
    return values, duplicated


async def authorize(request: Request) -> Response:
    server: AuthServer = request.app.state.auth
    env = request.path_params["env"]
    flow = _Flow(request, server, env)
    if env not in server.settings.environments:
        return flow.error_page("There is no such environment.", 404)
    if request.method == "POST":
        form = await request.form()
        if "step" in form:
            return await run_blocking(flow.step, form)
        params, duplicated = _single_values(list(form.multi_items()))
    else:
        params, duplicated = _single_values(list(request.query_params.multi_items()))
    return await run_blocking(flow.start, params, duplicated)
