"""What every member page shares: the header (the plan's name and logo, who is signed in, sign-out, the
links between the pages), the signed-in member, CSRF and dates in the plan's time zone."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response

from openpayer.accounts.sessions import SESSION_COOKIE
from openpayer.members.accounts import Member
from openpayer.web.cookies import cookie_secure
from openpayer.web.csrf import csrf_ok, csrf_token, set_csrf_cookie
from openpayer.web.pages import page

if TYPE_CHECKING:
    from openpayer.oauth.service import AuthServer


def branding(server: AuthServer, env: str) -> dict[str, Any]:
    """The header's plan name, logo and links (on every member page, the sign-in and consent pages too)."""
    return {
        "plan_name": server.settings.member_plan_name,
        "plan_logo": f"/{env}/auth/plan-logo",
        "nav": env in server.settings.environments,
    }


def day(server: AuthServer, ts: int | None) -> str:
    """A timestamp as the plan's local date (`policy_time_zone`), e.g. `2 December 2026`."""
    if ts is None:
        return ""
    when = datetime.fromtimestamp(ts, ZoneInfo(server.settings.policy_time_zone))
    return when.strftime("%-d %B %Y")


class MemberPage:
    """One request to a member page of environment `env`."""

    def __init__(self, request: Request, server: AuthServer, env: str) -> None:
        self.request = request
        self.server = server
        self.env = env
        self.secure = cookie_secure(request, server.settings.auth_cookie_secure)
        self.base = f"/{env}/auth"

    @property
    def known_env(self) -> bool:
        return self.env in self.server.settings.environments

    @property
    def client_ip(self) -> str:
        return self.request.client.host if self.request.client else "unknown"

    def member(self) -> Member | None:
        found = self.server.signin.session(self.env, self.request.cookies.get(SESSION_COOKIE))
        return found[0] if found is not None else None

    def csrf_ok(self, submitted: object) -> bool:
        return isinstance(submitted, str) and csrf_ok(self.request, submitted, secure=self.secure)

    def render(
        self, template: str, status: int = 200, *, member: Member | None = None, **context: Any
    ) -> Response:
        """A member page with the header, a CSRF token for its forms (and the cookie that matches it)."""
        token = csrf_token(self.request, secure=self.secure)
        response = page(
            template,
            status,
            env=self.env,
            env_label=self.env.title(),
            csrf_token=token,
            member_name=member.username if member is not None else None,
            signout={"action": f"{self.base}/account/signout", "fields": {}},
            **branding(self.server, self.env),
            **context,
        )
        set_csrf_cookie(response, self.env, token, secure=self.secure)
        return response

    def message(self, heading: str, text: str, status: int, member: Member | None = None) -> Response:
        return self.render("member/message.html", status, member=member, heading=heading, text=text)

    def not_found(self) -> Response:
        return self.message("Page not found", "There is no such page.", 404)
