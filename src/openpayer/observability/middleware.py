"""Per-request observation, as plain ASGI (no BaseHTTPMiddleware: no extra task or body buffering on the
hot path): a request id, one `request` log event, and the request metrics.

- `X-Request-ID`: a caller's id is kept when it is short and made of safe characters (letters, digits,
  `.`, `_`, `-`; at most 64), so a proxy's id follows the request through our logs; otherwise a new one
  is generated. It is echoed on every response, 500s included (this layer sits outside Starlette's error
  handler), and is on every log line written while the request is served.
- The log event carries the route *template* (`/{env}/fhir/{type}/{id}`), never the path or query: paths
  and queries carry resource ids, and a Patient id identifies a member.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator, MutableMapping
from typing import Any

from starlette.routing import Match, Mount

from openpayer.observability import context
from openpayer.observability.metrics import observe_request

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_ID_HEADER = b"x-request-id"
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})  # probes and scrapes: debug level
UNMATCHED = "unmatched"

log = logging.getLogger("openpayer.http")


def accepted_request_id(value: bytes | None) -> str | None:
    """The caller's request id when it is safe to log and echo, else None."""
    if value is None:
        return None
    text = value.decode("latin-1")
    return text if _SAFE_ID.fullmatch(text) else None


def route_of(scope: Scope) -> tuple[str, dict[str, Any]]:
    """The template of the route that served (or would serve) the request, `unmatched` for none, and its
    path parameters.

    A request answered before routing (the bearer guard's 401, a CORS preflight) is matched against the
    application's routes here, so its template is still known.
    """
    route = scope.get("route")
    params: dict[str, Any] = scope.get("path_params") or {}
    if route is None:
        partial: tuple[Any, dict[str, Any]] | None = None
        for candidate in _flat_routes(getattr(scope.get("app"), "routes", ())):
            match, child = candidate.matches(scope)
            if match is Match.FULL:
                partial = (candidate, child.get("path_params") or {})
                break
            if match is Match.PARTIAL and partial is None:  # the path matches, the method does not
                partial = (candidate, child.get("path_params") or {})
        if partial is not None:
            route, params = partial
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED, {}
    return (f"{path}/{{path}}" if isinstance(route, Mount) else path), params


def _flat_routes(routes: Iterable[Any]) -> Iterator[Any]:
    """Routes with a path, through FastAPI's included routers (each `effective_route_contexts()` is a
    route as mounted: its `path` has the router's prefix)."""
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:
            yield from contexts()
        else:
            yield route


class RequestObservation:
    def __init__(self, app: ASGIApp, environments: Collection[str] = ()) -> None:
        self.app = app
        self.environments = frozenset(environments)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        supplied = next((v for k, v in scope.get("headers", ()) if k == REQUEST_ID_HEADER), None)
        request_id = accepted_request_id(supplied) or uuid.uuid4().hex
        fields: dict[str, Any] = {"request_id": request_id, "method": scope["method"]}
        token = context.begin(fields)
        scope.setdefault("state", {})["request_id"] = request_id  # `request.state.request_id`
        echoed = (REQUEST_ID_HEADER, request_id.encode())
        status = 500  # what the client gets if the application fails before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), echoed]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route, params = route_of(scope)
            env = params.get("env")
            fields.update(
                route=route,
                status=status,
                duration_ms=round(seconds * 1000, 2),
                env=env if env in self.environments else None,
            )
            observe_request(route, scope["method"], status, seconds)
            level = logging.DEBUG if route in _QUIET_ROUTES else logging.INFO
            if status >= 500:
                level = logging.ERROR
            log.log(level, "request", extra={"fields": fields})
            context.end(token)
