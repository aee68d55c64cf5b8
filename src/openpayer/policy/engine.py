"""The inactivity policy as a state machine per subscription, advanced by an idempotent daily sweep.

States: active → first_notice → second_notice → escalated → removed, plus paused (staff, with a reason and
an end date). The evidence is the subscription's OAuth client's activity (`openpayer.oauth.activity`): a
subscription is active while both its last SMART authorization and its last API call, or its last response,
fall within `policy_window_days`. Counting is in local dates of `policy_time_zone` (America/Chicago):

- baseline = the latest of: the older of (last authorization, last call) when both exist; the last response;
  the subscription's creation. First notice on baseline's date + 60 days.
- second notice 14 days after the first; notice to the organization's other staff one *calendar* month after
  the second (same day of the month, or the month's last day); removal 7 days after that.
- One step per subscription per sweep, dated from the day the previous step happened, so a missed day never
  shortens the time a developer has to answer.
- A response (the signed link in a notice, a staff record, or activity again) returns the subscription to
  active, starts a new cycle and restarts the window from the response.

Each step is a compare-and-set on the subscription's (state, cycle) row; its transition record and its mail
(`EmailService.send` with the key `policy:<subscription>:<stage>:<cycle>:<address>`) commit with it, so
two hosts sweeping at once send each notice once.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, select, update

from openpayer.clock import Clock
from openpayer.config import Settings
from openpayer.db import write_transaction
from openpayer.email import EmailService
from openpayer.jobs.queue import insert_ignoring_duplicates
from openpayer.oauth.activity import ActivityLog, Seen
from openpayer.oauth.clients import ClientStore
from openpayer.oauth.tokens import TokenStore
from openpayer.policy.tables import policy_state, policy_transition
from openpayer.portal.directory import Directory, Person, SubscriptionFacts

Also = Callable[[Connection], None] | None  # more to write in a step's transaction
OUTREACH = ("first_notice", "second_notice", "escalated")
NEXT = {"active": "first_notice", "first_notice": "second_notice", "second_notice": "escalated"}
NEXT["escalated"] = "removed"


class PolicyError(Exception):
    """A request the policy refuses (unknown subscription, removed, a bad link or date)."""


@dataclass(frozen=True, slots=True)
class Row:
    """One subscription with what the policy decides on."""

    subscription_id: int
    env: str
    client_id: str
    status: str  # the portal's: active | suspended | removed
    created_at: int
    application: str
    organization_id: int
    organization: str
    facts: SubscriptionFacts  # what the portal knows of it (contacts, who registered the application)
    state: str
    cycle: int
    entered_at: int
    entered_on: date
    responded_at: int | None
    paused_until: date | None
    seen: Seen


@dataclass(frozen=True, slots=True)
class Step:
    subscription_id: int
    from_state: str
    to_state: str
    reason: str


@dataclass(frozen=True, slots=True)
class Status:
    row: Row
    next_step: str
    next_on: date | None


class InactivityPolicy:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        clock: Clock,
        activity: ActivityLog,
        clients: ClientStore,
        tokens: TokenStore,
        email: EmailService,
        secret: str,
        directory: Directory,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self.activity = activity
        self.clients = clients
        self.tokens = tokens
        self.email = email
        self.directory = directory  # the portal's subscriptions and people (never its tables)
        self.zone = ZoneInfo(settings.policy_time_zone)
        self._key = hashlib.sha256(b"openpayer-policy-link:" + secret.encode()).digest()

    # ---- dates ---------------------------------------------------------------------------------------
    def local_date(self, seconds: int) -> date:
        return datetime.fromtimestamp(seconds, tz=self.zone).date()

    def noon(self, day: date) -> int:
        """The instant a sweep `--as-of DAY` runs at: noon of that local day."""
        return int(datetime.combine(day, time(12), tzinfo=self.zone).timestamp())

    def due_on(self, row: Row) -> date | None:
        """The local date of the next sweep step, or None when none is scheduled."""
        s = self.settings
        if row.state == "paused":
            return row.paused_until
        if row.state == "active":
            return self.local_date(self.baseline(row)) + timedelta(days=s.policy_window_days)
        if row.state == "first_notice":
            return row.entered_on + timedelta(days=s.policy_second_notice_days)
        if row.state == "second_notice":
            return add_months(row.entered_on, s.policy_escalation_months)
        if row.state == "escalated":
            return row.entered_on + timedelta(days=s.policy_removal_days)
        return None

    def baseline(self, row: Row) -> int:
        seen = row.seen
        both = (
            min(seen.last_authorized_at, seen.last_call_at)
            if seen.last_authorized_at is not None and seen.last_call_at is not None
            else None
        )
        return max(x for x in (both, row.responded_at, row.created_at) if x is not None)

    # ---- reading -------------------------------------------------------------------------------------
    def rows(
        self, conn: Connection, subscription_id: int | None = None, *, organization_id: int | None = None
    ) -> list[Row]:
        # First: it writes this process's pending activity, and `conn` must not have read before that
        # commits (a SQLite or PostgreSQL snapshot taken earlier would not see the write).
        seen = self.activity.last_seen(conn)
        facts = self.directory.subscriptions(
            conn, subscription_id=subscription_id, organization_id=organization_id
        )
        query = select(policy_state)
        if subscription_id is not None:
            query = query.where(policy_state.c.subscription_id == subscription_id)
        states = {r.subscription_id: r for r in conn.execute(query)}
        out = []
        for f in facts:
            p = states.get(f.subscription_id)
            out.append(
                Row(
                    subscription_id=f.subscription_id,
                    env=f.env,
                    client_id=f.client_id,
                    status=f.status,
                    created_at=f.created_at,
                    application=f.application,
                    organization_id=f.organization_id,
                    organization=f.organization,
                    facts=f,
                    state="removed" if f.status == "removed" else (p.state if p is not None else "active"),
                    cycle=p.cycle if p is not None else 0,
                    entered_at=p.entered_at if p is not None else f.created_at,
                    entered_on=date.fromisoformat(p.entered_on)
                    if p is not None
                    else self.local_date(f.created_at),
                    responded_at=p.responded_at if p is not None else None,
                    paused_until=date.fromisoformat(p.paused_until)
                    if p is not None and p.paused_until
                    else None,
                    seen=seen.get((f.env, f.client_id), Seen(None, None)),
                )
            )
        return out

    def status(self) -> list[Status]:
        with self.engine.connect() as conn:
            rows = self.rows(conn)
        out = []
        for row in rows:
            if row.status == "suspended":
                out.append(Status(row, "none (suspended by staff)", None))
                continue
            nxt = {"paused": "resume", **NEXT}.get(row.state)
            out.append(Status(row, nxt or "none", self.due_on(row) if nxt else None))
        return out

    # ---- the sweep -----------------------------------------------------------------------------------
    def plan(self, row: Row, today: date) -> Step | None:
        """What the sweep does to one subscription today (nothing, or one step)."""
        if row.status != "active" or row.state == "removed":
            return None  # suspended by staff, or removed: the policy leaves it alone
        due = self.due_on(row)
        if row.state == "paused":
            if due is not None and today >= due:
                return Step(row.subscription_id, "paused", "active", f"the pause ended on {due}")
            return None
        window_ends = self.local_date(self.baseline(row)) + timedelta(days=self.settings.policy_window_days)
        if row.state in OUTREACH and today < window_ends:
            return Step(row.subscription_id, row.state, "active", "activity resumed")
        if due is not None and today >= due:
            return Step(row.subscription_id, row.state, NEXT[row.state], _REASONS[NEXT[row.state]])
        return None

    def sweep(self, as_of: date | None = None, *, dry_run: bool = False) -> list[Step]:
        """Advance every subscription by at most one step; the steps taken (or, dry, that would be)."""
        now = self.clock.now() if as_of is None else self.noon(as_of)
        today = self.local_date(now)
        with self.engine.connect() as conn:
            rows = self.rows(conn)
        steps = []
        for row in rows:
            step = self.plan(row, today)
            if step is None:
                continue
            if dry_run or self._apply(row, step, now, today, actor="sweep"):
                steps.append(step)
        return steps

    def _apply(
        self, row: Row, step: Step, now: int, today: date, *, actor: str, also: Also = None, **values: Any
    ) -> bool:
        """Compare-and-set the subscription's (state, cycle); record the step and its mail with it (and
        `also`, e.g. the console's staff audit row)."""
        cycle = row.cycle + 1 if step.to_state == "active" else row.cycle
        with write_transaction(self.engine) as conn:
            insert_ignoring_duplicates(conn, policy_state, _initial(row))
            if step.to_state == "active" and "responded_at" not in values and step.from_state == "paused":
                values["responded_at"] = now  # the window restarts at the end of a pause
            changed = conn.execute(
                update(policy_state)
                .where(
                    policy_state.c.subscription_id == row.subscription_id,
                    policy_state.c.state == row.state,
                    policy_state.c.cycle == row.cycle,
                )
                .values(
                    state=step.to_state, cycle=cycle, entered_at=now, entered_on=today.isoformat(), **values
                )
            ).rowcount
            if not changed:
                return False  # another host (or person) moved it first
            emails = self._mail(conn, row, step.to_state, cycle)
            reason = step.reason
            if step.to_state == "removed":
                reason += self._remove(conn, row)
            if also is not None:
                also(conn)
            conn.execute(
                policy_transition.insert().values(
                    subscription_id=row.subscription_id,
                    at=now,
                    on_date=today.isoformat(),
                    from_state=step.from_state,
                    to_state=step.to_state,
                    cycle=cycle,
                    last_authorized_at=row.seen.last_authorized_at,
                    last_call_at=row.seen.last_call_at,
                    reason=reason,
                    actor=actor,
                    emails=json.dumps(emails),
                )
            )
        return True

    # ---- mail ----------------------------------------------------------------------------------------
    def recipients(self, conn: Connection, row: Row, stage: str) -> list[str]:
        """Who each notice goes to (docs/policy.md, "Who is written to"): the involved developer for the
        first two; the organization's other people at escalation; the whole organization at removal."""
        f = row.facts
        people = self.directory.people(conn, f.organization_id)
        developers = involved_developers(f, people)
        to_developer = [p.email for p in developers] or [f.technical_email]
        if stage in ("first_notice", "second_notice"):
            return _unique(to_developer)
        if stage == "escalated":
            ids = {p.account_id for p in developers}
            told = {a.lower() for a in to_developer}
            others = [p.email for p in people if p.account_id not in ids and p.email.lower() not in told]
            if not others:  # nobody else has an account: the organization's registered contacts
                others = [a for a in (f.security_email, f.technical_email) if a.lower() not in told]
            return _unique(others or to_developer)
        return _unique([p.email for p in people] + [f.technical_email, f.security_email])

    def link(self, row: Row, cycle: int) -> str:
        base = (self.settings.public_base_url or f"http://{self.settings.host}:{self.settings.port}").rstrip(
            "/"
        )
        signature = self.sign(row.subscription_id, cycle)
        return f"{base}/policy/still-in-use?s={row.subscription_id}&c={cycle}&t={signature}"

    def sign(self, subscription_id: int, cycle: int) -> str:
        return hmac.new(self._key, f"{subscription_id}:{cycle}".encode(), hashlib.sha256).hexdigest()[:32]

    def _mail(self, conn: Connection, row: Row, stage: str, cycle: int) -> list[int]:
        if stage not in (*OUTREACH, "removed"):
            return []
        s = self.settings
        context = {
            "application": row.application,
            "organization": row.organization,
            "env": row.env,
            "client_id": row.client_id,
            "window_days": s.policy_window_days,
            "last_authorized": self._day(row.seen.last_authorized_at),
            "last_call": self._day(row.seen.last_call_at),
            "link": self.link(row, cycle),
            "stage": stage,
        }
        return [
            self.email.send(
                conn,
                to=address,
                template=f"policy_{stage}",
                context=context,
                cause=f"policy.{stage}",
                idempotency_key=f"policy:{row.subscription_id}:{stage}:{cycle}:{address.lower()}",
            )
            for address in self.recipients(conn, row, stage)
        ]

    def _day(self, seconds: int | None) -> str:
        return "never" if seconds is None else self.local_date(seconds).isoformat()

    # ---- removal -------------------------------------------------------------------------------------
    def _remove(self, conn: Connection, row: Row) -> str:
        """Only this subscription when the organization has other subscriptions in use; otherwise every
        subscription of the organization and the organization itself: it is marked removed and its people's
        accounts are deleted (docs/policy.md, "Removal"). What was removed beyond the subscription."""
        others = [
            o
            for o in self.rows(conn, organization_id=row.organization_id)
            if o.subscription_id != row.subscription_id and o.status != "removed"
        ]
        in_use = [o for o in others if o.state in ("active", "paused")]
        targets = [row] if in_use else [row, *others]
        self.directory.remove_subscriptions(conn, [t.subscription_id for t in targets])
        for target in targets:
            self.clients.set_status_in(conn, target.env, target.client_id, "removed")
            self.tokens.revoke_client(conn, target.env, target.client_id)
        if in_use:
            return ""
        accounts = self.directory.remove_organization(conn, row.organization_id, self.clock.now())
        ids = ", ".join(str(p.account_id) for p in accounts) or "none"
        subscriptions = ", ".join(str(t.subscription_id) for t in targets)
        return f"; the organization is removed, with its subscriptions ({subscriptions}) and accounts ({ids})"

    # ---- responses and pauses ------------------------------------------------------------------------
    def respond(
        self, subscription_id: int, *, actor: str, cycle: int | None = None, also: Also = None
    ) -> bool:
        """A response: the window restarts now; an outreach in progress ends (back to active). False when
        the link's cycle is over (already answered) or the subscription is removed."""
        now = self.clock.now()
        with self.engine.connect() as conn:
            found = self.rows(conn, subscription_id)
        if not found:
            raise PolicyError("no such subscription")
        row = found[0]
        if row.state == "removed" or row.status == "removed" or (cycle is not None and cycle != row.cycle):
            return False
        if row.state == "paused":
            return False
        step = Step(subscription_id, row.state, "active", f"response ({actor})")
        if row.state == "active":  # no outreach: the response still restarts the window
            with write_transaction(self.engine) as conn:
                insert_ignoring_duplicates(conn, policy_state, _initial(row))
                conn.execute(
                    update(policy_state)
                    .where(policy_state.c.subscription_id == subscription_id)
                    .values(responded_at=now)
                )
                if also is not None:
                    also(conn)
            return True
        return self._apply(row, step, now, self.local_date(now), actor=actor, also=also, responded_at=now)

    def respond_with_link(self, subscription_id: int, cycle: int, signature: str) -> bool:
        if not hmac.compare_digest(self.sign(subscription_id, cycle), signature):
            raise PolicyError("this link is not valid")
        return self.respond(subscription_id, actor="developer link", cycle=cycle)

    def pause(self, subscription_id: int, *, until: date, reason: str, actor: str, also: Also = None) -> None:
        now = self.clock.now()
        today = self.local_date(now)
        if until <= today:
            raise PolicyError("the pause must end after today")
        if not reason.strip():
            raise PolicyError("a pause needs a reason")
        with self.engine.connect() as conn:
            found = self.rows(conn, subscription_id)
        if not found or found[0].state == "removed" or found[0].status == "removed":
            raise PolicyError("no such subscription, or it is removed")
        row = found[0]
        step = Step(subscription_id, row.state, "paused", f"paused until {until}: {reason.strip()}")
        values = {"paused_until": until.isoformat(), "pause_reason": reason.strip()[:1000]}
        if not self._apply(row, step, now, today, actor=actor, also=also, **values):
            raise PolicyError("the subscription changed meanwhile; try again")

    def transitions(self, subscription_id: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(policy_transition)
                .where(policy_transition.c.subscription_id == subscription_id)
                .order_by(policy_transition.c.id)
            )
            return [dict(r._mapping) for r in rows]


_REASONS = {
    "first_notice": "no authorization and API call within the window",
    "second_notice": "no response to the first notice",
    "escalated": "no response to the second notice",
    "removed": "no response after the organization's other staff were told",
}


def involved_developers(facts: SubscriptionFacts, people: list[Person]) -> list[Person]:
    """The account that registered the application while it is still in the organization; else the
    accounts with the technical contact's address; else everyone in the organization."""
    creator = [p for p in people if p.account_id == facts.application_created_by]
    technical = [p for p in people if p.email.lower() == facts.technical_email.lower()]
    return creator or technical or people


def _unique(addresses: list[str]) -> list[str]:
    out: dict[str, str] = {}
    for address in addresses:
        out.setdefault(address.lower(), address)
    return list(out.values())


def _initial(row: Row) -> dict[str, Any]:
    return {
        "subscription_id": row.subscription_id,
        "state": row.state,
        "cycle": row.cycle,
        "entered_at": row.entered_at,
        "entered_on": row.entered_on.isoformat(),
    }


def add_months(day: date, months: int) -> date:
    """The same day `months` calendar months later, or that month's last day (Jan 31 + 1 → Feb 28/29)."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def parse_day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise PolicyError(f"{value!r} is not a date (YYYY-MM-DD)") from error
