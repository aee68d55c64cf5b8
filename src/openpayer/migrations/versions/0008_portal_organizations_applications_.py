"""portal: organizations, applications, subscriptions, review, staff

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-02 07:30:00

The developer portal's tables (openpayer.portal.models), and on `oauth_client` the previous secret and the
end of its overlap, so that a rotated secret can keep working for at most 24 hours.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "portal_organization",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("legal_name", sa.String(length=200), nullable=False),
        sa.Column("website", sa.String(length=512), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("technical_contact_name", sa.String(length=200), nullable=False),
        sa.Column("technical_contact_email", sa.String(length=254), nullable=False),
        sa.Column("security_contact_name", sa.String(length=200), nullable=False),
        sa.Column("security_contact_email", sa.String(length=254), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_organization")),
    )
    with op.batch_alter_table("portal_organization", schema=None) as batch_op:
        batch_op.create_index("ix_portal_organization_domain", ["domain"], unique=False)

    op.create_table(
        "portal_questionnaire_version",
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("questions", sa.Text(), nullable=False),
        sa.Column("published_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_portal_questionnaire_version")),
    )
    op.create_table(
        "portal_staff",
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_portal_staff")),
        sa.UniqueConstraint("email", name=op.f("uq_portal_staff_email")),
    )
    op.create_table(
        "portal_staff_audit",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("actor_account_id", sa.BigInteger(), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("before", sa.Text(), nullable=True),
        sa.Column("after", sa.Text(), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_staff_audit")),
    )
    with op.batch_alter_table("portal_staff_audit", schema=None) as batch_op:
        batch_op.create_index("ix_portal_staff_audit_at", ["at"], unique=False)
        batch_op.create_index("ix_portal_staff_audit_target_type", ["target_type", "target_id"], unique=False)

    op.create_table(
        "portal_terms_version",
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("published_at", sa.BigInteger(), nullable=False),
        sa.Column("published_by", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_portal_terms_version")),
    )
    op.create_table(
        "portal_application",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("organization_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("website", sa.String(length=512), nullable=False),
        sa.Column("privacy_policy_url", sa.String(length=512), nullable=False),
        sa.Column("terms_url", sa.String(length=512), nullable=True),
        sa.Column("support_email", sa.String(length=254), nullable=False),
        sa.Column("logo", sa.LargeBinary(), nullable=True),
        sa.Column("logo_type", sa.String(length=32), nullable=True),
        sa.Column("redirect_uris", sa.Text(), nullable=False),
        sa.Column("client_type", sa.String(length=32), nullable=False),
        sa.Column("jwks_url", sa.String(length=512), nullable=True),
        sa.Column("jwks", sa.Text(), nullable=True),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("backend_access", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["portal_organization.id"],
            name=op.f("fk_portal_application_organization_id_portal_organization"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_application")),
    )
    with op.batch_alter_table("portal_application", schema=None) as batch_op:
        batch_op.create_index("ix_portal_application_organization_id", ["organization_id"], unique=False)

    op.create_table(
        "portal_invitation",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("organization_id", sa.BigInteger(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("token_digest", sa.String(length=64), nullable=False),
        sa.Column("invited_by", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("accepted_at", sa.BigInteger(), nullable=True),
        sa.Column("accepted_by", sa.BigInteger(), nullable=True),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["portal_organization.id"],
            name=op.f("fk_portal_invitation_organization_id_portal_organization"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_invitation")),
        sa.UniqueConstraint("token_digest", name=op.f("uq_portal_invitation_token_digest")),
    )
    op.create_table(
        "portal_membership",
        sa.Column("organization_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["portal_organization.id"],
            name=op.f("fk_portal_membership_organization_id_portal_organization"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "account_id", name=op.f("pk_portal_membership")),
    )
    with op.batch_alter_table("portal_membership", schema=None) as batch_op:
        batch_op.create_index("ix_portal_membership_account_id", ["account_id"], unique=False)

    op.create_table(
        "portal_terms_acceptance",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("organization_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("accepted_at", sa.BigInteger(), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["portal_organization.id"],
            name=op.f("fk_portal_terms_acceptance_organization_id_portal_organization"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["version"],
            ["portal_terms_version.version"],
            name=op.f("fk_portal_terms_acceptance_version_portal_terms_version"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_terms_acceptance")),
    )
    with op.batch_alter_table("portal_terms_acceptance", schema=None) as batch_op:
        batch_op.create_index("ix_portal_terms_acceptance_organization_id", ["organization_id"], unique=False)

    op.create_table(
        "portal_questionnaire_answer",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("application_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("answers", sa.Text(), nullable=False),
        sa.Column("answered_by", sa.BigInteger(), nullable=False),
        sa.Column("answered_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["portal_application.id"],
            name=op.f("fk_portal_questionnaire_answer_application_id_portal_application"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["version"],
            ["portal_questionnaire_version.version"],
            name=op.f("fk_portal_questionnaire_answer_version_portal_questionnaire_version"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_questionnaire_answer")),
    )
    with op.batch_alter_table("portal_questionnaire_answer", schema=None) as batch_op:
        batch_op.create_index(
            "ix_portal_questionnaire_answer_application_id", ["application_id"], unique=False
        )

    op.create_table(
        "portal_subscription",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("application_id", sa.BigInteger(), nullable=False),
        sa.Column("env", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("credentials_revealed_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["portal_application.id"],
            name=op.f("fk_portal_subscription_application_id_portal_application"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_subscription")),
        sa.UniqueConstraint("application_id", "env", name=op.f("uq_portal_subscription_application_id_env")),
        sa.UniqueConstraint("client_id", name=op.f("uq_portal_subscription_client_id")),
    )
    op.create_table(
        "portal_production_request",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("application_id", sa.BigInteger(), nullable=False),
        sa.Column("env", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("answer_id", sa.BigInteger(), nullable=False),
        sa.Column("acceptance_id", sa.BigInteger(), nullable=False),
        sa.Column("submitted_by", sa.BigInteger(), nullable=False),
        sa.Column("submitted_at", sa.BigInteger(), nullable=False),
        sa.Column("due_at", sa.BigInteger(), nullable=False),
        sa.Column("decided_by", sa.BigInteger(), nullable=True),
        sa.Column("decided_at", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["acceptance_id"],
            ["portal_terms_acceptance.id"],
            name=op.f("fk_portal_production_request_acceptance_id_portal_terms_acceptance"),
        ),
        sa.ForeignKeyConstraint(
            ["answer_id"],
            ["portal_questionnaire_answer.id"],
            name=op.f("fk_portal_production_request_answer_id_portal_questionnaire_answer"),
        ),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["portal_application.id"],
            name=op.f("fk_portal_production_request_application_id_portal_application"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_production_request")),
    )
    with op.batch_alter_table("portal_production_request", schema=None) as batch_op:
        batch_op.create_index("ix_portal_production_request_application_id", ["application_id"], unique=False)
        batch_op.create_index("ix_portal_production_request_state_due_at", ["state", "due_at"], unique=False)

    op.create_table(
        "portal_review_message",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("request_id", sa.BigInteger(), nullable=False),
        sa.Column("author_kind", sa.String(length=16), nullable=False),
        sa.Column("author_account_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=24), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["portal_production_request.id"],
            name=op.f("fk_portal_review_message_request_id_portal_production_request"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portal_review_message")),
    )
    with op.batch_alter_table("portal_review_message", schema=None) as batch_op:
        batch_op.create_index("ix_portal_review_message_request_id", ["request_id"], unique=False)

    with op.batch_alter_table("oauth_client", schema=None) as batch_op:
        batch_op.add_column(sa.Column("previous_secret_digest", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("previous_secret_expires_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("oauth_client", schema=None) as batch_op:
        batch_op.drop_column("previous_secret_expires_at")
        batch_op.drop_column("previous_secret_digest")

    with op.batch_alter_table("portal_review_message", schema=None) as batch_op:
        batch_op.drop_index("ix_portal_review_message_request_id")

    op.drop_table("portal_review_message")
    with op.batch_alter_table("portal_production_request", schema=None) as batch_op:
        batch_op.drop_index("ix_portal_production_request_state_due_at")
        batch_op.drop_index("ix_portal_production_request_application_id")

    op.drop_table("portal_production_request")
    op.drop_table("portal_subscription")
    with op.batch_alter_table("portal_questionnaire_answer", schema=None) as batch_op:
        batch_op.drop_index("ix_portal_questionnaire_answer_application_id")

    op.drop_table("portal_questionnaire_answer")
    with op.batch_alter_table("portal_terms_acceptance", schema=None) as batch_op:
        batch_op.drop_index("ix_portal_terms_acceptance_organization_id")

    op.drop_table("portal_terms_acceptance")
    with op.batch_alter_table("portal_membership", schema=None) as batch_op:
        batch_op.drop_index("ix_portal_membership_account_id")

    op.drop_table("portal_membership")
    op.drop_table("portal_invitation")
    with op.batch_alter_table("portal_application", schema=None) as batch_op:
        batch_op.drop_index("ix_portal_application_organization_id")

    op.drop_table("portal_application")
    op.drop_table("portal_terms_version")
    with op.batch_alter_table("portal_staff_audit", schema=None) as batch_op:
        batch_op.drop_index("ix_portal_staff_audit_target_type")
        batch_op.drop_index("ix_portal_staff_audit_at")

    op.drop_table("portal_staff_audit")
    op.drop_table("portal_staff")
    op.drop_table("portal_questionnaire_version")
    with op.batch_alter_table("portal_organization", schema=None) as batch_op:
        batch_op.drop_index("ix_portal_organization_domain")

    op.drop_table("portal_organization")
