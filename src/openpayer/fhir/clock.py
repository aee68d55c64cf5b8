"""Server time for `meta.lastUpdated`: UTC, millisecond precision, as integer microseconds since the epoch."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime


def now_micros() -> int:
    return (time.time_ns() // 1_000_000) * 1000


def to_instant(micros: int) -> str:
    """FHIR `instant` text, e.g. 2026-11-23T19:11:05.123+00:00."""
    dt = datetime.fromtimestamp(micros / 1_000_000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+00:00"


def to_http_date(micros: int) -> str:
    return format_datetime(datetime.fromtimestamp(micros // 1_000_000, tz=UTC), usegmt=True)


def from_http_date(value: str) -> int | None:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp()) * 1_000_000
