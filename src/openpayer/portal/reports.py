"""The CMS Patient Access API usage report (CMS-0057-F, 45 CFR 156.221(i) and its parallels): for one calendar
year and one environment, the number of unique patients whose data was transferred through the Patient Access
API to an app they chose, and the number whose data was transferred more than once.

Computed from the access audit (`security.audit_search`), never from counters kept on the side; the method is
written in docs/reports.md. In short:

- a **request** counts when the FHIR API answered it with success (2xx), it read data (read, vread, search,
  history, `$everything`), and its token was authorized by a member for a patient (member and patient on
  record): backend (system) tokens and the public `/metadata` (the health check's call) never count;
- a **transfer** is everything one app received about one patient on one calendar day (America/Chicago, the
  plan's business time zone), so an app's sync session of many requests is one transfer;
- a patient's data was transferred **more than once** when there are at least two transfers: two days with one
  app, or two apps (on any days);
- monitoring accounts' synthetic Patients (`portal/monitoring.py`, the health checks' sign-ins) are not
  patients and are left out.

The year runs from 1 January 00:00 to 1 January 00:00 of the next year in America/Chicago.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from itertools import groupby
from typing import Protocol

from openpayer.portal.business_days import CHICAGO
from openpayer.portal.errors import Invalid
from openpayer.portal.interfaces import AccessRecords, Clock
from openpayer.portal.staff import Permission, StaffService


class MonitoringLabels(Protocol):
    """Which Patients of an environment are monitoring accounts' (`monitoring.MonitoringService`)."""

    def monitoring_patients(self, env: str) -> frozenset[str]: ...


METHOD = (
    "Unique patients with at least one transfer in the calendar year (America/Chicago). "
    "A transfer is the data one app received about one patient on one day: successful (2xx) FHIR read, "
    "vread, search, history or $everything requests through the Patient Access API, with an access token "
    "a member authorized for that patient. More than once: two or more transfers (two days, or two apps). "
    "Backend (system) tokens, /metadata calls and monitoring accounts' synthetic Patients (health checks) "
    "are not counted."
)


@dataclass(frozen=True, slots=True)
class CmsUsage:
    year: int
    env: str
    unique_patients: int
    more_than_once: int
    apps: int  # distinct apps (clients) that received data
    requests: int  # the successful requests counted
    period_start: str
    period_end: str  # exclusive
    time_zone: str
    generated_at: int
    method: str = METHOD

    def as_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    def as_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        row = asdict(self)
        writer.writerow(row.keys())
        writer.writerow(row.values())
        return out.getvalue()


class UsageReports:
    def __init__(
        self,
        staff: StaffService,
        records: AccessRecords,
        clock: Clock,
        environments: Sequence[str],
        monitoring: MonitoringLabels,
    ) -> None:
        self.staff = staff
        self.monitoring = monitoring
        self.records = records
        self.clock = clock
        self.environments = tuple(environments)

    def cms_usage(self, actor: int | None, year: int, env: str) -> CmsUsage:
        """The report; `actor=None` is the command line (an operator), else it needs `reports:read`."""
        if actor is not None:
            self.staff.require(actor, Permission.REPORTS_READ)
        if env not in self.environments:
            raise Invalid(f"unknown environment {env!r}; configured: {', '.join(self.environments)}", "env")
        if not 2000 <= year <= 9998:
            raise Invalid("the year is a calendar year such as 2026", "year")
        start = datetime(year, 1, 1, tzinfo=CHICAGO)
        end = datetime(year + 1, 1, 1, tzinfo=CHICAGO)
        patients = more_than_once = requests = 0
        apps: set[str] = set()
        synthetic = self.monitoring.monitoring_patients(env)
        pairs = self.records.transfers(env, _micros(start), _micros(end))
        for patient, rows in groupby(pairs, key=lambda pair: pair.patient_id):
            if patient in synthetic:
                continue
            transfers = 0
            for pair in rows:
                apps.add(pair.client_id)
                requests += pair.requests
                # All of a pair's requests fell on one day exactly when its first and last did.
                transfers += 1 if _day(pair.first_at) == _day(pair.last_at) else 2
            patients += 1
            more_than_once += transfers > 1
        return CmsUsage(
            year=year,
            env=env,
            unique_patients=patients,
            more_than_once=more_than_once,
            apps=len(apps),
            requests=requests,
            period_start=start.isoformat(),
            period_end=end.isoformat(),
            time_zone="America/Chicago",
            generated_at=self.clock.now(),
        )


def _micros(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000


def _day(micros: int) -> date:
    return datetime.fromtimestamp(micros / 1_000_000, CHICAGO).date()


def parse_year(value: str, default: int) -> int:
    try:
        return int(value) if value.strip() else default
    except ValueError as exc:
        raise Invalid("the year is a calendar year such as 2026", "year") from exc
