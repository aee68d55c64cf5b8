"""The OpenAPI document with an operationId unique per operation.

The FHIR routes answer several methods each (GET and HEAD, and POST for operations), and FastAPI gives
every method of a route the same operationId, which OpenAPI forbids (and FastAPI warns about on every
build). This builds the schema once, makes repeated ids unique by their method, and caches it as
`FastAPI.openapi` does.
"""

from __future__ import annotations

import warnings
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Duplicate Operation ID", category=UserWarning)
                schema = get_openapi(
                    title=app.title, version=app.version, description=app.description, routes=app.routes
                )
            app.openapi_schema = unique_operation_ids(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def unique_operation_ids(schema: dict[str, Any]) -> dict[str, Any]:
    seen: set[str] = set()
    for item in schema.get("paths", {}).values():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "operationId" not in operation:
                continue
            op_id = operation["operationId"]
            if op_id in seen:
                op_id = f"{op_id}_{method}"
                operation["operationId"] = op_id
            seen.add(op_id)
    return schema
