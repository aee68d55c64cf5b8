"""The OpenAPI document with an operationId unique per operation.

The FHIR routes answer several methods each (GET and HEAD, and POST for operations), and FastAPI gives
every method of a route the same operationId, which OpenAPI forbids (and FastAPI warns about on every
build). This builds the schema once, names each operation's id by its own method, and caches it as
`FastAPI.openapi` does. HEAD, which every GET route answers (`web.routes.answer_head_like_get`), is listed
only where a route declares it.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi import routing as fastapi_routing
from fastapi.openapi.utils import get_openapi


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Duplicate Operation ID", category=UserWarning)
                schema = get_openapi(
                    title=app.title, version=app.version, description=app.description, routes=app.routes
                )
            paths = schema.get("paths", {})
            for route, path in _routes_with_paths(app.routes):
                if getattr(route, "implicit_head", False):  # `web.routes.answer_head_like_get`
                    paths.get(path, {}).pop("head", None)
            app.openapi_schema = unique_operation_ids(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _routes_with_paths(routes: Any) -> Iterator[tuple[Any, str]]:
    """Each route with its full path: FastAPI 0.16x keeps an included router as one entry, whose routes
    `iter_route_contexts` gives with the router's prefix; older releases copy them into the app's list."""
    iter_route_contexts = getattr(fastapi_routing, "iter_route_contexts", None)
    if iter_route_contexts is None:
        for route in routes:
            yield route, getattr(route, "path_format", "")
        return
    for context in iter_route_contexts(routes):
        yield context.original_route, context.path_format


def unique_operation_ids(schema: dict[str, Any]) -> dict[str, Any]:
    """Each operation's id ends with its own method: FastAPI's ends with the first of its route's methods,
    a set, whose order differs between processes. Ids still repeated after that get a number."""
    seen: set[str] = set()
    for item in schema.get("paths", {}).values():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "operationId" not in operation:
                continue
            op_id = f"{_METHOD_SUFFIX.sub('', operation['operationId'])}_{method}"
            unique, n = op_id, 1
            while unique in seen:
                n += 1
                unique = f"{op_id}_{n}"
            operation["operationId"] = unique
            seen.add(unique)
    return schema


_METHOD_SUFFIX = re.compile(r"_(get|head|post|put|patch|delete|options|trace)$")
