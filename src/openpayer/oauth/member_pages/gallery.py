"""The public app gallery (`/{env}/auth/apps`), the member education page (`/{env}/auth/education`) and
the images of the member pages (the plan's logo, each app's logo).

- The gallery lists the approved production apps (`AppDirectory.gallery`): logo, name, description,
  developer, what the developer attested, privacy policy. A signed-in member also sees which are connected
  to their data and can disconnect them there (the same form as the connected-apps page).
- The education page is what 45 CFR 156.221(g) asks plans to publish for their members: what to consider
  when choosing an app, how to protect their data, how to complain (the plan, OCR, the FTC). Its text is a
  Markdown file the plan may replace (`OPENPAYER_MEMBER_EDUCATION_PATH`; `$plan_name` is filled in); the
  default ships in the package. Raw HTML in the file is shown as text, never run.
"""

from __future__ import annotations

import logging
from functools import cache
from importlib import resources
from pathlib import Path
from string import Template

from markdown_it import MarkdownIt
from starlette.requests import Request
from starlette.responses import Response

from openpayer.oauth.connections import connected_apps
from openpayer.oauth.member_pages.common import MemberPage
from openpayer.oauth.service import AuthServer
from openpayer.web.threads import run_blocking

log = logging.getLogger(__name__)

_IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}
_IMAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",  # an SVG runs nothing
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "public, max-age=300",
}


def _page(request: Request) -> MemberPage:
    server: AuthServer = request.app.state.auth
    return MemberPage(request, server, request.path_params["env"])


async def gallery(request: Request) -> Response:
    page = _page(request)
    if not page.known_env:
        return page.not_found()
    return await run_blocking(_gallery, page)


def _gallery(page: MemberPage) -> Response:
    apps = page.server.directory.gallery(page.env)
    member = page.member()
    connected = (
        {c.client_id: c for c in connected_apps(page.server, page.env, member)} if member is not None else {}
    )
    return page.render("member/gallery.html", member=member, apps=apps, connected=connected)


async def app_logo(request: Request) -> Response:
    page = _page(request)
    if not page.known_env:
        return page.not_found()
    found = await run_blocking(page.server.directory.logo, page.env, request.path_params["client_id"])
    if found is None:
        return page.not_found()
    data, media_type = found
    return Response(data, media_type=media_type, headers=_IMAGE_HEADERS)


async def plan_logo(request: Request) -> Response:
    page = _page(request)
    configured = page.server.settings.member_plan_logo
    if configured is not None:
        media_type = _IMAGE_TYPES.get(configured.suffix.lower())
        data = await run_blocking(_read_bytes, configured) if media_type else None
        if media_type and data is not None:
            return Response(data, media_type=media_type, headers=_IMAGE_HEADERS)
        log.warning("OPENPAYER_MEMBER_PLAN_LOGO cannot be shown (PNG, JPEG or SVG file); the default is")
    shipped = resources.files("openpayer") / "static" / "plan-logo.svg"
    return Response(shipped.read_bytes(), media_type="image/svg+xml", headers=_IMAGE_HEADERS)


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


async def education(request: Request) -> Response:
    page = _page(request)
    if not page.known_env:
        return page.not_found()
    source = await run_blocking(education_text, page.server.settings.member_education_path)
    text = Template(source).safe_substitute(plan_name=page.server.settings.member_plan_name)
    return page.render("member/education.html", member=page.member(), body=_markdown().render(text))


def education_text(path: Path | None) -> str:
    """The plan's Markdown when configured and readable, else the shipped text (and a warning in the log)."""
    if path is not None:
        try:
            return path.read_text("utf-8")
        except (OSError, UnicodeDecodeError):
            log.warning("OPENPAYER_MEMBER_EDUCATION_PATH cannot be read; showing the shipped text")
    return (resources.files("openpayer.oauth") / "data" / "member-education.md").read_text("utf-8")


@cache
def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False}).enable("table")
