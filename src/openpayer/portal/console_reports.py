"""The console's CMS usage report (`reports:read`): `/admin/reports/cms-usage?year=Y&env=E` shows, for one
calendar year and environment, the unique patients whose data went to an app they chose through the Patient
Access API and those whose data went more than once, with the method (docs/reports.md);
`/admin/reports/cms-usage/export?format=csv|json&year=Y&env=E` downloads it. By default: the previous calendar
year (the one CMS asks about) in the production environment.
"""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response

from openpayer.portal.business_days import CHICAGO
from openpayer.portal.console import Staff
from openpayer.portal.console_base import ConsoleSection, Route
from openpayer.portal.errors import Invalid
from openpayer.portal.reports import CmsUsage, parse_year


class ReportPages(ConsoleSection):
    def routes(self) -> list[Route]:
        return [
            ("GET", "/admin/reports/cms-usage", self.cms_usage),
            ("GET", "/admin/reports/cms-usage/export", self.cms_usage_export),
        ]

    def _report(self, request: Request, staff: Staff) -> CmsUsage:
        last_year = datetime.fromtimestamp(self.clock.now(), CHICAGO).year - 1
        year = parse_year(request.query_params.get("year", ""), last_year)
        env = request.query_params.get("env", "").strip() or self.portal.reviews.production_env
        return self.portal.reports.cms_usage(staff[1].id, year, env)

    async def cms_usage(self, request: Request, staff: Staff) -> Response:
        report = self._report(request, staff)
        return self.render(
            request,
            staff,
            "admin/cms_usage.html",
            report=report,
            environments=self.portal.oversight.environments,
        )

    async def cms_usage_export(self, request: Request, staff: Staff) -> Response:
        fmt = request.query_params.get("format", "csv")
        if fmt not in ("csv", "json"):
            raise Invalid("the format is csv or json", "format")
        report = self._report(request, staff)
        body = report.as_json() if fmt == "json" else report.as_csv()
        name = f"cms-usage-{report.year}-{report.env}.{fmt}"
        return Response(
            body,
            media_type="application/json" if fmt == "json" else "text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )
