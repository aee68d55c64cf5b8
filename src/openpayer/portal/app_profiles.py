"""The portal's side of `openpayer.oauth.directory.AppDirectory`: apps as members see them.

The consent page, the connected-apps page and the public app gallery (`/{env}/auth/...`) show an app's
developer organization and its questionnaire answers in plain language. The attestations shown are those of
the approved production request when there is one (what the reviewers read), else the latest answers.
The gallery lists the applications whose production request was approved and whose production
subscription is active, with their client in the environment asked for.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Engine, select

from openpayer.oauth.directory import AppProfile, Statement
from openpayer.portal.applications import Application, ApplicationService
from openpayer.portal.models import (
    portal_application,
    portal_organization,
    portal_production_request,
    portal_subscription,
)
from openpayer.portal.organizations import OrganizationService
from openpayer.portal.questionnaire import Answer, QuestionnaireService
from openpayer.portal.workflow import State

_NONE = {"", "no", "none", "n/a", "na", "nothing", "never"}


def _none(value: str) -> bool:
    return value.strip().rstrip(".").lower() in _NONE


def plain_language(answers: Mapping[str, str]) -> tuple[Statement, ...]:
    """The questionnaire's answers as short sentences a member can read (one per question answered)."""
    out: list[Statement] = []

    def yes_no(key: str, yes: str, no: str, *, concern_on: str = "no") -> None:
        value = answers.get(key)
        if value in ("yes", "no"):
            out.append(Statement(yes if value == "yes" else no, concern=value == concern_on))

    yes_no(
        "privacy_policy_public",
        "Has a public privacy policy in plain language that you see before you connect.",
        "Says it does not have a public, plain-language privacy policy.",
    )
    yes_no(
        "data_sold",
        "May sell your data to other companies.",
        "Says it does not sell your data.",
        concern_on="yes",
    )
    shared = answers.get("data_shared", "")
    if shared:
        out.append(
            Statement("Says it does not share your data with other companies.")
            if _none(shared)
            else Statement(f"May share your data with others: {shared}", concern=True)
        )
    secondary = answers.get("secondary_uses", "")
    if secondary:
        out.append(
            Statement("Uses your data only for the service you chose.")
            if _none(secondary)
            else Statement(f"Also uses your data for: {secondary}", concern=True)
        )
    yes_no(
        "express_consent",
        "Asks for your permission before sharing your data.",
        "Does not ask for your permission before sharing your data.",
    )
    device = answers.get("device_data", "")
    if device:
        out.append(
            Statement("Does not read other data on your phone or computer.")
            if _none(device)
            else Statement(f"Also reads on your device: {device}", concern=True)
        )
    revocation = answers.get("revocation", "")
    if revocation:
        out.append(Statement(f"How to stop sharing, and what happens to your data then: {revocation}"))
    yes_no(
        "carin_code_of_conduct",
        "Follows the CARIN Alliance code of conduct for consumer health apps.",
        "Does not follow the CARIN Alliance code of conduct.",
    )
    yes_no(
        "tls_everywhere",
        "Encrypts your data whenever it sends it.",
        "Does not always encrypt your data when it sends it.",
    )
    yes_no(
        "encrypted_storage",
        "Encrypts your data where it stores it.",
        "Does not encrypt your data where it stores it.",
    )
    yes_no(
        "no_persistent_authentication",
        "Does not keep you signed in indefinitely on your device.",
        "May keep you signed in indefinitely on your device.",
    )
    return tuple(out)


class PortalAppDirectory:
    def __init__(
        self,
        engine: Engine,
        applications: ApplicationService,
        organizations: OrganizationService,
        questionnaire: QuestionnaireService,
        *,
        production_env: str,
    ) -> None:
        self.engine = engine
        self.applications = applications
        self.organizations = organizations
        self.questionnaire = questionnaire
        self.production_env = production_env

    def profile(self, env: str, client_id: str) -> AppProfile | None:
        subscription = self.applications.subscription_by_client(env, client_id)
        if subscription is None:
            return None
        application = self.applications.get(subscription.application_id)
        return self._profile(client_id, application, self._answer(application.id))

    def gallery(self, env: str) -> list[AppProfile]:
        here = portal_subscription.alias("here")
        prod = portal_subscription.alias("prod")
        approved = (
            select(portal_production_request.c.id)
            .where(
                portal_production_request.c.application_id == portal_application.c.id,
                portal_production_request.c.env == self.production_env,
                portal_production_request.c.state == State.APPROVED.value,
            )
            .exists()
        )
        query = (
            select(portal_application.c.id, here.c.client_id)
            .select_from(
                portal_application.join(here, here.c.application_id == portal_application.c.id)
                .join(prod, prod.c.application_id == portal_application.c.id)
                .join(portal_organization, portal_organization.c.id == portal_application.c.organization_id)
            )
            .where(
                here.c.env == env,
                here.c.status == "active",
                prod.c.env == self.production_env,
                prod.c.status == "active",
                portal_application.c.status == "active",
                portal_organization.c.status == "active",
                approved,
            )
            .order_by(portal_application.c.name, portal_application.c.id)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        found = []
        for row in rows:
            application = self.applications.get(row.id)
            found.append(self._profile(row.client_id, application, self._answer(application.id)))
        return found

    def logo(self, env: str, client_id: str) -> tuple[bytes, str] | None:
        subscription = self.applications.subscription_by_client(env, client_id)
        if subscription is None or subscription.status != "active":
            return None
        return self.applications.logo(subscription.application_id)

    # ---- helpers -----------------------------------------------------------------------------------
    def _answer(self, application_id: int) -> Answer | None:
        """The answers of the newest approved production request, else the latest saved."""
        with self.engine.connect() as conn:
            answer_id = conn.execute(
                select(portal_production_request.c.answer_id)
                .where(
                    portal_production_request.c.application_id == application_id,
                    portal_production_request.c.state == State.APPROVED.value,
                )
                .order_by(portal_production_request.c.id.desc())
                .limit(1)
            ).scalar_one_or_none()
        if answer_id is not None:
            reviewed = self.questionnaire.get_answer(answer_id)
            if reviewed is not None:
                return reviewed
        return self.questionnaire.latest(application_id)

    def _profile(self, client_id: str, application: Application, answer: Answer | None) -> AppProfile:
        organization = self.organizations.get(application.organization_id)
        return AppProfile(
            client_id=client_id,
            name=application.name,
            description=application.description,
            developer=organization.legal_name,
            developer_website=organization.website,
            privacy_policy_url=application.privacy_policy_url,
            has_logo=application.logo_type is not None,
            attested=answer is not None,
            attested_at=answer.answered_at if answer is not None else None,
            statements=plain_language(answer.answers) if answer is not None else (),
        )
