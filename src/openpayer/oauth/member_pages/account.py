"""The member's connected apps (`/{env}/auth/account`), disconnecting one, and signing in and out.

Sign-in is the authorization server's (`openpayer.accounts.signin`: throttled, audited, second factor when
enrolled) and sets the same session cookie as the authorize flow, so a member who just connected an app is
already signed in here. Every form carries the CSRF token; a disconnect takes effect before the page that
confirms it is sent (`openpayer.oauth.connections.disconnect`).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from openpayer.accounts.sessions import SESSION_COOKIE
from openpayer.accounts.signin import NeedsSecondFactor, Refused, SignedIn
from openpayer.members.accounts import Member
from openpayer.oauth.connections import connected_apps, disconnect
from openpayer.oauth.member_pages.common import MemberPage, day
from openpayer.oauth.service import AuthServer
from openpayer.web.cookies import set_cookie
from openpayer.web.threads import run_blocking

# Where a disconnect or a sign-in returns to: fixed pages only, never a URL from the form.
RETURN_TO = {"account": "account", "apps": "apps"}


def _page(request: Request) -> MemberPage:
    server: AuthServer = request.app.state.auth
    return MemberPage(request, server, request.path_params["env"])


def _return_to(page: MemberPage, name: object) -> str:
    return f"{page.base}/{RETURN_TO.get(str(name), 'account')}"


async def account(request: Request) -> Response:
    page = _page(request)
    if not page.known_env:
        return page.not_found()
    return await run_blocking(_account, page)


def _account(page: MemberPage, notice: str | None = None) -> Response:
    member = page.member()
    if member is None:
        return RedirectResponse(f"{page.base}/account/signin", status_code=303)
    connections = connected_apps(page.server, page.env, member)
    return page.render(
        "member/account.html",
        member=member,
        connections=connections,
        day=lambda ts: day(page.server, ts),
        notice=notice,
    )


async def revoke(request: Request) -> Response:
    page = _page(request)
    if not page.known_env:
        return page.not_found()
    form = await request.form()
    if not page.csrf_ok(form.get("csrf_token")):
        return page.message("That did not work", "The form could not be verified. Please try again.", 403)
    member = page.member()
    if member is None:
        return page.message("Please sign in", "Your session has ended. Sign in and try again.", 401)
    client_id = str(form.get("client_id", ""))
    await run_blocking(disconnect, page.server, page.env, member, client_id)
    return RedirectResponse(_return_to(page, form.get("return_to")), status_code=303)


async def signin(request: Request) -> Response:
    page = _page(request)
    if not page.known_env:
        return page.not_found()
    return_to = request.query_params.get("return_to", "account")
    if request.method == "GET":
        if page.member() is not None:
            return RedirectResponse(_return_to(page, return_to), status_code=303)
        return _signin_form(page, return_to)
    form = await request.form()
    return_to = str(form.get("return_to", "account"))
    if not page.csrf_ok(form.get("csrf_token")):
        return _signin_form(page, return_to, "The form could not be verified. Please try again.", 403)
    signin = page.server.signin
    if form.get("step") == "mfa":
        pending = str(form.get("pending", ""))
        result: SignedIn[Member] | NeedsSecondFactor | Refused = await run_blocking(
            signin.with_second_factor,
            page.env,
            pending,
            str(form.get("otp", "")),
            ip=page.client_ip,
            client_id=None,
        )
        if isinstance(result, Refused) and result.retry_second_factor:
            return _throttled(_mfa_form(page, return_to, pending, result.message, 401), result)
    else:
        username = str(form.get("username", ""))
        result = await run_blocking(
            signin.with_password,
            page.env,
            username,
            str(form.get("password", "")),
            ip=page.client_ip,
            client_id=None,
        )
    if isinstance(result, Refused):
        return _throttled(_signin_form(page, return_to, result.message, 401), result)
    if isinstance(result, NeedsSecondFactor):
        return _mfa_form(page, return_to, result.pending)
    response = RedirectResponse(_return_to(page, return_to), status_code=303)
    set_cookie(
        response,
        SESSION_COOKIE,
        result.session,
        path=page.base,
        secure=page.secure,
        max_age=page.server.settings.auth_session_lifetime,
    )
    return response


def _throttled(response: Response, refused: Refused) -> Response:
    """A throttled sign-in (`openpayer.security.throttle`) answers 429 with `Retry-After`."""
    if refused.retry_after:
        response.status_code = 429
        response.headers["Retry-After"] = str(refused.retry_after)
    return response


def _signin_form(page: MemberPage, return_to: str, error: str | None = None, status: int = 200) -> Response:
    return page.render(
        "member/signin.html", status, error=error, return_to=RETURN_TO.get(return_to, "account")
    )


def _mfa_form(
    page: MemberPage, return_to: str, pending: str, error: str | None = None, status: int = 200
) -> Response:
    return page.render(
        "member/mfa.html",
        status,
        error=error,
        pending=pending,
        return_to=RETURN_TO.get(return_to, "account"),
    )


async def signout(request: Request) -> Response:
    page = _page(request)
    if not page.known_env:
        return page.not_found()
    form = await request.form()
    if not page.csrf_ok(form.get("csrf_token")):
        return page.message("That did not work", "The form could not be verified. Please try again.", 403)
    cookie = request.cookies.get(SESSION_COOKIE)

    def end_sessions() -> None:  # the cookie ends on the server too, with any copy of it
        found = page.server.signin.session(page.env, cookie)
        if found is not None:
            page.server.members.end_sessions(page.env, found[0].id)

    await run_blocking(end_sessions)
    response = page.message(
        "You have signed out", "You are no longer signed in, on this device or any other.", 200
    )
    response.delete_cookie(SESSION_COOKIE, path=page.base, secure=page.secure, httponly=True)
    return response
