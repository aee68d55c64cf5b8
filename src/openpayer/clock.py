"""The platform's one clock, and the time formats FHIR and HTTP use.

Every domain reads the time through the `Clock` the composition root (`openpayer.bootstrap`) builds, so that a
test moves one clock to expire codes, tokens, sessions and throttling windows, and the FHIR store, the audit
log and the authorization server agree on what "now" is. Seconds for the authorization server's fields;
integer microseconds (at millisecond precision) for `meta.lastUpdated` and the audit log.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime


class Clock:
    """Wall-clock time plus an offset that tests advance (`clock.advance(61)` expires a 60 s code)."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def now(self) -> int:
        """Seconds since the epoch."""
        return int(time.time() + self.offset)

    def now_float(self) -> float:
        """Seconds since the epoch with the fraction (sliding windows)."""
        return time.time() + self.offset

    def now_micros(self) -> int:
        """Microseconds since the epoch at millisecond precision (FHIR `instant`s carry milliseconds)."""
        return ((time.time_ns() + int(self.offset * 1_000_000_000)) // 1_000_000) * 1000

    def advance(self, seconds: float) -> None:
        self.offset += seconds


_last_second: tuple[int, str] = (0, "1970-01-01T00:00:00.")


def to_instant(micros: int) -> str:
    """FHIR `instant` text, e.g. 2026-11-23T19:11:05.123+00:00.

    The date and time of the last second formatted are kept: a load stamps thousands of resources a
    second, and formatting a datetime cost more than the rest of the stamp (docs/performance.md, Loading).
    """
    global _last_second
    second, fraction = divmod(micros, 1_000_000)
    known, text = _last_second  # one tuple, read and replaced whole: safe across threads
    if known != second:
        text = datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        _last_second = (second, text)
    return f"{text}{fraction // 1000:03d}+00:00"


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
