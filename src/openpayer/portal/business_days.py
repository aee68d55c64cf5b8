"""Review due dates: two business days after submission, Monday to Friday in America/Chicago, less holidays.

The seeds promise that the AppSec team "answers within 2 business days". We read it as: a request is due by
the end of the second business day after the day it was submitted (a Monday submission is due by Wednesday
23:59:59 Chicago time; a Friday or Saturday one by Tuesday's end). The instant stored is the start of the next
day (`due_at`): a request is overdue when `now >= due_at`. Holidays are the US federal holidays as observed
(OPM's rules: a Saturday holiday is observed on Friday, a Sunday one on Monday) unless turned off, plus any
dates in the deployment's list (`OPENPAYER_PORTAL_HOLIDAYS`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

CHICAGO = ZoneInfo("America/Chicago")
REVIEW_BUSINESS_DAYS = 2


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th given weekday (Monday = 0) of a month; n = -1 for the last one."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = (date(year + month // 12, month % 12 + 1, 1)) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: date) -> date:
    if day.weekday() == 5:
        return day - timedelta(days=1)
    if day.weekday() == 6:
        return day + timedelta(days=1)
    return day


@lru_cache(maxsize=64)
def us_federal_holidays(year: int) -> frozenset[date]:
    """5 U.S.C. §6103 holidays as observed by federal offices."""
    fixed = [date(year, 1, 1), date(year, 6, 19), date(year, 7, 4), date(year, 11, 11), date(year, 12, 25)]
    floating = [
        _nth_weekday(year, 1, 0, 3),  # Birthday of Martin Luther King, Jr.
        _nth_weekday(year, 2, 0, 3),  # Washington's Birthday
        _nth_weekday(year, 5, 0, -1),  # Memorial Day
        _nth_weekday(year, 9, 0, 1),  # Labor Day
        _nth_weekday(year, 10, 0, 2),  # Columbus Day
        _nth_weekday(year, 11, 3, 4),  # Thanksgiving Day
    ]
    observed = {_observed(d) for d in fixed} | set(floating)
    # New Year's Day on a Saturday is observed on Friday 31 December of the year before.
    next_new_year = _observed(date(year + 1, 1, 1))
    if next_new_year.year == year:
        observed.add(next_new_year)
    return frozenset(d for d in observed if d.year == year)


@dataclass(frozen=True)
class BusinessCalendar:
    extra_holidays: frozenset[date] = field(default_factory=frozenset)
    federal_holidays: bool = True
    zone: ZoneInfo = CHICAGO

    @classmethod
    def of(cls, holidays: Iterable[date] = (), *, federal_holidays: bool = True) -> BusinessCalendar:
        return cls(frozenset(holidays), federal_holidays)

    def is_business_day(self, day: date) -> bool:
        if day.weekday() >= 5 or day in self.extra_holidays:
            return False
        return not (self.federal_holidays and day in us_federal_holidays(day.year))

    def add_business_days(self, day: date, count: int) -> date:
        """The count-th business day after `day` (not counting `day` itself)."""
        current = day
        remaining = count
        while remaining > 0:
            current += timedelta(days=1)
            if self.is_business_day(current):
                remaining -= 1
        return current

    def due_at(self, submitted_at: int, business_days: int = REVIEW_BUSINESS_DAYS) -> int:
        """Epoch seconds at which a request submitted at `submitted_at` becomes overdue."""
        local_day = datetime.fromtimestamp(submitted_at, self.zone).date()
        last_day = self.add_business_days(local_day, business_days)
        # The start of the following calendar day, in local time (zoneinfo handles the DST change).
        end = datetime.combine(last_day + timedelta(days=1), time(0, 0), tzinfo=self.zone)
        return int(end.timestamp())
