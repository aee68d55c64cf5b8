"""How the console shows times: UTC, to the minute (audit events to the second)."""

from __future__ import annotations

from datetime import UTC, datetime


def when(seconds: int | None) -> str:
    """Epoch seconds as a UTC time a person reads ("never" for None)."""
    if seconds is None:
        return "never"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")


def when_micros(micros: int | None) -> str:
    if micros is None:
        return ""
    return datetime.fromtimestamp(micros / 1_000_000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
