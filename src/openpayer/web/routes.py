"""Plain Starlette routes (an endpoint that takes the request and returns a response, without FastAPI's
request handling) that name themselves in the request's scope as FastAPI's routes do."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
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
