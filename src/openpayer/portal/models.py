"""Tables of the developer portal: organizations, people in them, applications, subscriptions, the
questionnaire and terms, production requests with their review, staff roles and the staff audit trail.

People are accounts (`account_id`, an identity kept by the accounts domain): the portal stores only which
organization or staff role an account holds, never a password. Timestamps are integer seconds since the Unix
epoch (UTC), as in the authorization server. OAuth clients live in the oauth domain; a subscription holds only
the `client_id` that the oauth `ClientStore` returned.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from openpayer.accounts.models import portal_account as portal_account  # the accounts domain's table
from openpayer.db import BigId, metadata

portal_organization = Table(
    "portal_organization",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("legal_name", String(200), nullable=False),
    Column("website", String(512), nullable=False),
    Column("domain", String(253), nullable=False),  # lower-case host name; breach alerts match on it
    Column("address", Text, nullable=False),
    Column("technical_contact_name", String(200), nullable=False),
    Column("technical_contact_email", String(254), nullable=False),
    Column("security_contact_name", String(200), nullable=False),
    Column("security_contact_email", String(254), nullable=False),
    Column("status", String(16), nullable=False),  # active | removed
    Column("created_by", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_portal_organization_domain", "domain"),
)

portal_membership = Table(
    "portal_membership",
    metadata,
    Column(
        "organization_id",
        BigInteger,
        ForeignKey("portal_organization.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("account_id", BigInteger, primary_key=True),
    Column("role", String(16), nullable=False),  # owner | developer
    Column("created_at", BigInteger, nullable=False),
    Index("ix_portal_membership_account_id", "account_id"),
)

portal_invitation = Table(
    "portal_invitation",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "organization_id",
        BigInteger,
        ForeignKey("portal_organization.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("email", String(254), nullable=False),  # lower-cased
    Column("role", String(16), nullable=False),
    Column("token_digest", String(64), nullable=False, unique=True),  # SHA-256 of a 256-bit token
    Column("invited_by", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("accepted_at", BigInteger, nullable=True),
    Column("accepted_by", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
)

portal_application = Table(
    "portal_application",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "organization_id",
        BigInteger,
        ForeignKey("portal_organization.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(100), nullable=False),
    Column("description", Text, nullable=False),
    Column("website", String(512), nullable=False),
    Column("privacy_policy_url", String(512), nullable=False),
    Column("terms_url", String(512), nullable=True),
    Column("support_email", String(254), nullable=False),
    Column("logo", LargeBinary, nullable=True),
    Column("logo_type", String(32), nullable=True),  # image/png | image/jpeg, from the bytes, not the upload
    Column("redirect_uris", Text, nullable=False),  # JSON list of exact strings
    Column("client_type", String(32), nullable=False),  # public | confidential_secret | private_key_jwt
    Column("jwks_url", String(512), nullable=True),
    Column("jwks", Text, nullable=True),
    Column("scopes", Text, nullable=False),  # space-separated requested scopes
    Column("backend_access", Boolean, nullable=False),
    Column("status", String(16), nullable=False),  # active | removed
    Column("created_by", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_portal_application_organization_id", "organization_id"),
)

portal_subscription = Table(
    "portal_subscription",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "application_id",
        BigInteger,
        ForeignKey("portal_application.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("env", String(32), nullable=False),
    Column("client_id", String(64), nullable=False, unique=True),
    Column("status", String(16), nullable=False),  # active | suspended | removed
    Column("created_at", BigInteger, nullable=False),
    Column("credentials_revealed_at", BigInteger, nullable=True),  # NULL until the developer reveals them
    UniqueConstraint("application_id", "env"),
)

portal_questionnaire_version = Table(
    "portal_questionnaire_version",
    metadata,
    Column("version", String(32), primary_key=True),
    Column("questions", Text, nullable=False),  # JSON list of question definitions
    Column("published_at", BigInteger, nullable=False),
)

portal_questionnaire_answer = Table(
    "portal_questionnaire_answer",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "application_id",
        BigInteger,
        ForeignKey("portal_application.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "version",
        String(32),
        ForeignKey("portal_questionnaire_version.version"),
        nullable=False,
    ),
    Column("answers", Text, nullable=False),  # JSON object: question id -> answer
    Column("answered_by", BigInteger, nullable=False),
    Column("answered_at", BigInteger, nullable=False),
    Index("ix_portal_questionnaire_answer_application_id", "application_id"),
)

portal_terms_version = Table(
    "portal_terms_version",
    metadata,
    Column("version", String(32), primary_key=True),
    Column("text", Text, nullable=False),
    Column("digest", String(64), nullable=False),  # SHA-256 of the text: what exactly was accepted
    Column("published_at", BigInteger, nullable=False),
    Column("published_by", BigInteger, nullable=True),  # NULL for the version shipped with the package
)

portal_terms_acceptance = Table(
    "portal_terms_acceptance",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "organization_id",
        BigInteger,
        ForeignKey("portal_organization.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("version", String(32), ForeignKey("portal_terms_version.version"), nullable=False),
    Column("account_id", BigInteger, nullable=False),
    Column("accepted_at", BigInteger, nullable=False),
    Column("address", String(64), nullable=True),  # the client address the acceptance came from
    Index("ix_portal_terms_acceptance_organization_id", "organization_id"),
)

portal_production_request = Table(
    "portal_production_request",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "application_id",
        BigInteger,
        ForeignKey("portal_application.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("env", String(32), nullable=False),  # the environment access is requested for
    Column("state", String(24), nullable=False),  # see openpayer.portal.workflow.State
    Column("answer_id", BigInteger, ForeignKey("portal_questionnaire_answer.id"), nullable=False),
    Column("acceptance_id", BigInteger, ForeignKey("portal_terms_acceptance.id"), nullable=False),
    Column("submitted_by", BigInteger, nullable=False),
    Column("submitted_at", BigInteger, nullable=False),  # the first submission
    Column("due_at", BigInteger, nullable=False),  # recomputed on each (re)submission
    Column("decided_by", BigInteger, nullable=True),
    Column("decided_at", BigInteger, nullable=True),
    Column("updated_at", BigInteger, nullable=False),
    Index("ix_portal_production_request_state_due_at", "state", "due_at"),
    Index("ix_portal_production_request_application_id", "application_id"),
)

portal_review_message = Table(
    "portal_review_message",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "request_id",
        BigInteger,
        ForeignKey("portal_production_request.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("author_kind", String(16), nullable=False),  # developer | staff
    Column("author_account_id", BigInteger, nullable=False),
    Column("action", String(24), nullable=False),  # the transition it came with, or `comment`
    Column("body", Text, nullable=False),
    Column("at", BigInteger, nullable=False),
    Index("ix_portal_review_message_request_id", "request_id"),
)

portal_staff = Table(
    "portal_staff",
    metadata,
    Column("account_id", BigInteger, primary_key=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("role", String(32), nullable=False),  # see openpayer.portal.staff.Role
    Column("status", String(16), nullable=False),  # active | disabled
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", BigInteger, nullable=True),  # NULL when created from the command line
)

portal_staff_audit = Table(
    "portal_staff_audit",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),
    Column("actor_account_id", BigInteger, nullable=True),  # NULL: the command line (an operator's shell)
    Column("action", String(64), nullable=False),  # e.g. review:approve, subscription:suspend
    Column("target_type", String(32), nullable=False),
    Column("target_id", String(64), nullable=False),
    Column("before", Text, nullable=True),  # JSON of the fields the action changed, never a secret
    Column("after", Text, nullable=True),
    Column("address", String(64), nullable=True),
    Index("ix_portal_staff_audit_at", "at"),
    Index("ix_portal_staff_audit_target_type", "target_type", "target_id"),
)

portal_monitoring_account = Table(
    "portal_monitoring_account",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "application_id",
        BigInteger,
        ForeignKey("portal_application.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("env", String(32), nullable=False),
    Column("username", String(150), nullable=False),  # the member account's (members domain) username
    Column("member_id", BigInteger, nullable=False),
    Column("patient_id", String(64), nullable=False),  # its empty synthetic Patient
    Column("created_by", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("application_id", "env"),
    Index("ix_portal_monitoring_account_env", "env"),
)
