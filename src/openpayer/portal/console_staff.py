"""The console's administration pages: staff accounts (`staff:manage`: create with a role — a temporary
password shown once —, change a role, disable and enable) and the terms of service (`terms:publish`: read the
current version, publish a new one, which every organization must accept again before its next production
request). The services check the permission and audit each change; staff cannot change their own account.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from openpayer.portal.console import Staff
from openpayer.portal.console_base import ConsoleSection, Route, form_text
from openpayer.portal.staff import ROLE_DESCRIPTIONS, Permission, Role
from openpayer.portal.web import client_address, redirect

DONE = {
    "role": "The role was changed.",
    "disabled": "The account was disabled: it can no longer use the console.",
    "active": "The account was enabled.",
    "published": "The new terms are published: organizations accept them before their next request.",
}


class AdministrationPages(ConsoleSection):
    def routes(self) -> list[Route]:
        return [
            ("GET", "/admin/staff", self.staff_list),
            ("POST", "/admin/staff", self.staff_create),
            ("POST", "/admin/staff/{account_id:int}/role", self.staff_role),
            ("POST", "/admin/staff/{account_id:int}/status", self.staff_status),
            ("GET", "/admin/terms", self.terms),
            ("POST", "/admin/terms", self.terms_publish),
        ]

    # ---- staff -------------------------------------------------------------------------------------
    def _staff_page(self, request: Request, staff: Staff, status: int = 200, **context: object) -> Response:
        members = self.portal.staff.all(staff[1].id)
        people = {m.account_id: self.portal.people.get(m.account_id) for m in members}
        return self.render(
            request,
            staff,
            "admin/staff.html",
            status,
            members=members,
            people=people,
            roles=[(r.value, ROLE_DESCRIPTIONS[r]) for r in Role],
            **context,
        )

    async def staff_list(self, request: Request, staff: Staff) -> Response:
        return self._staff_page(request, staff, notice=DONE.get(request.query_params.get("done", "")))

    async def staff_create(self, request: Request, staff: Staff) -> Response:
        email, role = await form_text(request, "email"), await form_text(request, "role")
        member, password = self.portal.actions.create_staff(
            staff[1].id, email=email, role=role, address=client_address(request)
        )
        # The temporary password is in this response only (no-store), never in a URL or the audit.
        return self._staff_page(request, staff, created=member, temporary_password=password)

    async def staff_role(self, request: Request, staff: Staff, account_id: int) -> Response:
        role = await form_text(request, "role")
        self.portal.staff.set_role(staff[1].id, account_id, role, client_address(request))
        return redirect("/admin/staff?done=role")

    async def staff_status(self, request: Request, staff: Staff, account_id: int) -> Response:
        status = await form_text(request, "status")
        self.portal.staff.set_status(staff[1].id, account_id, status, client_address(request))
        return redirect(f"/admin/staff?done={'disabled' if status == 'disabled' else 'active'}")

    # ---- terms of service --------------------------------------------------------------------------
    async def terms(self, request: Request, staff: Staff) -> Response:
        self.portal.staff.require(staff[1].id, Permission.TERMS_PUBLISH)
        return self.render(
            request,
            staff,
            "admin/terms.html",
            current=self.portal.terms.current(),
            notice=DONE.get(request.query_params.get("done", "")),
        )

    async def terms_publish(self, request: Request, staff: Staff) -> Response:
        version, text = await form_text(request, "version"), await form_text(request, "text")
        self.portal.terms.publish(staff[1].id, version, text, client_address(request))
        return redirect("/admin/terms?done=published")
