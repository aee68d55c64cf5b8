"""The developer questionnaire and the terms of service, both versioned, and their answers and acceptances.

The questionnaire asks what payers ask app developers to attest under the CMS Patient Access rule (the CMS
model attestation, as published by plans) and the seeds' security practices:

- privacy: a public plain-language privacy policy shown before authorization; whether member data is sold or
  shared and with whom; secondary uses; express consent before sharing; other data read on the device; how a
  member revokes access and what happens to their data; adherence to the CARIN Alliance code of conduct;
- security: TLS for all communication; stored data encrypted; no persistent authentication stored on the
  device (OWASP mobile guidance on "Remember Me"); OWASP Top 10 practices; a breach-notification contact;
- monitoring: how the organization watches its app (and whether it will run an automated health check).

A version is a fixed list of questions; its text is stored with the version so that an answer always reads
against what was asked. A new version is a new entry in `VERSIONS`; answers to an older one must be given
again before a new production request. Terms of service are versioned text: the version shipped with the
package (`data/terms-of-service.md`) and any that an admin publishes; the newest published is current, and an
organization must accept the current version (who, when, which, from where) before requesting production.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from importlib import resources
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from openpayer.db import write_transaction
from openpayer.portal import validation
from openpayer.portal.applications import ApplicationService
from openpayer.portal.errors import Invalid, NotFound
from openpayer.portal.interfaces import Clock
from openpayer.portal.models import (
    portal_questionnaire_answer,
    portal_questionnaire_version,
    portal_terms_acceptance,
    portal_terms_version,
)
from openpayer.portal.organizations import OrganizationService
from openpayer.portal.staff import Permission, StaffService, record_audit


class Kind(StrEnum):
    YES_NO = "yes_no"
    TEXT = "text"
    EMAIL = "email"


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    section: str  # privacy | security | monitoring
    text: str
    kind: Kind
    required: bool = True
    help: str = ""


QUESTIONNAIRE_2026_12: tuple[Question, ...] = (
    Question(
        "privacy_policy_public",
        "privacy",
        "Does the app have a publicly available privacy policy, written in plain language, that the member "
        "sees and accepts (click or checkbox) before authorizing access?",
        Kind.YES_NO,
    ),
    Question(
        "data_sold",
        "privacy",
        "May the member's data be sold to third parties?",
        Kind.YES_NO,
    ),
    Question(
        "data_shared",
        "privacy",
        "May the member's data be shared with third parties? If so, with whom and why?",
        Kind.TEXT,
        help="Write 'No' if the data is never shared.",
    ),
    Question(
        "secondary_uses",
        "privacy",
        "Is the data used for anything besides the service the member chose (research, advertising, "
        "product improvement)? Describe each use.",
        Kind.TEXT,
        help="Write 'None' if there are no secondary uses.",
    ),
    Question(
        "express_consent",
        "privacy",
        "Does the app ask the member's express consent before sharing their data?",
        Kind.YES_NO,
    ),
    Question(
        "device_data",
        "privacy",
        "Does the app read other data on the member's device (contacts, location, photos)? Which?",
        Kind.TEXT,
        help="Write 'None' if it reads nothing else.",
    ),
    Question(
        "revocation",
        "privacy",
        "How does a member revoke the app's access, and what happens to their data then (retention and "
        "disposal)?",
        Kind.TEXT,
    ),
    Question(
        "carin_code_of_conduct",
        "privacy",
        "Does the app follow the CARIN Alliance code of conduct (opt-in, revocable consent; use consistent "
        "with consent; access and deletion; security; provenance; an accountable executive; user education)?",
        Kind.YES_NO,
    ),
    Question(
        "tls_everywhere",
        "security",
        "Does every connection the app makes (to us, to your servers, to third parties) use TLS?",
        Kind.YES_NO,
    ),
    Question(
        "encrypted_storage",
        "security",
        "Is the member's data encrypted where the app and your servers store it?",
        Kind.YES_NO,
    ),
    Question(
        "no_persistent_authentication",
        "security",
        "Does the app avoid storing persistent authentication on the device (no 'remember me' that keeps a "
        "member signed in indefinitely, per OWASP's mobile guidance)?",
        Kind.YES_NO,
    ),
    Question(
        "owasp_top10",
        "security",
        "Is the app built and tested against the OWASP Top 10 risks?",
        Kind.YES_NO,
    ),
    Question(
        "breach_contact",
        "security",
        "Which address should we notify of a security incident, and which address do you notify us from?",
        Kind.EMAIL,
    ),
    Question(
        "monitoring_plan",
        "monitoring",
        "How does your organization monitor the app for misuse and outages? Will you run an automated health "
        "check (a synthetic sign-in and a call to /metadata every 30 days) to keep seasonal access active?",
        Kind.TEXT,
    ),
)

CURRENT_QUESTIONNAIRE = "2026-12"
VERSIONS: Mapping[str, tuple[Question, ...]] = {CURRENT_QUESTIONNAIRE: QUESTIONNAIRE_2026_12}
SHIPPED_TERMS_VERSION = "2026-12"
MAX_ANSWER_LENGTH = 4000


@dataclass(frozen=True, slots=True)
class Answer:
    id: int
    application_id: int
    version: str
    answers: dict[str, str]
    answered_by: int
    answered_at: int

    @property
    def current(self) -> bool:
        return self.version == CURRENT_QUESTIONNAIRE


@dataclass(frozen=True, slots=True)
class TermsVersion:
    version: str
    text: str
    digest: str
    published_at: int


@dataclass(frozen=True, slots=True)
class Acceptance:
    id: int
    organization_id: int
    version: str
    account_id: int
    accepted_at: int
    address: str | None


def check_answers(questions: tuple[Question, ...], answers: Mapping[str, str]) -> dict[str, str]:
    """Every required question answered in its kind; unknown keys are refused (not silently dropped)."""
    known = {q.id for q in questions}
    unknown = sorted(set(answers) - known)
    if unknown:
        raise Invalid(f"unknown question {unknown[0]!r}", unknown[0])
    cleaned: dict[str, str] = {}
    for question in questions:
        value = (answers.get(question.id) or "").strip()
        if not value:
            if question.required:
                raise Invalid("this question needs an answer", question.id)
            continue
        if len(value) > MAX_ANSWER_LENGTH:
            raise Invalid(f"answers are at most {MAX_ANSWER_LENGTH} characters", question.id)
        if question.kind is Kind.YES_NO and value not in ("yes", "no"):
            raise Invalid("answer yes or no", question.id)
        if question.kind is Kind.EMAIL:
            value = validation.email(value, question.id)
        cleaned[question.id] = value
    return cleaned


class QuestionnaireService:
    def __init__(self, engine: Engine, clock: Clock, applications: ApplicationService) -> None:
        self.engine = engine
        self.clock = clock
        self.applications = applications

    @property
    def questions(self) -> tuple[Question, ...]:
        return VERSIONS[CURRENT_QUESTIONNAIRE]

    def _ensure_version(self, version: str) -> None:
        with self.engine.connect() as conn:
            exists = conn.execute(
                select(portal_questionnaire_version.c.version).where(
                    portal_questionnaire_version.c.version == version
                )
            ).first()
        if exists:
            return
        questions = json.dumps([asdict(q) for q in VERSIONS[version]])
        try:
            with write_transaction(self.engine) as conn:
                conn.execute(
                    portal_questionnaire_version.insert().values(
                        version=version, questions=questions, published_at=self.clock.now()
                    )
                )
        except IntegrityError:
            pass  # another request stored it first

    def answer(self, account_id: int, application_id: int, answers: Mapping[str, str]) -> Answer:
        """Store a complete set of answers to the current version (each save is kept: the history shows what
        was attested when)."""
        self.applications.for_member(account_id, application_id)
        cleaned = check_answers(self.questions, answers)
        self._ensure_version(CURRENT_QUESTIONNAIRE)
        now = self.clock.now()
        with write_transaction(self.engine) as conn:
            answer_id = conn.execute(
                portal_questionnaire_answer.insert()
                .values(
                    application_id=application_id,
                    version=CURRENT_QUESTIONNAIRE,
                    answers=json.dumps(cleaned, sort_keys=True),
                    answered_by=account_id,
                    answered_at=now,
                )
                .returning(portal_questionnaire_answer.c.id)
            ).scalar_one()
        return Answer(answer_id, application_id, CURRENT_QUESTIONNAIRE, cleaned, account_id, now)

    def get_answer(self, answer_id: int) -> Answer | None:
        """One saved set of answers (e.g. the one a production request was reviewed with)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(portal_questionnaire_answer).where(portal_questionnaire_answer.c.id == answer_id)
            ).first()
        if row is None:
            return None
        return Answer(
            row.id, row.application_id, row.version, json.loads(row.answers), row.answered_by, row.answered_at
        )

    def latest(self, application_id: int) -> Answer | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(portal_questionnaire_answer)
                .where(portal_questionnaire_answer.c.application_id == application_id)
                .order_by(portal_questionnaire_answer.c.id.desc())
                .limit(1)
            ).first()
        if row is None:
            return None
        return Answer(
            row.id, row.application_id, row.version, json.loads(row.answers), row.answered_by, row.answered_at
        )


class TermsService:
    def __init__(
        self, engine: Engine, clock: Clock, organizations: OrganizationService, staff: StaffService
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.organizations = organizations
        self.staff = staff

    def current(self) -> TermsVersion:
        """The newest published terms; the shipped text (published at 0) until an admin publishes another."""
        found = self._newest()
        if found is not None:
            return found
        text = (resources.files("openpayer.portal") / "data" / "terms-of-service.md").read_text("utf-8")
        try:
            with write_transaction(self.engine) as conn:
                conn.execute(
                    portal_terms_version.insert().values(
                        version=SHIPPED_TERMS_VERSION, text=text, digest=_digest(text), published_at=0
                    )
                )
        except IntegrityError:
            pass
        newest = self._newest()
        assert newest is not None
        return newest

    def _newest(self) -> TermsVersion | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(portal_terms_version)
                .order_by(portal_terms_version.c.published_at.desc(), portal_terms_version.c.version.desc())
                .limit(1)
            ).first()
        return TermsVersion(row.version, row.text, row.digest, row.published_at) if row is not None else None

    def publish(self, actor: int | None, version: str, text: str, address: str | None = None) -> TermsVersion:
        """A new version; every organization must accept it before its next production request."""
        if actor is not None:
            self.staff.require(actor, Permission.TERMS_PUBLISH)
        version = validation.text(version, "version", max_length=32)
        body = validation.text(text, "text", max_length=100_000)
        previous = self.current()
        now = max(self.clock.now(), previous.published_at + 1)
        try:
            with write_transaction(self.engine) as conn:
                conn.execute(
                    portal_terms_version.insert().values(
                        version=version, text=body, digest=_digest(body), published_at=now, published_by=actor
                    )
                )
                record_audit(
                    conn,
                    at=now,
                    actor=actor,
                    action="terms:publish",
                    target_type="terms",
                    target_id=version,
                    before={"version": previous.version, "digest": previous.digest},
                    after={"version": version, "digest": _digest(body)},
                    address=address,
                )
        except IntegrityError as exc:
            raise Invalid(f"version {version!r} already exists", "version") from exc
        return TermsVersion(version, body, _digest(body), now)

    def accept(
        self, account_id: int, organization_id: int, version: str, address: str | None = None
    ) -> Acceptance:
        """Record that this person accepted `version` for the organization; it must be the current one (a
        page showing an older text must not record consent to a newer one)."""
        self.organizations.require_member(account_id, organization_id)
        current = self.current()
        if version != current.version:
            raise Invalid("these terms are no longer current: read the new version", "version")
        now = self.clock.now()
        with write_transaction(self.engine) as conn:
            acceptance_id = conn.execute(
                portal_terms_acceptance.insert()
                .values(
                    organization_id=organization_id,
                    version=version,
                    account_id=account_id,
                    accepted_at=now,
                    address=address[:64] if address else None,
                )
                .returning(portal_terms_acceptance.c.id)
            ).scalar_one()
        return Acceptance(acceptance_id, organization_id, version, account_id, now, address)

    def acceptance_of_current(self, organization_id: int) -> Acceptance | None:
        """The organization's newest acceptance of the current version, or None (it must accept again)."""
        current = self.current()
        with self.engine.connect() as conn:
            row = conn.execute(
                select(portal_terms_acceptance)
                .where(
                    portal_terms_acceptance.c.organization_id == organization_id,
                    portal_terms_acceptance.c.version == current.version,
                )
                .order_by(portal_terms_acceptance.c.id.desc())
                .limit(1)
            ).first()
        if row is None:
            return None
        return Acceptance(
            row.id, row.organization_id, row.version, row.account_id, row.accepted_at, row.address
        )

    def version(self, version: str) -> TermsVersion:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(portal_terms_version).where(portal_terms_version.c.version == version)
            ).first()
        if row is None:
            raise NotFound("no such version of the terms")
        return TermsVersion(row.version, row.text, row.digest, row.published_at)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def questions_as_data(questions: tuple[Question, ...]) -> list[dict[str, Any]]:
    return [asdict(q) for q in questions]
