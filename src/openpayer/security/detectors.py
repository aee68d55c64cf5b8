"""Detectors over the stored security event stream, each with named thresholds (`OPENPAYER_DETECT_*`).

Why over the stored stream rather than in memory: every host writes its events to the same table, so a
scan sees an attack spread over hosts, and the evidence (event ids) is already there. A scan runs after
each batch of events is written (at most `MAX_AGE` seconds after an event) and costs a handful of grouped
queries over the last window, on indexes by (kind, at).

Defaults (docs/security.md says where each comes from):
- brute_force: failures of one account from one address, 10 in 15 min (Auth0).
- password_spraying: more than 15 distinct accounts failing from one address in 5 min (Sentinel, Okta logs).
- credential_stuffing: through one app, at least 20 accounts and 10 addresses failing in 10 min with a
  failure ratio of at least max(0.5, 3 x the environment's baseline of the day before) (ours).
- breached_passwords: 10 accounts tried with a password on the breached list through one app in 10 min.
- client_secret_guessing: 10 client-authentication failures for one client, or from one address, in 15 min.
- patient_walking: 25 distinct resources one token was refused (403, 404 of its restriction) in 5 min.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, and_, case, distinct, func, select

from openpayer.security.events import BREACHED, SIGNIN_KINDS, EventKind, Outcome
from openpayer.security.models import security_event

MICROS = 1_000_000
_EVIDENCE_IDS = 100
FAILED = (str(Outcome.FAILURE), str(Outcome.REFUSED))


class DetectionKind(StrEnum):
    BRUTE_FORCE = "brute_force"
    PASSWORD_SPRAYING = "password_spraying"  # noqa: S105 - a detection name
    CREDENTIAL_STUFFING = "credential_stuffing"
    BREACHED_PASSWORDS = "breached_passwords"
    CLIENT_SECRET_GUESSING = "client_secret_guessing"  # noqa: S105
    PATIENT_WALKING = "patient_walking"


@dataclass(frozen=True, slots=True)
class Rule:
    """Events of `kinds` with `outcomes` grouped by `group` within `window` seconds: a detection when the
    count (or the distinct count of `distinct`) reaches `threshold` (exceeds it when `above`)."""

    kind: DetectionKind
    kinds: tuple[str, ...]
    outcomes: tuple[str, ...]
    group: tuple[str, ...]
    window: int
    threshold: int
    distinct: str | None = None
    above: bool = False
    detail: str | None = None
    with_client: bool = False
    attributable: bool = True  # traffic through an app: the app is flagged


@dataclass
class Found:
    kind: DetectionKind
    env: str | None
    subject: str
    window: int  # seconds
    window_start: int  # microseconds
    window_end: int
    count: int
    event_ids: list[int]
    clients: dict[str | None, int]  # events of the evidence per client id (None: no app)
    attributable: bool
    facts: dict[str, Any] = field(default_factory=dict)


def rules(settings: Any) -> list[Rule]:
    signins = tuple(str(k) for k in SIGNIN_KINDS)
    s = settings
    return [
        Rule(
            DetectionKind.BRUTE_FORCE,
            signins,
            FAILED,
            ("env", "account", "address"),
            s.detect_brute_force_window,
            s.detect_brute_force_failures,
        ),
        Rule(
            DetectionKind.PASSWORD_SPRAYING,
            signins,
            FAILED,
            ("env", "address"),
            s.detect_spray_window,
            s.detect_spray_accounts,
            distinct="account",
            above=True,
        ),
        Rule(
            DetectionKind.BREACHED_PASSWORDS,
            signins,
            (*FAILED, str(Outcome.SUCCESS)),
            ("env", "client_id"),
            s.detect_stuffing_window,
            s.detect_breached_accounts,
            distinct="account",
            detail=BREACHED,
        ),
        Rule(
            DetectionKind.CLIENT_SECRET_GUESSING,
            (str(EventKind.CLIENT_AUTH),),
            (str(Outcome.FAILURE),),
            ("env", "client_id"),
            s.detect_secret_window,
            s.detect_secret_failures,
            attributable=False,  # the named app is the target, not the way in
        ),
        Rule(
            DetectionKind.CLIENT_SECRET_GUESSING,
            (str(EventKind.CLIENT_AUTH),),
            (str(Outcome.FAILURE),),
            ("env", "address"),
            s.detect_secret_window,
            s.detect_secret_failures,
            attributable=False,
        ),
        Rule(
            DetectionKind.PATIENT_WALKING,
            (str(EventKind.FHIR_REFUSED),),
            (str(Outcome.REFUSED),),
            ("env", "client_id", "account"),
            s.detect_walk_window,
            s.detect_walk_targets,
            distinct="detail",
            with_client=True,
        ),
    ]


def _filters(rule: Rule, start: int) -> list[Any]:
    t = security_event
    where = [t.c.kind.in_(rule.kinds), t.c.outcome.in_(rule.outcomes), t.c.at >= start]
    if rule.detail is not None:
        where.append(t.c.detail == rule.detail)
    if rule.with_client:
        where.append(t.c.client_id.is_not(None))
    return where


def _match(column: Any, value: Any) -> Any:
    return column.is_(None) if value is None else column == value


def _evidence(conn: Connection, where: list[Any]) -> tuple[list[int], dict[str | None, int]]:
    t = security_event
    ids = conn.execute(select(t.c.id).where(*where).order_by(t.c.id).limit(_EVIDENCE_IDS)).scalars().all()
    clients = {
        row[0]: int(row[1])
        for row in conn.execute(select(t.c.client_id, func.count()).where(*where).group_by(t.c.client_id))
    }
    return list(ids), clients


def run_rule(conn: Connection, rule: Rule, now: int) -> list[Found]:
    t = security_event
    start = now - rule.window * MICROS
    where = _filters(rule, start)
    measure = func.count(distinct(t.c[rule.distinct])) if rule.distinct else func.count()
    columns = [t.c[name] for name in rule.group]
    query = (
        select(*columns, measure.label("n"), func.min(t.c.at), func.max(t.c.at))
        .where(*where)
        .group_by(*columns)
        .having(measure > rule.threshold if rule.above else measure >= rule.threshold)
    )
    found = []
    for row in conn.execute(query).all():
        values = dict(zip(rule.group, row[: len(rule.group)], strict=True))
        group_where = where + [_match(t.c[name], value) for name, value in values.items()]
        ids, clients = _evidence(conn, group_where)
        subject = " ".join(f"{k}={v}" for k, v in values.items() if k != "env")
        found.append(
            Found(
                rule.kind,
                values.get("env"),
                subject[:200],
                rule.window,
                int(row[-2]),
                int(row[-1]),
                int(row.n),
                ids,
                clients,
                rule.attributable,
                {
                    "threshold": rule.threshold,
                    "measure": f"distinct {rule.distinct}" if rule.distinct else "events",
                },
            )
        )
    return found


@dataclass(frozen=True, slots=True)
class Stuffing:
    window: int
    accounts: int
    addresses: int
    factor: float
    floor: float
    baseline_window: int
    baseline_default: float
    baseline_min_attempts: int = 100

    @classmethod
    def from_settings(cls, s: Any) -> Stuffing:
        return cls(
            s.detect_stuffing_window,
            s.detect_stuffing_accounts,
            s.detect_stuffing_addresses,
            s.detect_stuffing_ratio_factor,
            s.detect_stuffing_ratio_floor,
            s.detect_stuffing_baseline_window,
            s.detect_stuffing_baseline_default,
        )


def _baseline(conn: Connection, env: str | None, start: int, rule: Stuffing, kinds: Sequence[str]) -> float:
    t = security_event
    failed = func.sum(case((t.c.outcome.in_(FAILED), 1), else_=0))
    attempts = func.sum(case((t.c.outcome.in_((*FAILED, str(Outcome.SUCCESS))), 1), else_=0))
    row = conn.execute(
        select(failed, attempts).where(
            t.c.kind.in_(kinds),
            _match(t.c.env, env),
            t.c.at >= start - rule.baseline_window * MICROS,
            t.c.at < start,
        )
    ).one()
    failures, total = int(row[0] or 0), int(row[1] or 0)
    if total < rule.baseline_min_attempts:
        return rule.baseline_default
    return failures / total


def run_stuffing(conn: Connection, rule: Stuffing, now: int) -> list[Found]:
    """Many accounts from many addresses failing through one app (or, without an app, one sign-in page),
    with a failure ratio far above the environment's baseline (the day before the window)."""
    t = security_event
    kinds = [str(k) for k in SIGNIN_KINDS]
    start = now - rule.window * MICROS
    is_failed = t.c.outcome.in_(FAILED)
    failures = func.sum(case((is_failed, 1), else_=0))
    successes = func.sum(case((t.c.outcome == str(Outcome.SUCCESS), 1), else_=0))
    accounts = func.count(distinct(case((is_failed, t.c.account))))
    addresses = func.count(distinct(case((is_failed, t.c.address))))
    query = (
        select(
            t.c.env,
            t.c.client_id,
            failures,
            successes,
            accounts,
            addresses,
            func.min(t.c.at),
            func.max(t.c.at),
        )
        .where(t.c.kind.in_(kinds), t.c.at >= start)
        .group_by(t.c.env, t.c.client_id)
        .having(and_(accounts >= rule.accounts, addresses >= rule.addresses))
    )
    found = []
    for env, client_id, failed_n, success_n, account_n, address_n, first, last in conn.execute(query).all():
        ratio = int(failed_n) / max(1, int(failed_n) + int(success_n))
        baseline = _baseline(conn, env, start, rule, kinds)
        needed = min(0.95, max(rule.floor, rule.factor * baseline))
        if ratio < needed:
            continue
        where = [
            t.c.kind.in_(kinds),
            t.c.at >= start,
            is_failed,
            _match(t.c.env, env),
            _match(t.c.client_id, client_id),
        ]
        ids, clients = _evidence(conn, where)
        found.append(
            Found(
                DetectionKind.CREDENTIAL_STUFFING,
                env,
                f"client_id={client_id}"[:200],
                rule.window,
                int(first),
                int(last),
                int(failed_n),
                ids,
                clients,
                True,
                {
                    "failures": int(failed_n),
                    "successes": int(success_n),
                    "accounts": int(account_n),
                    "addresses": int(address_n),
                    "failure_ratio": round(ratio, 3),
                    "baseline_ratio": round(baseline, 3),
                    "ratio_needed": round(needed, 3),
                },
            )
        )
    return found
