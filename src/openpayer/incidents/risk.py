"""Each subscription's risk state: flags raised for malicious activity or a breach alert, with their
evidence, and the inactivity policy's outreach state (kept by `openpayer.policy`, shown, not copied).

`RiskRegister` is the `RiskSink` the detectors flag through (`openpayer.security`'s monitor hands it
"malicious activity through this app" findings: `flag(env, client_id, reason, evidence)`, where the reason
is the detector's kind, e.g. `credential_stuffing`; the composition root binds it). A flag is one row
per (subscription, reason) while raised (`risk_flag.open_key`): flagging again adds the evidence to it and
mails nobody; a new flag mails the organization's security contact and every active security analyst once
(`EmailService.send` with the key `risk:<flag>:<address>`), in the transaction that raised it. Staff with
`incidents:manage` clear a flag with a note; who and when are kept, and the action is audited.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from openpayer.clock import Clock
from openpayer.db import write_transaction
from openpayer.email import EmailService
from openpayer.incidents.metrics import AT_RISK, RISK_FLAGS_RAISED
from openpayer.incidents.reasons import RiskReason
from openpayer.incidents.tables import risk_flag
from openpayer.policy.engine import OUTREACH
from openpayer.policy.tables import policy_state
from openpayer.portal import incident_directory as directory
from openpayer.portal.errors import Conflict, Invalid, NotFound
from openpayer.portal.incident_directory import SubscriptionContext
from openpayer.portal.staff import Permission, Role, StaffService, record_audit

log = logging.getLogger(__name__)

_MAX_EVIDENCE = 20  # raises kept per flag (the newest); the count says how many there were
REASON_TEXT = {
    RiskReason.MALICIOUS_ACTIVITY: "malicious activity",
    RiskReason.INACTIVITY: "inactivity",
    RiskReason.BREACH_ALERT: "a security breach reported at the organization",
}


@dataclass(frozen=True, slots=True)
class RiskFlag:
    id: int
    subscription_id: int
    env: str
    client_id: str
    reason: str
    evidence: list[dict[str, Any]]
    source: str
    raised_at: int
    updated_at: int
    cleared_at: int | None
    cleared_by: int | None
    clear_note: str | None

    @property
    def raised(self) -> bool:
        return self.cleared_at is None

    @property
    def reason_text(self) -> str:
        return REASON_TEXT.get(RiskReason(self.reason), self.reason)

    @property
    def summary(self) -> str:
        """One line for lists: the detector or alert and how often it was raised."""
        latest = self.evidence[-1] if self.evidence else {}
        what = latest.get("detector") or latest.get("summary") or self.source
        times = len(self.evidence)
        return f"{what}" + (f" ({times} reports)" if times > 1 else "")


@dataclass(frozen=True, slots=True)
class Inactivity:
    subscription_id: int
    state: str  # the policy's: first_notice | second_notice | escalated | ...
    entered_at: int

    @property
    def at_risk(self) -> bool:
        return self.state in OUTREACH


class RiskRegister:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        email: EmailService,
        staff: StaffService,
        *,
        public_base_url: str | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.email = email
        self.staff = staff
        self.base = (public_base_url or "").rstrip("/")
        self.also: Any = None  # the monitor's own sink, kept (its detection record of each finding)
        AT_RISK.watch(self.open_counts)

    # ---- the RiskSink ---------------------------------------------------------------------------------
    def flag(self, env: str, client_id: str, reason: str, evidence: Mapping[str, Any]) -> None:
        """The detectors' entry (the security monitor's `RiskSink`): flag the client's subscription. A
        reason that is not a `RiskReason` is a detector's kind (`brute_force`, `credential_stuffing`...):
        malicious activity, with the kind kept as the evidence's `detector`."""
        if self.also is not None:
            self.also.flag(env, client_id, reason, evidence)
        try:
            parsed = RiskReason(reason)
        except ValueError:
            parsed = RiskReason.MALICIOUS_ACTIVITY
            evidence = {"detector": str(reason), **evidence}
        if parsed is RiskReason.INACTIVITY:
            return  # the inactivity policy keeps that state itself (openpayer.policy)
        with write_transaction(self.engine) as conn:
            context = directory.by_client(conn, env, client_id)
            if context is None or context.status == "removed":
                log.info("risk: no live subscription for a flagged client in %s; not flagged", env)
                return
            source = str(evidence.get("detector") or evidence.get("kind") or "detection")
            self.raise_flag(conn, context, parsed, evidence, source=source)

    # ---- raising and clearing ------------------------------------------------------------------------
    def raise_flag(
        self,
        conn: Connection,
        context: SubscriptionContext,
        reason: RiskReason,
        evidence: Mapping[str, Any],
        *,
        source: str,
        notify: bool = True,
    ) -> tuple[int, bool]:
        """In the caller's transaction: raise (or add evidence to) the flag; (flag id, whether new).
        A new flag mails its organization's security contact and the analysts unless `notify` is off
        (a breach alert sends its own mail)."""
        now = self.clock.now()
        item = {"at": now, **dict(evidence)}
        key = f"{context.subscription_id}:{reason.value}"
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        inserted = conn.execute(
            dialect.insert(risk_flag)
            .values(
                subscription_id=context.subscription_id,
                env=context.env,
                client_id=context.client_id,
                reason=reason.value,
                open_key=key,
                evidence=json.dumps([item], default=str),
                source=source[:128],
                raised_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=[risk_flag.c.open_key])
            .returning(risk_flag.c.id)
        ).scalar()
        if inserted is not None:
            RISK_FLAGS_RAISED.labels(reason.value).inc()
            if notify:
                self._notify(conn, int(inserted), context, reason, item)
            return int(inserted), True
        row = conn.execute(select(risk_flag).where(risk_flag.c.open_key == key)).one()
        items = [*json.loads(row.evidence), item][-_MAX_EVIDENCE:]
        conn.execute(
            update(risk_flag)
            .where(risk_flag.c.id == row.id)
            .values(evidence=json.dumps(items, default=str), updated_at=now)
        )
        return int(row.id), False

    def _notify(
        self,
        conn: Connection,
        flag_id: int,
        context: SubscriptionContext,
        reason: RiskReason,
        evidence: Mapping[str, Any],
    ) -> None:
        detail = str(evidence.get("detector") or evidence.get("summary") or "")
        base = {
            "application": context.application,
            "organization": context.organization,
            "env": context.env,
            "client_id": context.client_id,
            "reason": REASON_TEXT[reason],
            "detail": detail,
        }
        recipients = [(context.security_email, f"{self.base}/portal/apps/{context.application_id}")]
        recipients += [
            (address, f"{self.base}/admin/risk")
            for address in directory.staff_emails(conn, Role.SECURITY_ANALYST)
        ]
        for address, link in dict(recipients).items():
            self.email.send(
                conn,
                to=address,
                template="risk_flagged",
                context={**base, "link": link},
                cause="incidents.risk-flag",
                idempotency_key=f"risk:{flag_id}:{address}",
            )

    def clear(self, actor: int, flag_id: int, note: str, address: str | None = None) -> RiskFlag:
        self.staff.require(actor, Permission.INCIDENTS_MANAGE)
        note = note.strip()
        if not note or len(note) > 2000:
            raise Invalid("say why the flag is cleared (at most 2000 characters)", "note")
        now = self.clock.now()
        with write_transaction(self.engine) as conn:
            row = conn.execute(select(risk_flag).where(risk_flag.c.id == flag_id)).first()
            if row is None:
                raise NotFound("no such flag")
            if row.cleared_at is not None:
                raise Conflict("this flag is already cleared")
            conn.execute(
                update(risk_flag)
                .where(risk_flag.c.id == flag_id)
                .values(open_key=None, cleared_at=now, cleared_by=actor, clear_note=note, updated_at=now)
            )
            record_audit(
                conn,
                at=now,
                actor=actor,
                action="risk:clear",
                target_type="subscription",
                target_id=row.subscription_id,
                before={"flag": flag_id, "reason": row.reason, "raised": True},
                after={"flag": flag_id, "reason": row.reason, "raised": False, "note": note},
                address=address,
            )
        return self.get(flag_id)

    # ---- reading -------------------------------------------------------------------------------------
    def get(self, flag_id: int) -> RiskFlag:
        with self.engine.connect() as conn:
            row = conn.execute(select(risk_flag).where(risk_flag.c.id == flag_id)).first()
        if row is None:
            raise NotFound("no such flag")
        return _flag(row)

    def of_subscriptions(self, ids: Iterable[int], *, cleared: bool = True) -> dict[int, list[RiskFlag]]:
        """Flags of each subscription, raised first, newest first."""
        wanted = list(ids)
        out: dict[int, list[RiskFlag]] = {i: [] for i in wanted}
        if not wanted:
            return out
        query = select(risk_flag).where(risk_flag.c.subscription_id.in_(wanted))
        if not cleared:
            query = query.where(risk_flag.c.cleared_at.is_(None))
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(risk_flag.c.id.desc())).all()
        for row in rows:
            out[row.subscription_id].append(_flag(row))
        for flags in out.values():
            flags.sort(key=lambda f: (not f.raised, -f.id))
        return out

    def raised(self, limit: int = 200) -> list[tuple[RiskFlag, SubscriptionContext]]:
        """Every raised flag with its subscription, newest first (the console's overview)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(risk_flag)
                .where(risk_flag.c.cleared_at.is_(None))
                .order_by(risk_flag.c.id.desc())
                .limit(limit)
            ).all()
            contexts = {
                c.subscription_id: c for c in directory.by_ids(conn, {r.subscription_id for r in rows})
            }
        return [(_flag(r), contexts[r.subscription_id]) for r in rows if r.subscription_id in contexts]

    def inactivity(self, ids: Iterable[int]) -> dict[int, Inactivity]:
        """The inactivity policy's state of each subscription that has one."""
        wanted = list(ids)
        if not wanted:
            return {}
        p = policy_state
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(p.c.subscription_id, p.c.state, p.c.entered_at).where(p.c.subscription_id.in_(wanted))
            ).all()
        return {r.subscription_id: Inactivity(r.subscription_id, r.state, r.entered_at) for r in rows}

    def inactive_at_risk(self, limit: int = 200) -> list[tuple[Inactivity, SubscriptionContext]]:
        """Subscriptions in the inactivity policy's outreach, longest first, with their context."""
        p = policy_state
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(p.c.subscription_id, p.c.state, p.c.entered_at)
                .where(p.c.state.in_(OUTREACH))
                .order_by(p.c.entered_at)
                .limit(limit)
            ).all()
            contexts = {
                c.subscription_id: c for c in directory.by_ids(conn, [r.subscription_id for r in rows])
            }
        return [
            (Inactivity(r.subscription_id, r.state, r.entered_at), contexts[r.subscription_id])
            for r in rows
            if r.subscription_id in contexts
        ]

    def for_developers(self, subscription_ids: Sequence[int]) -> dict[int, list[str]]:
        """The portal's view (`portal.interfaces.RiskView`): what an organization is told, without the
        evidence (event ids and addresses stay with the plan's staff)."""
        flags = self.of_subscriptions(subscription_ids)
        inactive = self.inactivity(subscription_ids)
        out: dict[int, list[str]] = {}
        for sub_id in subscription_ids:
            lines = []
            for flag in flags.get(sub_id, []):
                if flag.raised:
                    lines.append(f"At risk since {_day(flag.raised_at)}: {flag.reason_text}.")
                else:
                    lines.append(
                        f"Was at risk ({flag.reason_text}) from {_day(flag.raised_at)}; "
                        f"cleared on {_day(flag.cleared_at or 0)}."
                    )
            state = inactive.get(sub_id)
            if state is not None and state.at_risk:
                lines.append(
                    f"At risk since {_day(state.entered_at)}: inactivity "
                    f"({state.state.replace('_', ' ')} of the inactivity policy; "
                    "use the app or answer the notice)."
                )
            out[sub_id] = lines
        return out

    def open_counts(self) -> dict[str, int]:
        """Subscriptions at risk now by reason (the /metrics gauge)."""
        with self.engine.connect() as conn:
            counts = {
                reason: int(n)
                for reason, n in conn.execute(
                    select(risk_flag.c.reason, func.count())
                    .where(risk_flag.c.cleared_at.is_(None))
                    .group_by(risk_flag.c.reason)
                ).all()
            }
            inactive = conn.execute(
                select(func.count()).select_from(policy_state).where(policy_state.c.state.in_(OUTREACH))
            ).scalar()
        counts[RiskReason.INACTIVITY.value] = int(inactive or 0)
        return counts


def _day(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d")


def _flag(row: Any) -> RiskFlag:
    return RiskFlag(
        id=row.id,
        subscription_id=row.subscription_id,
        env=row.env,
        client_id=row.client_id,
        reason=row.reason,
        evidence=json.loads(row.evidence),
        source=row.source,
        raised_at=row.raised_at,
        updated_at=row.updated_at,
        cleared_at=row.cleared_at,
        cleared_by=row.cleared_by,
        clear_note=row.clear_note,
    )
