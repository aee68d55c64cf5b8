"""The log format: JSON lines for machines, a readable line at a terminal, request fields on both."""

from __future__ import annotations

import io
import json
import logging

from openpayer.observability import context
from openpayer.observability.logs import configure_logging


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_json_off_a_terminal_with_the_request_fields() -> None:
    stream = io.StringIO()
    configure_logging("info", "auto", stream)
    token = context.begin({"request_id": "r-1", "route": "/{env}/fhir/{rtype}"})
    context.annotate(client_id="app-9")
    try:
        logging.getLogger("openpayer.test").warning("two\nlines", extra={"fields": {"status": 403}})
    finally:
        context.end(token)
    logging.getLogger("openpayer.test").debug("below the level")
    [line] = stream.getvalue().splitlines()
    event = json.loads(line)
    assert event["event"] == "two\nlines"
    assert event["level"] == "warning"
    assert event["request_id"] == "r-1"
    assert event["client_id"] == "app-9"
    assert event["status"] == 403
    assert event["time"].endswith("Z")


def test_readable_at_a_terminal() -> None:
    stream = Terminal()
    configure_logging("debug", "auto", stream)
    logging.getLogger("openpayer.test").info(
        "request", extra={"fields": {"status": 200, "route": "/healthz"}}
    )
    text = stream.getvalue()
    assert "INFO" in text
    assert "request" in text
    assert "status=200" in text
    assert "route=/healthz" in text
    assert not text.lstrip().startswith("{")
    configure_logging("info", "json", Terminal())  # asked for JSON, JSON even at a terminal
    assert sum(h.get_name() == "openpayer" for h in logging.getLogger().handlers) == 1
