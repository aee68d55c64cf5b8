"""Developer organizations, the people in them (owner, developer) and invitations by e-mail.

An organization has several people because the inactivity policy escalates to "other staff at the same
organization". Owners manage the organization and invite; developers manage its applications. The last owner
cannot leave or be demoted, so an organization always has someone who can invite.

Invitation tokens are 256 random bits shown once (in the e-mailed link); only their SHA-256 digest is kept,
and an invitation expires after `INVITATION_LIFETIME`. It is accepted by a signed-in account whose (verified)
e-mail address is the one invited, so a forwarded link does not let someone else in.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Engine, func, select

from openpayer.db import write_transaction
from openpayer.portal import validation
from openpayer.portal.errors import Conflict, Forbidden, Invalid, NotFound
from openpayer.portal.interfaces import Clock
from openpayer.portal.models import portal_invitation, portal_membership, portal_organization

INVITATION_LIFETIME = 7 * 24 * 3600


class MemberRole(StrEnum):
    OWNER = "owner"
    DEVELOPER = "developer"


@dataclass(frozen=True, slots=True)
class Organization:
    id: int
    legal_name: str
    website: str
    domain: str
    address: str
    technical_contact_name: str
    technical_contact_email: str
    security_contact_name: str
    security_contact_email: str
    status: str
    created_at: int


@dataclass(frozen=True, slots=True)
class Membership:
    organization_id: int
    account_id: int
    role: MemberRole
    created_at: int


@dataclass(frozen=True, slots=True)
class Invitation:
    id: int
    organization_id: int
    email: str
    role: MemberRole
    expires_at: int
    accepted_at: int | None
    revoked_at: int | None


@dataclass(frozen=True, slots=True)
class OrganizationDetails:
    """What a developer types in; `clean()` applies the rules and returns the stored values."""

    legal_name: str
    website: str
    domain: str
    address: str
    technical_contact_name: str
    technical_contact_email: str
    security_contact_name: str
    security_contact_email: str

    def clean(self) -> dict[str, Any]:
        return {
            "legal_name": validation.text(self.legal_name, "legal_name", max_length=200),
            "website": validation.https_url(self.website, "website"),
            "domain": validation.domain(self.domain),
            "address": validation.text(self.address, "address", max_length=1000),
            "technical_contact_name": validation.text(
                self.technical_contact_name, "technical_contact_name", max_length=200
            ),
            "technical_contact_email": validation.email(
                self.technical_contact_email, "technical_contact_email"
            ),
            "security_contact_name": validation.text(
                self.security_contact_name, "security_contact_name", max_length=200
            ),
            "security_contact_email": validation.email(self.security_contact_email, "security_contact_email"),
        }


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class OrganizationService:
    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    # ---- organizations -----------------------------------------------------------------------------
    def create(self, account_id: int, details: OrganizationDetails) -> Organization:
        """Create an organization; its creator becomes its first owner."""
        values = details.clean()
        now = self.clock.now()
        with write_transaction(self.engine) as conn:
            org_id = conn.execute(
                portal_organization.insert()
                .values(**values, status="active", created_by=account_id, created_at=now, updated_at=now)
                .returning(portal_organization.c.id)
            ).scalar_one()
            conn.execute(
                portal_membership.insert().values(
                    organization_id=org_id, account_id=account_id, role=MemberRole.OWNER.value, created_at=now
                )
            )
        return self.get(org_id)

    def update(self, account_id: int, organization_id: int, details: OrganizationDetails) -> Organization:
        self.require_member(account_id, organization_id, MemberRole.OWNER)
        values = details.clean()
        with write_transaction(self.engine) as conn:
            conn.execute(
                portal_organization.update()
                .where(portal_organization.c.id == organization_id)
                .values(**values, updated_at=self.clock.now())
            )
        return self.get(organization_id)

    def get(self, organization_id: int) -> Organization:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(portal_organization).where(portal_organization.c.id == organization_id)
            ).first()
        if row is None:
            raise NotFound("no such organization")
        return _organization(row)

    def for_account(self, account_id: int) -> list[tuple[Organization, MemberRole]]:
        """The active organizations an account belongs to, with its role in each."""
        query = (
            select(portal_organization, portal_membership.c.role.label("member_role"))
            .join(portal_membership, portal_membership.c.organization_id == portal_organization.c.id)
            .where(portal_membership.c.account_id == account_id, portal_organization.c.status == "active")
            .order_by(portal_organization.c.legal_name)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [(_organization(row), MemberRole(row.member_role)) for row in rows]

    # ---- people ------------------------------------------------------------------------------------
    def membership(self, account_id: int, organization_id: int) -> Membership | None:
        with self.engine.connect() as conn:
            return _membership_on(conn, account_id, organization_id)

    def require_member(
        self, account_id: int, organization_id: int, role: MemberRole | None = None
    ) -> Membership:
        """The account's membership, or `Forbidden`; with `role=OWNER`, only owners pass."""
        found = self.membership(account_id, organization_id)
        if found is None:
            raise Forbidden("you are not a member of this organization")
        if role is MemberRole.OWNER and found.role is not MemberRole.OWNER:
            raise Forbidden("only the organization's owners may do this")
        return found

    def members(self, account_id: int, organization_id: int) -> list[Membership]:
        self.require_member(account_id, organization_id)
        return self.members_of(organization_id)

    def members_of(self, organization_id: int) -> list[Membership]:
        """Everyone in an organization (for other domains, e.g. the inactivity policy's escalation)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(portal_membership)
                .where(portal_membership.c.organization_id == organization_id)
                .order_by(portal_membership.c.created_at, portal_membership.c.account_id)
            ).all()
        return [Membership(r.organization_id, r.account_id, MemberRole(r.role), r.created_at) for r in rows]

    def set_role(self, account_id: int, organization_id: int, member_id: int, role: str) -> None:
        self.require_member(account_id, organization_id, MemberRole.OWNER)
        new_role = _role(role)
        with write_transaction(self.engine) as conn:
            target = _membership_on(conn, member_id, organization_id)
            if target is None:
                raise NotFound("that person is not in this organization")
            if target.role is MemberRole.OWNER and new_role is not MemberRole.OWNER:
                _keep_an_owner(conn, organization_id)
            conn.execute(
                portal_membership.update()
                .where(
                    portal_membership.c.organization_id == organization_id,
                    portal_membership.c.account_id == member_id,
                )
                .values(role=new_role.value)
            )

    def remove_member(self, account_id: int, organization_id: int, member_id: int) -> None:
        """An owner removes someone, or anyone leaves; never the last owner."""
        if member_id != account_id:
            self.require_member(account_id, organization_id, MemberRole.OWNER)
        with write_transaction(self.engine) as conn:
            target = _membership_on(conn, member_id, organization_id)
            if target is None:
                raise NotFound("that person is not in this organization")
            if target.role is MemberRole.OWNER:
                _keep_an_owner(conn, organization_id)
            conn.execute(
                portal_membership.delete().where(
                    portal_membership.c.organization_id == organization_id,
                    portal_membership.c.account_id == member_id,
                )
            )

    # ---- invitations -------------------------------------------------------------------------------
    def invite(
        self, account_id: int, organization_id: int, email: str, role: str = "developer"
    ) -> tuple[Invitation, str]:
        """An invitation and its token, to be put in the e-mailed link: the only time it exists in clear."""
        self.require_member(account_id, organization_id, MemberRole.OWNER)
        address = validation.email(email, "email").lower()
        member_role = _role(role)
        token = secrets.token_urlsafe(32)
        now = self.clock.now()
        with write_transaction(self.engine) as conn:
            invitation_id = conn.execute(
                portal_invitation.insert()
                .values(
                    organization_id=organization_id,
                    email=address,
                    role=member_role.value,
                    token_digest=token_digest(token),
                    invited_by=account_id,
                    created_at=now,
                    expires_at=now + INVITATION_LIFETIME,
                )
                .returning(portal_invitation.c.id)
            ).scalar_one()
        return Invitation(
            invitation_id, organization_id, address, member_role, now + INVITATION_LIFETIME, None, None
        ), token

    def invitation(self, token: str) -> Invitation:
        """The pending invitation a link names, or `NotFound` (unknown, used, revoked or expired alike)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(portal_invitation).where(portal_invitation.c.token_digest == token_digest(token))
            ).first()
        if row is None or row.accepted_at is not None or row.revoked_at is not None:
            raise NotFound("this invitation is not valid (already used, withdrawn or unknown)")
        if row.expires_at <= self.clock.now():
            raise NotFound("this invitation has expired; ask for a new one")
        return _invitation(row)

    def accept(self, token: str, account_id: int, account_email: str) -> Membership:
        invitation = self.invitation(token)
        if account_email.strip().lower() != invitation.email:
            raise Forbidden("this invitation was sent to another e-mail address")
        now = self.clock.now()
        with write_transaction(self.engine) as conn:
            done = conn.execute(
                portal_invitation.update()
                .where(portal_invitation.c.id == invitation.id, portal_invitation.c.accepted_at.is_(None))
                .values(accepted_at=now, accepted_by=account_id)
            ).rowcount
            if not done:
                raise NotFound("this invitation was already used")
            if _membership_on(conn, account_id, invitation.organization_id) is not None:
                raise Conflict("you are already a member of this organization")
            conn.execute(
                portal_membership.insert().values(
                    organization_id=invitation.organization_id,
                    account_id=account_id,
                    role=invitation.role.value,
                    created_at=now,
                )
            )
        return Membership(invitation.organization_id, account_id, invitation.role, now)

    def revoke_invitation(self, account_id: int, organization_id: int, invitation_id: int) -> None:
        self.require_member(account_id, organization_id, MemberRole.OWNER)
        with write_transaction(self.engine) as conn:
            conn.execute(
                portal_invitation.update()
                .where(
                    portal_invitation.c.id == invitation_id,
                    portal_invitation.c.organization_id == organization_id,
                    portal_invitation.c.accepted_at.is_(None),
                )
                .values(revoked_at=self.clock.now())
            )

    def pending_invitations(self, account_id: int, organization_id: int) -> list[Invitation]:
        self.require_member(account_id, organization_id)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(portal_invitation)
                .where(
                    portal_invitation.c.organization_id == organization_id,
                    portal_invitation.c.accepted_at.is_(None),
                    portal_invitation.c.revoked_at.is_(None),
                    portal_invitation.c.expires_at > self.clock.now(),
                )
                .order_by(portal_invitation.c.id)
            ).all()
        return [_invitation(row) for row in rows]


def _role(value: str) -> MemberRole:
    try:
        return MemberRole(value)
    except ValueError as exc:
        raise Invalid("the role is owner or developer", "role") from exc


def _keep_an_owner(conn: Connection, organization_id: int) -> None:
    owners = conn.execute(
        select(func.count())
        .select_from(portal_membership)
        .where(
            portal_membership.c.organization_id == organization_id,
            portal_membership.c.role == MemberRole.OWNER.value,
        )
    ).scalar_one()
    if owners <= 1:
        raise Conflict("an organization needs at least one owner: make someone else owner first")


def _membership_on(conn: Connection, account_id: int, organization_id: int) -> Membership | None:
    row = conn.execute(
        select(portal_membership).where(
            portal_membership.c.organization_id == organization_id,
            portal_membership.c.account_id == account_id,
        )
    ).first()
    if row is None:
        return None
    return Membership(row.organization_id, row.account_id, MemberRole(row.role), row.created_at)


def _organization(row: Any) -> Organization:
    return Organization(
        id=row.id,
        legal_name=row.legal_name,
        website=row.website,
        domain=row.domain,
        address=row.address,
        technical_contact_name=row.technical_contact_name,
        technical_contact_email=row.technical_contact_email,
        security_contact_name=row.security_contact_name,
        security_contact_email=row.security_contact_email,
        status=row.status,
        created_at=row.created_at,
    )


def _invitation(row: Any) -> Invitation:
    return Invitation(
        row.id,
        row.organization_id,
        row.email,
        MemberRole(row.role),
        row.expires_at,
        row.accepted_at,
        row.revoked_at,
    )
