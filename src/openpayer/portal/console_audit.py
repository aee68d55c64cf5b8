"""The console's audit pages (`audit:read`): `/admin/audit` searches the access audit by environment, event,
app (client id), member, patient and day, newest first, 100 a page; `/admin/audit/staff` searches the staff
actions by action, target, actor and day. Both export what the filters match as CSV or JSON
(`/admin/audit/export?format=csv&...`, `/admin/audit/staff/export?format=json&...`); an export is audited.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from openpayer.portal.audit_views import access_query
from openpayer.portal.console import Staff
from openpayer.portal.console_base import ConsoleSection, Route
from openpayer.portal.web import client_address
from openpayer.security.audit_search import event_names

PAGE = 100
ACCESS_FILTERS = ("env", "event", "client_id", "member_id", "patient_id", "from", "to")
STAFF_FILTERS = ("action", "target_type", "target_id", "actor", "from", "to")


def download(chunks: object, fmt: str, name: str) -> Response:
    media = "application/json" if fmt == "json" else "text/csv; charset=utf-8"
    return StreamingResponse(
        chunks,  # type: ignore[arg-type]
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="{name}.{fmt}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


class AuditPages(ConsoleSection):
    def routes(self) -> list[Route]:
        return [
            ("GET", "/admin/audit", self.access),
            ("GET", "/admin/audit/export", self.access_export),
            ("GET", "/admin/audit/staff", self.staff_actions),
            ("GET", "/admin/audit/staff/export", self.staff_export),
        ]

    @staticmethod
    def _filters(request: Request, names: tuple[str, ...]) -> dict[str, str]:
        return {name: request.query_params.get(name, "").strip() for name in names}

    async def access(self, request: Request, staff: Staff) -> Response:
        filters = self._filters(request, ACCESS_FILTERS)
        query = access_query({**filters, "before": request.query_params.get("before", "")})
        events = self.portal.audits.access_events(staff[1].id, query, PAGE + 1)
        more = len(events) > PAGE
        events = events[:PAGE]
        return self.render(
            request,
            staff,
            "admin/audit.html",
            filters=filters,
            events=events,
            older=events[-1]["id"] if more else None,
            event_names=event_names(),
            environments=self.portal.oversight.environments,
        )

    async def access_export(self, request: Request, staff: Staff) -> Response:
        fmt = request.query_params.get("format", "csv")
        query = access_query(self._filters(request, ACCESS_FILTERS))
        chunks = self.portal.audits.export_access(staff[1].id, query, fmt, client_address(request))
        return download(chunks, fmt, "access-audit")

    async def staff_actions(self, request: Request, staff: Staff) -> Response:
        filters = self._filters(request, STAFF_FILTERS)
        entries = self.portal.audits.staff_actions(staff[1].id, filters, PAGE)
        return self.render(request, staff, "admin/audit_staff.html", filters=filters, entries=entries)

    async def staff_export(self, request: Request, staff: Staff) -> Response:
        fmt = request.query_params.get("format", "csv")
        filters = self._filters(request, STAFF_FILTERS)
        chunks = self.portal.audits.export_staff(staff[1].id, filters, fmt, client_address(request))
        return download(chunks, fmt, "staff-actions")
