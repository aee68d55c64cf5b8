"""The portal's services on SQLite and PostgreSQL: organizations, applications, credentials, review, staff."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from openpayer.app import Services
from openpayer.portal.applications import Application, Credentials
from openpayer.portal.errors import Conflict, Forbidden, Invalid, InvalidTransition, NotFound
from openpayer.portal.organizations import INVITATION_LIFETIME, MemberRole, Organization
from openpayer.portal.services import Portal
from openpayer.portal.staff import ROLE_PERMISSIONS, Permission, Role
from openpayer.portal.workflow import State

from .conftest import ADMIN, ANSWERS, COLLEAGUE, OUTSIDER, OWNER, app_details, org_details


def secret_works(client: TestClient, env: str, client_id: str, secret: str) -> bool:
    """Whether the token endpoint authenticates the client (a symmetric client authenticated for
    client_credentials gets `unauthorized_client`; a wrong secret gets 401 `invalid_client`)."""
    response = client.post(
        f"/{env}/auth/token",
        data={"grant_type": "client_credentials", "scope": "system/*.rs"},
        auth=(client_id, secret),
    )
    return response.status_code != 401


# ---- organizations and people ----------------------------------------------------------------------


def test_creator_owns_the_organization(portal: Portal, organization: Organization) -> None:
    assert organization.domain == "example-app.com"
    assert [(m.account_id, m.role) for m in portal.organizations.members(OWNER, organization.id)] == [
        (OWNER, MemberRole.OWNER)
    ]
    assert portal.organizations.for_account(OWNER) == [(organization, MemberRole.OWNER)]
    with pytest.raises(Forbidden):
        portal.organizations.members(OUTSIDER, organization.id)


def test_organization_details_are_checked(portal: Portal) -> None:
    with pytest.raises(Invalid) as caught:
        portal.organizations.create(OWNER, org_details(security_contact_email="nope"))
    assert caught.value.field == "security_contact_email"
    with pytest.raises(Invalid, match="https"):
        portal.organizations.create(OWNER, org_details(website="http://example-app.com"))


def test_invitation_by_email(services: Services, portal: Portal, organization: Organization) -> None:
    invitation, token = portal.organizations.invite(OWNER, organization.id, "Colleague@Example-App.com")
    assert invitation.email == "colleague@example-app.com"
    with pytest.raises(Forbidden, match="another e-mail"):
        portal.organizations.accept(token, OUTSIDER, "someone@else.example")
    membership = portal.organizations.accept(token, COLLEAGUE, "colleague@example-app.com")
    assert membership.role is MemberRole.DEVELOPER
    with pytest.raises(NotFound, match="not valid"):
        portal.organizations.accept(token, COLLEAGUE, "colleague@example-app.com")
    # Developers may not invite; the token is stored only as a digest.
    with pytest.raises(Forbidden, match="owners"):
        portal.organizations.invite(COLLEAGUE, organization.id, "x@example-app.com")
    with services.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT token_digest FROM portal_invitation").scalars().all()
    assert token not in stored


def test_invitations_expire_and_can_be_withdrawn(
    services: Services, portal: Portal, organization: Organization
) -> None:
    _, late = portal.organizations.invite(OWNER, organization.id, "late@example-app.com")
    withdrawn, token = portal.organizations.invite(OWNER, organization.id, "no@example-app.com")
    portal.organizations.revoke_invitation(OWNER, organization.id, withdrawn.id)
    with pytest.raises(NotFound):
        portal.organizations.invitation(token)
    services.auth.clock.advance(INVITATION_LIFETIME + 1)
    with pytest.raises(NotFound, match="expired"):
        portal.organizations.accept(late, COLLEAGUE, "late@example-app.com")


def test_an_organization_keeps_an_owner(portal: Portal, organization: Organization) -> None:
    _, token = portal.organizations.invite(OWNER, organization.id, "c@example-app.com")
    portal.organizations.accept(token, COLLEAGUE, "c@example-app.com")
    with pytest.raises(Conflict, match="at least one owner"):
        portal.organizations.remove_member(OWNER, organization.id, OWNER)
    portal.organizations.set_role(OWNER, organization.id, COLLEAGUE, "owner")
    portal.organizations.remove_member(OWNER, organization.id, OWNER)  # now someone else owns it
    assert [m.account_id for m in portal.organizations.members_of(organization.id)] == [COLLEAGUE]


# ---- applications, subscriptions and credentials ---------------------------------------------------


def test_registration_creates_a_working_sandbox_client_at_once(
    client: TestClient, services: Services, portal: Portal, registered: tuple[Application, Credentials]
) -> None:
    application, credentials = registered
    assert credentials.env == "sandbox"
    assert credentials.client_secret
    stored = services.auth.clients.get("sandbox", credentials.client_id)
    assert stored is not None
    assert stored.redirect_uris == application.redirect_uris
    assert stored.developer == "Example Health Apps, Inc."
    assert stored.privacy_policy_url == "https://example-app.com/privacy"
    assert secret_works(client, "sandbox", credentials.client_id, credentials.client_secret)
    assert not secret_works(client, "sandbox", credentials.client_id, "wrong")
    # Nothing in production until a reviewer approves.
    assert services.auth.clients.get("production", credentials.client_id) is None
    assert [s.env for s in portal.applications.subscriptions(application.id)] == ["sandbox"]
    # The secret is not kept in the portal's tables or the client's.
    with services.engine.connect() as conn:
        dump = " ".join(str(row) for row in conn.exec_driver_sql("SELECT * FROM oauth_client").all())
    assert credentials.client_secret not in dump


def test_only_members_register_and_client_types_are_checked(
    portal: Portal, organization: Organization
) -> None:
    with pytest.raises(Forbidden):
        portal.applications.register(OUTSIDER, organization.id, app_details())
    with pytest.raises(Invalid, match="confidential"):
        portal.applications.register(
            OWNER,
            organization.id,
            app_details(client_type="public", backend_access=True, scopes=("system/*.rs",)),
        )
    with pytest.raises(Invalid, match="JWKS URL or a JWKS"):
        portal.applications.register(OWNER, organization.id, app_details(client_type="private_key_jwt"))
    app, creds = portal.applications.register(
        OWNER,
        organization.id,
        app_details(client_type="private_key_jwt", jwks_url="https://example-app.com/jwks.json"),
    )
    assert creds.client_secret is None
    assert app.jwks_url == "https://example-app.com/jwks.json"
    public, creds = portal.applications.register(OWNER, organization.id, app_details(client_type="public"))
    assert creds.client_secret is None
    assert public.client_type.value == "public"


def test_updates_reach_the_oauth_client(
    services: Services, portal: Portal, registered: tuple[Application, Credentials]
) -> None:
    application, credentials = registered
    portal.applications.update(
        OWNER, application.id, app_details(name="Wallet 2", redirect_uris=("https://example-app.com/v2/cb",))
    )
    stored = services.auth.clients.get("sandbox", credentials.client_id)
    assert stored is not None
    assert (stored.name, stored.redirect_uris) == ("Wallet 2", ("https://example-app.com/v2/cb",))
    with pytest.raises(Invalid, match="cannot change"):
        portal.applications.update(OWNER, application.id, app_details(client_type="public"))


def test_rotation_with_and_without_overlap(
    client: TestClient, services: Services, portal: Portal, registered: tuple[Application, Credentials]
) -> None:
    application, first = registered
    assert first.client_secret
    subscription = portal.applications.subscription(application.id, "sandbox")
    assert subscription is not None
    second = portal.applications.rotate_secret(OWNER, subscription.id, overlap_seconds=3600)
    assert second.client_secret
    assert second.client_secret != first.client_secret
    assert secret_works(client, "sandbox", first.client_id, first.client_secret)  # in the overlap
    assert secret_works(client, "sandbox", first.client_id, second.client_secret)
    services.auth.clock.advance(3601)
    assert not secret_works(client, "sandbox", first.client_id, first.client_secret)  # overlap over
    third = portal.applications.rotate_secret(OWNER, subscription.id)  # no overlap: stops at once
    assert third.client_secret
    assert not secret_works(client, "sandbox", first.client_id, second.client_secret)
    assert secret_works(client, "sandbox", first.client_id, third.client_secret)
    with pytest.raises(Invalid, match="24 hours"):
        portal.applications.rotate_secret(OWNER, subscription.id, overlap_seconds=24 * 3600 + 1)
    with pytest.raises(Forbidden):
        portal.applications.rotate_secret(OUTSIDER, subscription.id)


def test_logo_is_stored_with_its_detected_type(
    portal: Portal, registered: tuple[Application, Credentials]
) -> None:
    from tests.portal.test_validation import png

    application, _ = registered
    portal.applications.set_logo(OWNER, application.id, png(32, 32))
    stored = portal.applications.logo(application.id)
    assert stored is not None
    assert stored[1] == "image/png"
    with pytest.raises(Invalid, match="PNG or JPEG"):
        portal.applications.set_logo(OWNER, application.id, b"<svg/>")


# ---- questionnaire, terms and the production request -----------------------------------------------


def ready_for_production(portal: Portal, application: Application) -> None:
    portal.questionnaire.answer(OWNER, application.id, ANSWERS)
    terms = portal.terms.current()
    portal.terms.accept(OWNER, application.organization_id, terms.version, "203.0.113.9")


def test_questionnaire_answers_are_checked(
    portal: Portal, registered: tuple[Application, Credentials]
) -> None:
    application, _ = registered
    with pytest.raises(Invalid) as caught:
        portal.questionnaire.answer(OWNER, application.id, {**ANSWERS, "data_sold": "maybe"})
    assert caught.value.field == "data_sold"
    with pytest.raises(Invalid) as caught:
        portal.questionnaire.answer(
            OWNER, application.id, {k: v for k, v in ANSWERS.items() if k != "revocation"}
        )
    assert caught.value.field == "revocation"
    with pytest.raises(Invalid, match="unknown question"):
        portal.questionnaire.answer(OWNER, application.id, {**ANSWERS, "extra": "x"})
    answer = portal.questionnaire.answer(OWNER, application.id, ANSWERS)
    assert portal.questionnaire.latest(application.id) == answer


def test_production_request_needs_questionnaire_and_current_terms(
    portal: Portal, admin: int, registered: tuple[Application, Credentials]
) -> None:
    application, _ = registered
    with pytest.raises(Conflict, match="questionnaire"):
        portal.reviews.submit(OWNER, application.id)
    portal.questionnaire.answer(OWNER, application.id, ANSWERS)
    with pytest.raises(Conflict, match="terms"):
        portal.reviews.submit(OWNER, application.id)
    first = portal.terms.current()
    acceptance = portal.terms.accept(OWNER, application.organization_id, first.version, "203.0.113.9")
    assert (acceptance.account_id, acceptance.address) == (OWNER, "203.0.113.9")
    # A new version of the terms asks for acceptance again.
    portal.terms.publish(admin, "2027-01", "New terms.")
    with pytest.raises(Conflict, match="terms"):
        portal.reviews.submit(OWNER, application.id)
    with pytest.raises(Invalid, match="no longer current"):
        portal.terms.accept(OWNER, application.organization_id, first.version)
    portal.terms.accept(OWNER, application.organization_id, "2027-01")
    request = portal.reviews.submit(OWNER, application.id, "Please review.")
    assert request.state is State.SUBMITTED
    assert request.due_at == portal.calendar.due_at(request.submitted_at)
    with pytest.raises(Conflict, match="under review"):
        portal.reviews.submit(OWNER, application.id)


def test_the_review_journey_to_production_credentials(
    client: TestClient,
    services: Services,
    portal: Portal,
    admin: int,
    registered: tuple[Application, Credentials],
) -> None:
    application, _ = registered
    ready_for_production(portal, application)
    reviewer = 3001
    portal.staff.create(admin, account_id=reviewer, email="appsec@plan.example", role="appsec_reviewer")
    request = portal.reviews.submit(OWNER, application.id)
    assert [item.request.id for item in portal.reviews.queue(reviewer)] == [request.id]

    asked = portal.reviews.request_changes(reviewer, request.id, "Your privacy policy link is broken.")
    assert asked.state is State.CHANGES_REQUESTED
    assert portal.reviews.queue(reviewer) == []
    with pytest.raises(InvalidTransition):
        portal.reviews.approve(reviewer, request.id)
    services.auth.clock.advance(86400 * 3)
    again = portal.reviews.resubmit(OWNER, request.id, "Fixed.")
    assert again.state is State.RESUBMITTED
    assert again.due_at == portal.calendar.due_at(services.auth.clock.now())

    approved, subscription = portal.reviews.approve(reviewer, request.id, "Welcome.")
    assert approved.state is State.APPROVED
    assert approved.decided_by == reviewer
    assert subscription.env == "production"
    assert subscription.credentials_revealed_at is None
    assert [(m.author_kind.value, m.action) for m in portal.reviews.thread(request.id)] == [
        ("developer", "submit"),
        ("staff", "request_changes"),
        ("developer", "resubmit"),
        ("staff", "approve"),
    ]
    # Revealed once, to a member of the organization, with a fresh secret that works in production only.
    with pytest.raises(Forbidden):
        portal.applications.reveal_credentials(OUTSIDER, subscription.id)
    credentials = portal.applications.reveal_credentials(OWNER, subscription.id)
    assert credentials.env == "production"
    assert credentials.client_secret
    assert secret_works(client, "production", credentials.client_id, credentials.client_secret)
    assert not secret_works(client, "sandbox", credentials.client_id, credentials.client_secret)
    with pytest.raises(Conflict, match="already shown"):
        portal.applications.reveal_credentials(OWNER, subscription.id)
    trail = portal.staff.audit_trail(admin, target_type="production_request")
    assert [(e.actor_account_id, e.action, e.before, e.after) for e in reversed(trail)] == [
        (reviewer, "review:request_changes", {"state": "submitted"}, {"state": "changes_requested"}),
        (reviewer, "review:approve", {"state": "resubmitted"}, {"state": "approved"}),
    ]


def test_rejection_is_final_and_a_new_request_may_follow(
    portal: Portal, admin: int, registered: tuple[Application, Credentials]
) -> None:
    application, _ = registered
    ready_for_production(portal, application)
    request = portal.reviews.submit(OWNER, application.id)
    with pytest.raises(InvalidTransition, match="needs a message"):
        portal.reviews.reject(admin, request.id, "")
    rejected = portal.reviews.reject(admin, request.id, "The app stores tokens in local storage.")
    assert rejected.state is State.REJECTED
    with pytest.raises(InvalidTransition):
        portal.reviews.resubmit(OWNER, request.id, "please")
    assert portal.reviews.submit(OWNER, application.id).id != request.id


def test_overdue_requests_stand_out(
    services: Services, portal: Portal, admin: int, registered: tuple[Application, Credentials]
) -> None:
    application, _ = registered
    ready_for_production(portal, application)
    request = portal.reviews.submit(OWNER, application.id)
    assert not portal.reviews.queue(admin)[0].overdue
    services.auth.clock.advance(request.due_at - services.auth.clock.now())
    assert portal.reviews.queue(admin)[0].overdue


# ---- staff: permissions both ways, and the audit trail ---------------------------------------------


ACTIONS = {
    Permission.APPS_REVIEW: lambda portal, actor, ids: portal.reviews.request_changes(
        actor, ids["request"], "why"
    ),
    Permission.SUBSCRIPTIONS_SUSPEND: lambda portal, actor, ids: portal.applications.set_status(
        actor, ids["subscription"], "suspended", reason="test"
    ),
    Permission.SUBSCRIPTIONS_ROTATE: lambda portal, actor, ids: portal.applications.staff_rotate(
        actor, ids["subscription"], reason="test"
    ),
    Permission.AUDIT_READ: lambda portal, actor, ids: portal.staff.audit_trail(actor),
    Permission.STAFF_MANAGE: lambda portal, actor, ids: portal.staff.all(actor),
    Permission.TERMS_PUBLISH: lambda portal, actor, ids: portal.terms.publish(actor, f"v{actor}", "Terms."),
    Permission.APPS_READ: lambda portal, actor, ids: portal.reviews.queue(actor),
}


@pytest.mark.parametrize("role", list(Role))
def test_every_permission_both_ways(
    portal: Portal, admin: int, registered: tuple[Application, Credentials], role: Role
) -> None:
    application, _ = registered
    ready_for_production(portal, application)
    subscription = portal.applications.subscription(application.id, "sandbox")
    assert subscription is not None
    for permission, action in ACTIONS.items():
        request = (
            portal.reviews.submit(OWNER, application.id) if permission is Permission.APPS_REVIEW else None
        )
        actor = 5000 + list(ACTIONS).index(permission)
        portal.staff.create(admin, account_id=actor, email=f"s{actor}@plan.example", role=role.value)
        ids = {"request": request.id if request else 0, "subscription": subscription.id}
        if permission in ROLE_PERMISSIONS[role]:
            action(portal, actor, ids)
        else:
            with pytest.raises(Forbidden, match=permission.value):
                action(portal, actor, ids)
        if request is not None and permission in ROLE_PERMISSIONS[role]:
            portal.reviews.resubmit(OWNER, request.id, "done")
            portal.reviews.reject(admin, request.id, "closing this test request")
        elif request is not None:
            portal.reviews.reject(admin, request.id, "closing this test request")
    # Accounts that are not staff, and disabled staff, get nothing.
    with pytest.raises(Forbidden):
        portal.reviews.queue(OWNER)
    portal.staff.set_status(admin, 5000, "disabled")
    with pytest.raises(Forbidden):
        portal.reviews.queue(5000)


def test_suspension_stops_the_client_and_is_audited(
    client: TestClient,
    services: Services,
    portal: Portal,
    admin: int,
    registered: tuple[Application, Credentials],
) -> None:
    application, credentials = registered
    assert credentials.client_secret
    subscription = portal.applications.subscription(application.id, "sandbox")
    assert subscription is not None
    portal.applications.set_status(
        admin, subscription.id, "suspended", reason="credential stuffing", address="198.51.100.7"
    )
    assert not secret_works(client, "sandbox", credentials.client_id, credentials.client_secret)
    portal.applications.set_status(admin, subscription.id, "active", reason="contained")
    assert secret_works(client, "sandbox", credentials.client_id, credentials.client_secret)
    entries = portal.staff.audit_trail(admin, target_type="subscription", target_id=str(subscription.id))
    assert [(e.action, e.before, e.after, e.address) for e in reversed(entries)] == [
        (
            "subscription:suspend",
            {"status": "active"},
            {"status": "suspended", "reason": "credential stuffing"},
            "198.51.100.7",
        ),
        ("subscription:restore", {"status": "suspended"}, {"status": "active", "reason": "contained"}, None),
    ]


def test_staff_rotation_stops_the_secret_until_the_developer_reveals_a_new_one(
    client: TestClient, portal: Portal, admin: int, registered: tuple[Application, Credentials]
) -> None:
    application, credentials = registered
    assert credentials.client_secret
    subscription = portal.applications.subscription(application.id, "sandbox")
    assert subscription is not None
    portal.applications.staff_rotate(admin, subscription.id, reason="secret posted publicly")
    assert not secret_works(client, "sandbox", credentials.client_id, credentials.client_secret)
    fresh = portal.applications.reveal_credentials(OWNER, subscription.id)
    assert fresh.client_secret
    assert secret_works(client, "sandbox", credentials.client_id, fresh.client_secret)


def test_staff_accounts_and_their_audit(portal: Portal, admin: int) -> None:
    with pytest.raises(Invalid, match="unknown role"):
        portal.staff.create(admin, account_id=7, email="x@plan.example", role="superuser")
    portal.staff.create(admin, account_id=7, email="Analyst@Plan.example", role="security_analyst")
    with pytest.raises(Conflict):
        portal.staff.create(admin, account_id=8, email="analyst@plan.example", role="support")
    with pytest.raises(Forbidden, match="own role"):
        portal.staff.set_role(admin, admin, "support")
    portal.staff.set_role(admin, 7, "auditor")
    member = portal.staff.get(7)
    assert member is not None
    assert member.role is Role.AUDITOR
    assert not member.can(Permission.APPS_REVIEW)
    trail = portal.staff.audit_trail(admin, target_type="staff", target_id="7")
    assert [(e.actor_account_id, e.action, e.before, e.after) for e in reversed(trail)] == [
        (
            ADMIN,
            "staff:create",
            None,
            {"email": "analyst@plan.example", "role": "security_analyst", "status": "active"},
        ),
        (ADMIN, "staff:role", {"role": "security_analyst"}, {"role": "auditor"}),
    ]
    # The first admin, created from the command line, is audited with no actor.
    first = portal.staff.audit_trail(admin, target_id=str(ADMIN))
    assert [(e.actor_account_id, e.action) for e in first] == [(None, "staff:create")]
