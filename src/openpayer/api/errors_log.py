"""Unhandled errors: a 500 OperationOutcome for the client, and a log line with no value the request carried.

A database error's message holds the SQL and, unless the engine hides them, its bound parameters: a
member's patient id, the member number searched. An exception's message may quote any input. So the log
of an unhandled error names the exception types (with their causes), the route template (`/{env}/fhir/
{rtype}`, not the path with its ids), the request id and the code locations of the traceback, and
never an exception message, a query string, a header or a body.

It is a middleware rather than an `exception_handler(Exception)`: Starlette re-raises after such a handler,
and the server then logs the exception with its message (the SQL and its parameters) and closes the
keep-alive connection. Here the error ends as an ordinary 500 response.
"""

from __future__ import annotations

import logging
import re
import traceback
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.requests import Request

from openpayer.api.negotiation import error_response
from openpayer.fhir.errors import FHIRError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("openpayer")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def request_id_of(request: Request) -> str:
    """The id set by a request-id middleware, else a well-formed `X-Request-ID`, else a new one."""
    found = getattr(request.state, "request_id", None)
    if isinstance(found, str) and found:
        return found
    sent = request.headers.get("x-request-id", "")
    return sent if _REQUEST_ID.fullmatch(sent) else uuid.uuid4().hex


def route_template(request: Request) -> str:
    route = request.scope.get("route")
    template = getattr(route, "path", None)
    return template if isinstance(template, str) else "(no route)"


def error_types(exc: BaseException) -> str:
    """`psycopg.errors.DataError <- sqlalchemy.exc.DataError`: the chain of types, innermost last."""
    names: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(names) < 8:
        seen.add(id(current))
        kind = type(current)
        names.append(f"{kind.__module__}.{kind.__qualname__}")
        current = current.__cause__ or current.__context__
    return " <- ".join(names)


def code_locations(exc: BaseException, limit: int = 40) -> str:
    """The traceback's frames as `file:line in function`, without source lines or the message."""
    frames = traceback.extract_tb(exc.__traceback__)[-limit:]
    return "\n".join(f"  {frame.filename}:{frame.lineno} in {frame.name}" for frame in frames)


class UnhandledErrors:
    """Pure ASGI middleware, outermost of the application's: catches what nothing else handled."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception as exc:
            request = Request(scope)
            request_id = request_id_of(request)
            log.error(
                "unhandled error %s on %s %s (request id %s)\n%s",
                error_types(exc),
                request.method,
                route_template(request),
                request_id,
                code_locations(exc),
            )
            if started:
                return  # the response is under way: the server ends the connection
            error = FHIRError(
                f"An unexpected error occurred; it has been logged with request id {request_id}"
            )
            error.status = 500
            await error_response(error)(scope, receive, send)
