"""The fields of the request being served, for every log line written while serving it.

One mutable dict per request in a context variable: the request middleware creates it, and code anywhere
below (including sync endpoints run in the thread pool, which copies the context) adds to it with
`annotate`. Only identifiers meant for operators go here (request id, route template, environment, client
id): never tokens, paths with resource ids, or member data.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

_fields: ContextVar[dict[str, Any] | None] = ContextVar("openpayer_request_fields", default=None)


def begin(fields: dict[str, Any]) -> object:
    """Start a request's fields; returns the token `end` needs."""
    return _fields.set(fields)


def end(token: object) -> None:
    _fields.reset(token)  # type: ignore[arg-type]


def annotate(**fields: Any) -> None:
    """Add fields (e.g. `client_id`) to the current request's log lines; outside a request, nothing."""
    current = _fields.get()
    if current is not None:
        current.update(fields)


def current() -> dict[str, Any]:
    return _fields.get() or {}
