"""Refuses NUL characters (U+0000) in a request before any route sees it, in one place for every route.

PostgreSQL cannot store U+0000 in text: a NUL that reached a query (a search value, a resource id, a
`client_id`, a Basic credential) made psycopg raise `DataError` and the request end in a 500. No FHIR
value, OAuth parameter or form field needs the character (FHIR strings exclude control characters), so a
request carrying one is answered 400 on both databases: an OperationOutcome on the FHIR bases, an RFC 6749
`invalid_request` body on the authorization server's JSON endpoints, a short readable page elsewhere.

Checked: the decoded path, the query string, the `Authorization` header's Basic credentials (which RFC
6749 §2.3.1 form-encodes), and form or JSON bodies up to `max_body_bytes` (a larger body is passed on for
the route to refuse by its size).
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.responses import HTMLResponse, JSONResponse, Response

from openpayer.api.negotiation import error_response
from openpayer.fhir.errors import BadRequest

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MESSAGE = "The request contains a NUL character (U+0000), which no parameter, id or value may contain"
# `\u0000` in JSON text, unless its backslash is itself escaped (an even run of backslashes before it).
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000", re.IGNORECASE)
_JSON_AUTH_ENDPOINTS = ("token", "introspect", "revoke", "userinfo")


def _encoded_nul(data: bytes) -> bool:
    return b"\x00" in data or b"%00" in data


def _has_nul_in_basic(value: bytes) -> bool:
    scheme, _, credentials = value.partition(b" ")
    if scheme.lower() != b"basic":
        return False
    try:
        decoded = base64.b64decode(credentials.strip(), validate=False)
    except (binascii.Error, ValueError):
        return False
    return _encoded_nul(decoded)


def _body_kind(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"content-type":
            media = value.split(b";")[0].strip().lower()
            if media == b"application/x-www-form-urlencoded":
                return "form"
            if media.endswith(b"json"):
                return "json"
    return None


def rejection(path: str) -> Response:
    """The 400 in the form the route's clients read."""
    parts = path.strip("/").split("/")
    if len(parts) >= 2 and parts[1] in ("fhir", "directory"):
        return error_response(BadRequest(MESSAGE))
    if len(parts) >= 3 and parts[1] == "auth" and parts[2] in _JSON_AUTH_ENDPOINTS:
        body = {"error": "invalid_request", "error_description": MESSAGE}
        return JSONResponse(body, 400, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
    page = f"<!doctype html><html lang=en><title>Bad request</title><p>{html.escape(MESSAGE)}.</p></html>"
    return HTMLResponse(page, 400)


class RejectNul:
    """Pure ASGI middleware (no buffering of responses; bodies buffered only when they are checked)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
        if (
            "\x00" in path
            or _encoded_nul(scope.get("query_string", b""))
            or any(b"\x00" in value for _, value in headers)
            or any(name == b"authorization" and _has_nul_in_basic(value) for name, value in headers)
        ):
            await rejection(path)(scope, receive, send)
            return
        kind = _body_kind(headers) if scope.get("method") in ("POST", "PUT", "PATCH") else None
        if kind is None:
            await self.app(scope, receive, send)
            return
        buffered: list[Message] = []
        size = 0
        complete = False
        while size <= self.max_body_bytes:
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request":
                complete = True
                break
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                complete = True
                break
        if complete:
            body = b"".join(m.get("body", b"") for m in buffered if m["type"] == "http.request")
            found = (
                _encoded_nul(body) if kind == "form" else (b"\x00" in body or bool(_JSON_NUL.search(body)))
            )
            if found:
                await rejection(path)(scope, receive, send)
                return

        async def replay() -> Message:
            if buffered:
                return buffered.pop(0)
            return await receive()

        await self.app(scope, replay, send)
