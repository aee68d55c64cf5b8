"""Plain Starlette routes (an endpoint that takes the request and returns a response, without FastAPI's
request handling) that name themselves in the request's scope as FastAPI's routes do; and HEAD wherever
GET is answered."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Scope


class PlainRoute(Route):
    """Leaves itself in the scope (`scope["route"]`), so the request's log line and metrics take its
    template from there instead of matching every route again after the response (`route_of`): ten
    regular expressions on a token request."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE:
            child["route"] = self
        return match, child


def add_plain_route(
    app: Any,
    path: str,
    endpoint: Callable[[Request], Awaitable[Response]],
    *,
    methods: Sequence[str],
) -> None:
    """`app.add_route(path, endpoint, methods=..., include_in_schema=False)` with a `PlainRoute`."""
    app.router.routes.append(PlainRoute(path, endpoint, methods=list(methods), include_in_schema=False))


def answer_head_like_get(app: Any) -> None:
    """Every route that answers GET answers HEAD too (RFC 9110 §9.3.2: the same status and headers, no
    content; the server drops the body). Starlette's routes do so already, FastAPI's do not: a HEAD on
    `/{env}/fhir/metadata` went on to the next route, `/{env}/fhir/{rtype}`, and answered 404. The routes
    given HEAD here are marked, so that the OpenAPI document leaves it out as FastAPI would."""
    for route in _routes(app.router.routes):
        methods = getattr(route, "methods", None)
        if methods and "GET" in methods and "HEAD" not in methods:
            methods.add("HEAD")
            route.implicit_head = True


def _routes(routes: Sequence[Any]) -> Iterator[Any]:
    """The routes, those of included routers too (FastAPI keeps an included router as one entry)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        yield from _routes(included.routes) if included is not None else (route,)
