"""The FHIR `instant` text the store stamps on every version (`meta.lastUpdated`)."""

from __future__ import annotations

import pytest

from openpayer.clock import to_instant


@pytest.mark.parametrize(
    ("micros", "text"),
    [
        (0, "1970-01-01T00:00:00.000+00:00"),
        (1_764_806_400_123_456, "2025-12-04T00:00:00.123+00:00"),
        (1_764_806_399_999_999, "2025-12-03T23:59:59.999+00:00"),
        (1_764_806_400_000_999, "2025-12-04T00:00:00.000+00:00"),
        (-1_000, "1969-12-31T23:59:59.999+00:00"),
        (253_402_300_799_999_000, "9999-12-31T23:59:59.999+00:00"),
    ],
)
def test_instant_text_is_exact_to_the_millisecond(micros: int, text: str) -> None:
    assert to_instant(micros) == text


def test_consecutive_instants_within_and_across_seconds() -> None:
    """The formatted second is reused: a stamp in the next second must not keep the previous one."""
    start = 1_764_806_398_000_000
    seen = [to_instant(start + step * 250_000) for step in range(12)]
    assert seen[0] == "2025-12-03T23:59:58.000+00:00"
    assert seen[3] == "2025-12-03T23:59:58.750+00:00"
    assert seen[4] == "2025-12-03T23:59:59.000+00:00"
    assert seen[8] == "2025-12-04T00:00:00.000+00:00"
    assert seen[11] == "2025-12-04T00:00:00.750+00:00"
    assert to_instant(start) == seen[0]  # back to an earlier second
