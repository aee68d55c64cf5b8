"""The console's directory (`/admin/organizations`, `/admin/applications`, `/admin/people`): search and detail
pages with status, contacts, scopes and each environment's last successful SMART authorization and last API
call, and the actions staff take on a subscription or an operator-registered client (suspend, restore, rotate
credentials, remove) and on an organization (remove it, with its subscriptions and its people's accounts, as
the inactivity policy does: docs/policy.md, "Removal").

Reading needs `apps:read`; suspend and restore `subscriptions:suspend`; rotate `subscriptions:rotate`; remove
(a subscription, a client or an organization) `organizations:manage`. The services check and audit each action
(`applications.set_status`/`staff_rotate` for subscriptions — the one suspension path, so whatever makes a
suspension reach every host applies here — and `staff_actions` for removals and operator-registered clients).
A button is shown only to a role that may use it; the check that counts is the service's.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from openpayer.portal.console import Staff
from openpayer.portal.console_base import ConsoleSection, Route, form_text
from openpayer.portal.errors import NotFound
from openpayer.portal.staff import Permission
from openpayer.portal.web import client_address, redirect

DONE = {
    "suspend": "Suspended: its client authentication and tokens stop working.",
    "restore": "Restored: it works again.",
    "rotate": "The secret was rotated: the old one no longer works.",
    "remove": "Removed.",
}
ORGANIZATION_DONE = {
    "remove": "Removed: its subscriptions no longer work and its people's developer accounts were deleted "
    "(except those in another active organization, and staff); its people and contacts were sent a notice.",
}
ACTIONS = tuple(DONE)


class DirectoryPages(ConsoleSection):
    def routes(self) -> list[Route]:
        return [
            ("GET", "/admin/organizations", self.organizations),
            ("GET", "/admin/organizations/{organization_id:int}", self.organization),
            ("POST", "/admin/organizations/{organization_id:int}/remove", self.remove_organization),
            ("GET", "/admin/applications", self.applications),
            ("GET", "/admin/applications/{application_id:int}", self.application),
            ("GET", "/admin/subscriptions/{subscription_id:int}", self.subscription),
            ("POST", "/admin/subscriptions/{subscription_id:int}/{action}", self.subscription_action),
            ("GET", "/admin/clients/{env}/{client_id}", self.client),
            ("POST", "/admin/clients/{env}/{client_id}/{action}", self.client_action),
            ("GET", "/admin/people", self.people),
            ("GET", "/admin/people/{account_id:int}", self.person),
        ]

    # ---- organizations -----------------------------------------------------------------------------
    async def organizations(self, request: Request, staff: Staff) -> Response:
        query = request.query_params.get("q", "")
        found = self.portal.oversight.find_organizations(staff[1].id, query)
        return self.render(request, staff, "admin/organizations.html", query=query, found=found)

    async def organization(self, request: Request, staff: Staff, organization_id: int) -> Response:
        view = self.portal.oversight.organization(staff[1].id, organization_id)
        return self.render(
            request,
            staff,
            "admin/organization.html",
            view=view,
            notice=ORGANIZATION_DONE.get(request.query_params.get("done", "")),
            can_remove=staff[2].can(Permission.ORGANIZATIONS_MANAGE),
        )

    async def remove_organization(self, request: Request, staff: Staff, organization_id: int) -> Response:
        reason = await form_text(request, "reason")
        self.portal.actions.remove_organization(
            staff[1].id, organization_id, reason=reason, address=client_address(request)
        )
        return redirect(f"/admin/organizations/{organization_id}?done=remove")

    # ---- applications and subscriptions ------------------------------------------------------------
    async def applications(self, request: Request, staff: Staff) -> Response:
        query = request.query_params.get("q", "")
        oversight = self.portal.oversight
        found = oversight.find_applications(staff[1].id, query)
        operator = oversight.operator_clients(staff[1].id, query)
        return self.render(
            request, staff, "admin/applications.html", query=query, found=found, operator=operator
        )

    async def application(self, request: Request, staff: Staff, application_id: int) -> Response:
        view = self.portal.oversight.application(staff[1].id, application_id)
        return self.render(request, staff, "admin/application.html", view=view)

    async def subscription(self, request: Request, staff: Staff, subscription_id: int) -> Response:
        found, view = self.portal.oversight.subscription(staff[1].id, subscription_id)
        member = staff[2]
        return self.render(
            request,
            staff,
            "admin/subscription.html",
            found=found,
            view=view,
            notice=DONE.get(request.query_params.get("done", "")),
            can_suspend=member.can(Permission.SUBSCRIPTIONS_SUSPEND),
            can_rotate=member.can(Permission.SUBSCRIPTIONS_ROTATE)
            and view.application.client_type.value == "confidential_secret",
            can_remove=member.can(Permission.ORGANIZATIONS_MANAGE),
        )

    async def subscription_action(
        self, request: Request, staff: Staff, subscription_id: int, action: str
    ) -> Response:
        actor, address = staff[1].id, client_address(request)
        reason = await form_text(request, "reason")
        applications = self.portal.applications
        if action in ("suspend", "restore"):
            status = "suspended" if action == "suspend" else "active"
            applications.set_status(actor, subscription_id, status, reason=reason, address=address)
        elif action == "rotate":
            applications.staff_rotate(actor, subscription_id, reason=reason, address=address)
        elif action == "remove":
            self.portal.actions.remove_subscription(actor, subscription_id, reason=reason, address=address)
        else:
            raise NotFound("no such action")
        return redirect(f"/admin/subscriptions/{subscription_id}?done={action}")

    # ---- clients registered from the command line --------------------------------------------------
    async def client(self, request: Request, staff: Staff, env: str, client_id: str) -> Response:
        found = self.portal.oversight.operator_client(staff[1].id, env, client_id)
        member = staff[2]
        return self.render(
            request,
            staff,
            "admin/client.html",
            found=found,
            notice=DONE.get(request.query_params.get("done", "")),
            can_suspend=member.can(Permission.SUBSCRIPTIONS_SUSPEND),
            can_rotate=member.can(Permission.SUBSCRIPTIONS_ROTATE)
            and found.client.auth_method == "client_secret",
            can_remove=member.can(Permission.ORGANIZATIONS_MANAGE),
        )

    async def client_action(
        self, request: Request, staff: Staff, env: str, client_id: str, action: str
    ) -> Response:
        actor, address = staff[1].id, client_address(request)
        reason = await form_text(request, "reason")
        actions = self.portal.actions
        if action in ("suspend", "restore"):
            status = "suspended" if action == "suspend" else "active"
            actions.set_client_status(actor, env, client_id, status, reason=reason, address=address)
        elif action == "rotate":
            secret = actions.rotate_client_secret(actor, env, client_id, reason=reason, address=address)
            found = self.portal.oversight.operator_client(actor, env, client_id)
            return self.render(request, staff, "admin/client_secret.html", found=found, secret=secret)
        elif action == "remove":
            actions.remove_client(actor, env, client_id, reason=reason, address=address)
        else:
            raise NotFound("no such action")
        return redirect(f"/admin/clients/{env}/{client_id}?done={action}")

    # ---- people ------------------------------------------------------------------------------------
    async def people(self, request: Request, staff: Staff) -> Response:
        query = request.query_params.get("q", "")
        found = self.portal.oversight.find_people(staff[1].id, query)
        return self.render(request, staff, "admin/people.html", query=query, found=found)

    async def person(self, request: Request, staff: Staff, account_id: int) -> Response:
        view = self.portal.oversight.person(staff[1].id, account_id)
        return self.render(request, staff, "admin/person.html", view=view)
