"""The signed link in every notice: "we still use this integration".

GET shows a page with one button (mail scanners follow links; only the POST records the response), POST
records it. A link is bound to the subscription and the outreach cycle it was sent in, signed with the
deployment's secret: it answers once (410 after), a forged one is refused (403).
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from openpayer.policy.engine import InactivityPolicy, PolicyError

router = APIRouter(include_in_schema=False)
PATH = "/policy/still-in-use"


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · OpenPayer</title></head>"
        f"<body><main><h1>{escape(title)}</h1>{body}</main></body></html>"
    )
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def _params(request: Request) -> tuple[int, int, str] | None:
    query = request.query_params
    try:
        return int(query.get("s", "")), int(query.get("c", "")), query.get("t", "")
    except ValueError:
        return None


def _policy(request: Request) -> InactivityPolicy:
    policy: InactivityPolicy = request.app.state.services.policy
    return policy


@router.get(PATH)
async def confirm_page(request: Request) -> HTMLResponse:
    params = _params(request)
    if params is None or not params[2]:
        return _page("This link is not complete", "<p>Open the link from the notice as it was sent.</p>", 400)
    action = escape(f"{PATH}?{request.url.query}")
    return _page(
        "Is this integration still in use?",
        "<p>Confirm that your organization still uses this integration. The inactivity window restarts "
        "today; no further notice is sent for this round.</p>"
        f'<form method="post" action="{action}"><button type="submit">We still use this integration'
        "</button></form>",
    )


@router.post(PATH)
async def confirm(request: Request) -> HTMLResponse:
    params = _params(request)
    if params is None or not params[2]:
        return _page("This link is not complete", "<p>Open the link from the notice as it was sent.</p>", 400)
    subscription_id, cycle, signature = params
    try:
        recorded = _policy(request).respond_with_link(subscription_id, cycle, signature)
    except PolicyError:
        return _page("This link is not valid", "<p>Open the link from the notice as it was sent.</p>", 403)
    if not recorded:
        return _page(
            "Already answered",
            "<p>This notice was already answered, or the subscription was removed or paused.</p>",
            410,
        )
    return _page("Thank you", "<p>Your answer is recorded; the inactivity window restarts today.</p>")
