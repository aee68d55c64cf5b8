"""Review due dates: end of the second business day after submission, America/Chicago, holidays skipped."""

from __future__ import annotations

from datetime import date, datetime

from openpayer.portal.business_days import CHICAGO, BusinessCalendar, us_federal_holidays


def at(*args: int) -> int:
    return int(datetime(*args, tzinfo=CHICAGO).timestamp())  # type: ignore[misc]


def local(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, CHICAGO).replace(tzinfo=None)


def test_monday_is_due_by_the_end_of_wednesday() -> None:
    calendar = BusinessCalendar.of(federal_holidays=False)
    due = calendar.due_at(at(2026, 12, 7, 9, 30))  # Monday
    assert local(due) == datetime(2026, 12, 10, 0, 0)  # overdue from Thursday 00:00
    assert local(due - 1) == datetime(2026, 12, 9, 23, 59, 59)


def test_weekends_are_skipped() -> None:
    calendar = BusinessCalendar.of(federal_holidays=False)
    friday = calendar.due_at(at(2026, 12, 4, 16, 0))
    saturday = calendar.due_at(at(2026, 12, 5, 11, 0))
    sunday_night = calendar.due_at(at(2026, 12, 6, 23, 59))
    assert local(friday) == local(saturday) == local(sunday_night) == datetime(2026, 12, 9, 0, 0)


def test_the_day_is_the_chicago_day_not_the_utc_one() -> None:
    # 2026-12-08 03:00 UTC is still Monday 21:00 in Chicago: due by the end of Wednesday, not Thursday.
    calendar = BusinessCalendar.of(federal_holidays=False)
    utc = int(datetime.fromisoformat("2026-12-08T03:00:00+00:00").timestamp())
    assert local(calendar.due_at(utc)) == datetime(2026, 12, 10, 0, 0)


def test_configured_holidays_are_skipped() -> None:
    calendar = BusinessCalendar.of([date(2026, 12, 8)], federal_holidays=False)
    assert local(calendar.due_at(at(2026, 12, 7, 9, 0))) == datetime(2026, 12, 11, 0, 0)


def test_federal_holidays_as_observed() -> None:
    holidays = us_federal_holidays(2026)
    assert date(2026, 11, 26) in holidays  # Thanksgiving, fourth Thursday
    assert date(2026, 7, 3) in holidays  # 4 July 2026 is a Saturday: observed Friday
    assert date(2026, 1, 19) in holidays  # Martin Luther King Jr. Day, third Monday
    assert date(2026, 5, 25) in holidays  # Memorial Day, last Monday
    assert date(2027, 12, 31) in us_federal_holidays(2027)  # New Year 2028 is a Saturday
    assert len(holidays) == 11
    calendar = BusinessCalendar.of()
    # Wednesday before Thanksgiving: Thursday is a holiday, so Friday and Monday count: due end of Monday.
    assert local(calendar.due_at(at(2026, 11, 25, 10, 0))) == datetime(2026, 12, 1, 0, 0)


def test_daylight_saving_change_keeps_midnight() -> None:
    calendar = BusinessCalendar.of(federal_holidays=False)
    # Clocks go back on Sunday 1 November 2026; Friday 30 October is due by the end of Tuesday 3 November.
    assert local(calendar.due_at(at(2026, 10, 30, 12, 0))) == datetime(2026, 11, 4, 0, 0)
