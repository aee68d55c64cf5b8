"""Logging: one JSON object per line for machines, or a readable line for a person at a terminal.

Standard-library `logging` with a small formatter rather than structlog: every module already logs through
`logging.getLogger`, and so do uvicorn, SQLAlchemy and Alembic; one formatter on the root handler gives all of
them the same shape without a second logging system to bridge. The fields of the request being served
(request id, route template, environment, client id; see `context`) are added to every line, and a call may
add its own with `extra={"fields": {...}}`.

A line: `{"time": "2026-12-02T07:40:01.123Z", "level": "info", "event": "request", "logger": "openpayer.http",
"request_id": "…", "method": "GET", "route": "/{env}/fhir/{type}", "status": 200, "duration_ms": 3.1,
"env": "sandbox", "client_id": "…"}`.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

import orjson

from openpayer.observability import context

# Fields first in every line, in this order; anything else follows.
_ORDER = ("request_id", "method", "route", "status", "duration_ms", "env", "client_id")
_HANDLER_NAME = "openpayer"


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = dict(context.current())
    fields.update(getattr(record, "fields", None) or {})
    ordered = {key: fields.pop(key) for key in _ORDER if fields.get(key) is not None}
    ordered.update((k, v) for k, v in fields.items() if v is not None)
    return ordered


def _timestamp(record: logging.LogRecord) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line (orjson: newlines inside values are escaped, so a line is an event)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            "logger": record.name,
            **_fields(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class ConsoleFormatter(logging.Formatter):
    """`07:40:01 INFO  request  status=200 route=/{env}/fhir/{type} …` for a person watching a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        clock = time.strftime("%H:%M:%S", time.localtime(record.created))
        pairs = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        text = f"{clock} {record.levelname:<7} {record.getMessage()}" + (f"  {pairs}" if pairs else "")
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a line is logged, not when logging was configured: a CLI
    command run in process (tests, `CliRunner`) swaps stderr and closes its stand-in afterwards."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure_logging(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Route every logger through one handler on the root logger; safe to call again (it replaces ours).

    `fmt` is `json`, `console`, or `auto` (console when the stream is a terminal, JSON otherwise).
    """
    if fmt == "auto":
        fmt = "console" if (stream or sys.stderr).isatty() else "json"
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(ConsoleFormatter() if fmt == "console" else JsonFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == _HANDLER_NAME:
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn's loggers carry their own handlers when it configures logging; ours are the only ones.
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # Its access log writes each request's path and query, which carry resource ids (a Patient id names a
    # member): off, whatever the server was told; the application's `request` event replaces it.
    logging.getLogger("uvicorn.access").disabled = True
