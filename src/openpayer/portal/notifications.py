"""Mail the portal sends: address verification, password reset and change notices, authenticator and recovery
code notices, invitations, and each message of a production review.

Each is recorded through the `Mailer` in its own transaction (with the email domain, delivery is a job with
retries). A review message from a reviewer goes to every person in the application's organization; a
developer's goes to every active staff member who can review.
"""

from __future__ import annotations

from sqlalchemy import Engine, select

from openpayer.db import write_transaction
from openpayer.portal.interfaces import Mailer
from openpayer.portal.models import portal_account, portal_membership, portal_staff
from openpayer.portal.staff import ROLE_PERMISSIONS, Permission, Role


class Notifier:
    def __init__(self, engine: Engine, mailer: Mailer) -> None:
        self.engine = engine
        self.mailer = mailer

    def _send(self, recipients: list[str], template: str, context: dict[str, str], cause: str) -> None:
        if not recipients:
            return
        with write_transaction(self.engine) as conn:
            for to in recipients:
                self.mailer.send(conn, to=to, template=template, context=context, cause=cause)

    def verify_email(self, to: str, link: str) -> None:
        self._send([to], "portal_verify_email", {"link": link}, "portal:signup")

    def password_reset(self, to: str, link: str, minutes: int) -> None:
        self._send([to], "account_password_reset", {"link": link, "minutes": str(minutes)}, "account:reset")

    def password_changed(self, to: str, link: str) -> None:
        self._send([to], "account_password_changed", {"link": link}, "account:reset")

    def password_changed_signed_in(self, to: str, link: str) -> None:
        """The notice after a change while signed in: the owner learns of it if a session was stolen."""
        self._send([to], "account_password_changed_signed_in", {"link": link}, "account:password-change")

    def authenticator_changed(self, to: str, *, removed: bool, link: str) -> None:
        """The notice after the authenticator was replaced or removed while signed in (never the key)."""
        template = "account_totp_removed" if removed else "account_totp_replaced"
        self._send(
            [to], template, {"link": link}, "account:totp-remove" if removed else "account:totp-replace"
        )

    def recovery_codes_new(self, to: str, *, link: str) -> None:
        """The notice after a new set of recovery codes was made while signed in (never a code)."""
        self._send([to], "account_recovery_codes_new", {"link": link}, "account:recovery-codes")

    def recovery_code_used(self, to: str, *, remaining: int, security_link: str, link: str) -> None:
        """The notice after a recovery code stood in for the authenticator at sign-in: how many are left."""
        context = {"remaining": str(remaining), "security_link": security_link, "link": link}
        self._send([to], "account_recovery_code_used", context, "account:recovery-code-used")

    def invitation(self, to: str, *, organization: str, inviter: str, role: str, link: str) -> None:
        context = {"organization": organization, "inviter": inviter, "role": role, "link": link}
        self._send([to], "portal_invitation", context, "portal:invitation")

    def to_developers(
        self, organization_id: int, *, application: str, subject: str, summary: str, body: str, link: str
    ) -> None:
        with self.engine.connect() as conn:
            emails = list(
                conn.execute(
                    select(portal_account.c.email)
                    .join(portal_membership, portal_membership.c.account_id == portal_account.c.id)
                    .where(portal_membership.c.organization_id == organization_id)
                    .order_by(portal_account.c.email)
                ).scalars()
            )
        context = {
            "application": application,
            "subject": subject,
            "summary": summary,
            "body": body,
            "link": link,
        }
        self._send(emails, "portal_review_message", context, "portal:review")

    def to_reviewers(self, *, application: str, subject: str, summary: str, body: str, link: str) -> None:
        reviewers = [r.value for r in Role if Permission.APPS_REVIEW in ROLE_PERMISSIONS[r]]
        with self.engine.connect() as conn:
            emails = list(
                conn.execute(
                    select(portal_staff.c.email)
                    .where(portal_staff.c.status == "active", portal_staff.c.role.in_(reviewers))
                    .order_by(portal_staff.c.email)
                ).scalars()
            )
        context = {
            "application": application,
            "subject": subject,
            "summary": summary,
            "body": body,
            "link": link,
        }
        self._send(emails, "portal_review_message", context, "portal:review")
