"""Production requests and their review by the plan's AppSec team.

A developer requests production access for an application once it has a sandbox subscription, a complete
questionnaire of the current version, and its organization has accepted the current terms. The request enters
the reviewers' queue, due two business days later (`business_days.py`). Reviewers approve, reject or ask for
changes, always through `workflow.next_state`; each step is a message in the request's thread (the developer
answers there), and each staff step is audited. On approval the production subscription is created (its
credentials wait for the developer to reveal them once, `ApplicationService.reveal_credentials`).

A transition updates the row only if its state is still the one the actor saw, so two reviewers acting at once
cannot both decide: the second gets a `Conflict`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from openpayer.db import write_transaction
from openpayer.portal import validation
from openpayer.portal.applications import Application, ApplicationService, Subscription
from openpayer.portal.business_days import BusinessCalendar
from openpayer.portal.errors import Conflict, Invalid, NotFound
from openpayer.portal.interfaces import Clock
from openpayer.portal.models import (
    portal_application,
    portal_membership,
    portal_organization,
    portal_production_request,
    portal_review_message,
    portal_subscription,
)
from openpayer.portal.questionnaire import QuestionnaireService, TermsService
from openpayer.portal.staff import Permission, StaffService, record_audit
from openpayer.portal.workflow import AWAITING_REVIEW, OPEN, Action, Actor, State, next_state

MAX_MESSAGE_LENGTH = 10_000


@dataclass(frozen=True, slots=True)
class ProductionRequest:
    id: int
    application_id: int
    env: str
    state: State
    answer_id: int
    acceptance_id: int
    submitted_by: int
    submitted_at: int
    due_at: int
    decided_by: int | None
    decided_at: int | None
    updated_at: int

    def overdue(self, now: int) -> bool:
        return self.state in AWAITING_REVIEW and now >= self.due_at


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    request_id: int
    author_kind: Actor
    author_account_id: int
    action: str
    body: str
    at: int


@dataclass(frozen=True, slots=True)
class QueueItem:
    request: ProductionRequest
    application: Application
    overdue: bool


class ReviewService:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        applications: ApplicationService,
        questionnaire: QuestionnaireService,
        terms: TermsService,
        staff: StaffService,
        calendar: BusinessCalendar,
        *,
        production_env: str,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.applications = applications
        self.questionnaire = questionnaire
        self.terms = terms
        self.staff = staff
        self.calendar = calendar
        self.production_env = production_env

    # ---- the developer's side ----------------------------------------------------------------------
    def submit(self, account_id: int, application_id: int, note: str = "") -> ProductionRequest:
        application = self.applications.for_member(account_id, application_id)
        if application.status != "active":
            raise Conflict("this application is not active")
        if self.applications.subscription(application_id, self.production_env) is not None:
            raise Conflict(f"this application already has {self.production_env} access")
        if self.applications.subscription(application_id, self.applications.sandbox_env) is None:
            raise Conflict("register the application in the sandbox first")
        answer = self.questionnaire.latest(application_id)
        if answer is None or not answer.current:
            raise Conflict("complete the current developer questionnaire first")
        acceptance = self.terms.acceptance_of_current(application.organization_id)
        if acceptance is None:
            raise Conflict("accept the current terms of service first")
        body = _message(note, required=False)
        now = self.clock.now()
        with write_transaction(self.engine) as conn:
            open_request = conn.execute(
                select(portal_production_request.c.id).where(
                    portal_production_request.c.application_id == application_id,
                    portal_production_request.c.state.in_([s.value for s in OPEN]),
                )
            ).first()
            if open_request is not None:
                raise Conflict("this application already has a production request under review")
            request_id = conn.execute(
                portal_production_request.insert()
                .values(
                    application_id=application_id,
                    env=self.production_env,
                    state=State.SUBMITTED.value,
                    answer_id=answer.id,
                    acceptance_id=acceptance.id,
                    submitted_by=account_id,
                    submitted_at=now,
                    due_at=self.calendar.due_at(now),
                    updated_at=now,
                )
                .returning(portal_production_request.c.id)
            ).scalar_one()
            conn.execute(
                portal_review_message.insert().values(
                    request_id=request_id,
                    author_kind=Actor.DEVELOPER.value,
                    author_account_id=account_id,
                    action="submit",
                    body=body,
                    at=now,
                )
            )
        return self.get(request_id)

    def resubmit(self, account_id: int, request_id: int, message: str) -> ProductionRequest:
        """Answer a request for changes; the request goes back to the queue, due two business days later,
        with the application's newest questionnaire answers."""
        request = self.get(request_id)
        self.applications.for_member(account_id, request.application_id)
        answer = self.questionnaire.latest(request.application_id)
        if answer is None or not answer.current:
            raise Conflict("complete the current developer questionnaire first")
        now = self.clock.now()
        return self._transition(
            request,
            Action.RESUBMIT,
            Actor.DEVELOPER,
            account_id,
            message,
            extra={"answer_id": answer.id, "due_at": self.calendar.due_at(now)},
        )

    def comment(self, account_id: int, request_id: int, message: str, *, staff: bool) -> Message:
        """A message in the thread without a change of state (a question, an answer)."""
        request = self.get(request_id)
        if staff:
            self.staff.require(account_id, Permission.APPS_REVIEW)
        else:
            self.applications.for_member(account_id, request.application_id)
        body = _message(message, required=True)
        now = self.clock.now()
        kind = Actor.STAFF if staff else Actor.DEVELOPER
        with write_transaction(self.engine) as conn:
            message_id = conn.execute(
                portal_review_message.insert()
                .values(
                    request_id=request_id,
                    author_kind=kind.value,
                    author_account_id=account_id,
                    action="comment",
                    body=body,
                    at=now,
                )
                .returning(portal_review_message.c.id)
            ).scalar_one()
            if staff:
                record_audit(
                    conn,
                    at=now,
                    actor=account_id,
                    action="review:comment",
                    target_type="production_request",
                    target_id=request_id,
                    after={"message_id": message_id},
                )
        return Message(message_id, request_id, kind, account_id, "comment", body, now)

    def in_production(self, account_id: int) -> bool:
        """Whether an organization of the account has an application with production access (not removed)
        or a production request under review: a production request needs two-step sign-in, so such a
        developer may not turn it off."""
        apps = (
            select(portal_application.c.id)
            .join(
                portal_membership, portal_membership.c.organization_id == portal_application.c.organization_id
            )
            .where(portal_membership.c.account_id == account_id)
        )
        granted = select(portal_subscription.c.id).where(
            portal_subscription.c.application_id.in_(apps),
            portal_subscription.c.env == self.production_env,
            portal_subscription.c.status != "removed",
        )
        pending = select(portal_production_request.c.id).where(
            portal_production_request.c.application_id.in_(apps),
            portal_production_request.c.state.in_([s.value for s in OPEN]),
        )
        with self.engine.connect() as conn:
            return conn.execute(select(granted.exists() | pending.exists())).scalar_one()

    def for_application(self, account_id: int, application_id: int) -> list[ProductionRequest]:
        self.applications.for_member(account_id, application_id)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(portal_production_request)
                .where(portal_production_request.c.application_id == application_id)
                .order_by(portal_production_request.c.id.desc())
            ).all()
        return [_request(row) for row in rows]

    def thread(self, request_id: int) -> list[Message]:
        """The request's messages, oldest first. Callers check who may read it (member or `apps:read`)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(portal_review_message)
                .where(portal_review_message.c.request_id == request_id)
                .order_by(portal_review_message.c.id)
            ).all()
        return [
            Message(r.id, r.request_id, Actor(r.author_kind), r.author_account_id, r.action, r.body, r.at)
            for r in rows
        ]

    # ---- the reviewers' side -----------------------------------------------------------------------
    def queue(self, actor: int) -> list[QueueItem]:
        """Requests awaiting a reviewer, the most urgent first; overdue ones are flagged."""
        self.staff.require(actor, Permission.APPS_READ)
        with self.engine.connect() as conn:
            r, a, o = portal_production_request, portal_application, portal_organization
            rows = conn.execute(
                select(r)
                .join(a, a.c.id == r.c.application_id)
                .join(o, o.c.id == a.c.organization_id)
                .where(r.c.state.in_([s.value for s in AWAITING_REVIEW]), o.c.status != "removed")
                .order_by(r.c.due_at, r.c.id)
            ).all()
        now = self.clock.now()
        items = []
        for row in rows:
            request = _request(row)
            items.append(
                QueueItem(request, self.applications.get(request.application_id), request.overdue(now))
            )
        return items

    def request_changes(
        self, actor: int, request_id: int, message: str, address: str | None = None
    ) -> ProductionRequest:
        self.staff.require(actor, Permission.APPS_REVIEW)
        return self._transition(
            self.get(request_id), Action.REQUEST_CHANGES, Actor.STAFF, actor, message, address=address
        )

    def reject(
        self, actor: int, request_id: int, message: str, address: str | None = None
    ) -> ProductionRequest:
        self.staff.require(actor, Permission.APPS_REVIEW)
        now = self.clock.now()
        return self._transition(
            self.get(request_id),
            Action.REJECT,
            Actor.STAFF,
            actor,
            message,
            extra={"decided_by": actor, "decided_at": now},
            address=address,
        )

    def approve(
        self, actor: int, request_id: int, message: str = "", address: str | None = None
    ) -> tuple[ProductionRequest, Subscription]:
        """Approve and create the production subscription; the developer reveals its credentials once."""
        self.staff.require(actor, Permission.APPS_REVIEW)
        request = self.get(request_id)
        now = self.clock.now()
        approved = self._transition(
            request,
            Action.APPROVE,
            Actor.STAFF,
            actor,
            message,
            extra={"decided_by": actor, "decided_at": now},
            address=address,
        )
        subscription = self.applications.subscribe_approved(request.application_id, request.env)
        return approved, subscription

    # ---- shared ------------------------------------------------------------------------------------
    def get(self, request_id: int) -> ProductionRequest:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(portal_production_request).where(portal_production_request.c.id == request_id)
            ).first()
        if row is None:
            raise NotFound("no such production request")
        return _request(row)

    def _transition(
        self,
        request: ProductionRequest,
        action: Action,
        actor_kind: Actor,
        account_id: int,
        message: str,
        *,
        extra: dict[str, int] | None = None,
        address: str | None = None,
    ) -> ProductionRequest:
        target = next_state(request.state, action, actor_kind, message)
        if self.applications.organization_removed(request.application_id):
            # Removed by staff or by the inactivity policy: no decision may give it production access.
            raise Conflict("the application's organization has been removed; its requests are closed")
        body = _message(message, required=False)
        now = self.clock.now()
        with write_transaction(self.engine) as conn:
            done = conn.execute(
                portal_production_request.update()
                .where(
                    portal_production_request.c.id == request.id,
                    portal_production_request.c.state == request.state.value,
                )
                .values(state=target.value, updated_at=now, **(extra or {}))
            ).rowcount
            if not done:
                raise Conflict("the request changed meanwhile; reload it")
            conn.execute(
                portal_review_message.insert().values(
                    request_id=request.id,
                    author_kind=actor_kind.value,
                    author_account_id=account_id,
                    action=action.value,
                    body=body,
                    at=now,
                )
            )
            if actor_kind is Actor.STAFF:
                record_audit(
                    conn,
                    at=now,
                    actor=account_id,
                    action=f"review:{action.value}",
                    target_type="production_request",
                    target_id=request.id,
                    before={"state": request.state.value},
                    after={"state": target.value},
                    address=address,
                )
        return self.get(request.id)


def _message(text: str, *, required: bool) -> str:
    body = text.strip()
    if required and not body:
        raise Invalid("write a message", "message")
    return validation.text(body, "message", max_length=MAX_MESSAGE_LENGTH, required=required)


def _request(row: Any) -> ProductionRequest:
    return ProductionRequest(
        id=row.id,
        application_id=row.application_id,
        env=row.env,
        state=State(row.state),
        answer_id=row.answer_id,
        acceptance_id=row.acceptance_id,
        submitted_by=row.submitted_by,
        submitted_at=row.submitted_at,
        due_at=row.due_at,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        updated_at=row.updated_at,
    )
