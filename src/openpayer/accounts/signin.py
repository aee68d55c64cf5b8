"""Sign-in: password, then the second factor when one is enrolled, then a session; throttled and audited.

The steps are pages of whatever flow needs a signed-in account (today the OAuth authorize endpoint for
members; the developer portal and the staff console next): the flow renders the forms and calls
`with_password`, `with_second_factor` and `session` here, which decide.

- Failures are throttled per (account, address) and per address with growing delays
  (`openpayer.security.throttle`), never per account alone: nobody can lock a member out by typing their
  username wrong. A throttled attempt is `Refused` with `retry_after` (the page answers 429) and its
  password is not checked; it does not reveal whether the account exists.
- Every attempt is a security event (`openpayer.security.events`: the account as a keyed hash, the address,
  the app) and failures and successes are in the audit log (never the username, password or code).
- While credential stuffing through the app is detected, a password on the breached list is refused
  without being checked (`SecurityMonitor.under_attack`).
- Every attempt that ends is also reported to `SignInEvents.report_sign_in` (events.py), as the developers'
  and staff's sign-in is.
- A pending second factor travels in a signed field valid for `SECOND_FACTOR_MAX_AGE` seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from openpayer.accounts.events import SignInArea, SignInEvents, SignInOutcome
from openpayer.accounts.sessions import Signer
from openpayer.clock import Clock
from openpayer.observability.metrics import SIGN_IN_FAILURES
from openpayer.security.audit import AuditEvent, AuditLog
from openpayer.security.breached import is_breached
from openpayer.security.events import BREACHED, SECOND_FACTOR, EventKind, Outcome
from openpayer.security.monitor import SecurityMonitor
from openpayer.security.throttle import Decision

SECOND_FACTOR_MAX_AGE = 300
WRONG_CREDENTIALS = "The username or password is incorrect, or the account cannot sign in."
SECOND_FACTOR_EXPIRED = "Your sign-in took too long. Please sign in again."
WRONG_CODE = "That code is not valid. Try again."
BREACHED_REFUSED = (
    "This password is on a list of passwords exposed in data breaches, and such passwords cannot sign in "
    "through this app right now. Try again later, or ask the health plan to help you choose a new one."
)


def throttled_message(seconds: int) -> str:
    wait = f"{seconds} seconds" if seconds < 120 else f"{(seconds + 59) // 60} minutes"
    return f"Too many failed sign-in attempts from your network. Try again in {wait}."


class Account(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def username(self) -> str: ...

    @property
    def has_totp(self) -> bool: ...

    @property
    def session_generation(self) -> int:
        """Sessions issued under another generation have ended (signed out everywhere, new password)."""
        ...


A = TypeVar("A", bound=Account)


class Directory(Protocol[A]):
    """Where accounts of one kind live (members today)."""

    def authenticate(self, env: str, username: str, password: str) -> A | None: ...

    def get(self, env: str, account_id: int) -> A | None: ...

    def verify_totp(self, account: A, code: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class SignedIn(Generic[A]):
    account: A
    session: str  # the signed session cookie's value
    auth_time: int


@dataclass(frozen=True, slots=True)
class NeedsSecondFactor:
    pending: str  # signed; goes back in the second-factor form


@dataclass(frozen=True, slots=True)
class Refused:
    message: str  # for the page
    retry_second_factor: bool = False  # show the second-factor form again (else the password form)
    retry_after: int | None = None  # throttled: answer 429 with this `Retry-After` (seconds)


class SignIn(Generic[A]):
    def __init__(
        self,
        directory: Directory[A],
        *,
        security: SecurityMonitor,
        audit: AuditLog,
        clock: Clock,
        signer: Signer,
        session_lifetime: int,
        kind: EventKind = EventKind.SIGNIN_MEMBER,
        events: SignInEvents | None = None,
    ) -> None:
        self.directory = directory
        self.security = security
        self.throttle = security.throttle
        self.kind = kind
        self.audit = audit
        self.clock = clock
        self.signer = signer
        self.session_lifetime = session_lifetime
        self.events = events or SignInEvents(clock)

    def _realm(self, env: str) -> str:
        return f"{self.kind}:{env}"

    def _event(
        self, env: str, outcome: Outcome, username: str, ip: str, client_id: str | None, **extra: object
    ) -> None:
        account = self.security.account(self._realm(env), username) if username else None
        self.security.record(
            self.kind,
            outcome,
            env=env,
            address=ip,
            client_id=client_id,
            account=account,
            **extra,
        )

    def _throttled(
        self, env: str, decision: Decision, username: str, ip: str, client_id: str | None
    ) -> Refused:
        account = self.security.account(self._realm(env), username) if username else None
        self.security.mitigated(
            str(self.kind), decision, env=env, address=ip, client_id=client_id, account=account
        )
        self.events.report_sign_in(SignInArea.MEMBER, env, username, SignInOutcome.THROTTLED, ip or None)
        return Refused(throttled_message(decision.retry_after), retry_after=decision.retry_after)

    def with_password(
        self, env: str, username: str, password: str, *, ip: str, client_id: str | None
    ) -> SignedIn[A] | NeedsSecondFactor | Refused:
        realm = self._realm(env)
        decision = self.throttle.check_signin(realm, username, ip)
        if not decision.allowed:
            return self._throttled(env, decision, username, ip, client_id)
        breached = is_breached(password)
        detail = BREACHED if breached else None
        if breached and self.security.under_attack(env, client_id):
            self._failed(env, username, ip, client_id, Outcome.REFUSED, detail)
            return Refused(BREACHED_REFUSED)
        account = None
        if username and password:
            account = self.directory.authenticate(env, username, password)
        if account is None:
            self._failed(env, username, ip, client_id, Outcome.FAILURE, detail)
            return Refused(WRONG_CREDENTIALS)
        if account.has_totp:
            return NeedsSecondFactor(self.signer.dumps("mfa", {"m": account.id, "e": env}))
        self.throttle.signin_succeeded(realm, username, ip)
        self._event(env, Outcome.SUCCESS, username, ip, client_id, status=200, detail=detail)
        return self._signed_in(env, account, client_id, ip)

    def _failed(
        self, env: str, username: str, ip: str, client_id: str | None, outcome: Outcome, detail: str | None
    ) -> None:
        SIGN_IN_FAILURES.labels(env).inc()
        self.throttle.signin_failed(self._realm(env), username, ip)
        self._event(env, outcome, username, ip, client_id, status=401, detail=detail)
        self.audit.record(env, AuditEvent.LOGIN_FAILURE, 401, client_id=client_id)
        self.events.report_sign_in(SignInArea.MEMBER, env, username, SignInOutcome.WRONG_PASSWORD, ip or None)

    def with_second_factor(
        self, env: str, pending: str, code: str, *, ip: str, client_id: str | None
    ) -> SignedIn[A] | Refused:
        data = self.signer.loads("mfa", pending, SECOND_FACTOR_MAX_AGE)
        account = None
        if isinstance(data, dict) and data.get("e") == env:
            account = self.directory.get(env, int(data["m"]))
        if account is None:
            return Refused(SECOND_FACTOR_EXPIRED)
        realm = self._realm(env)
        decision = self.throttle.check_signin(realm, account.username, ip)
        if not decision.allowed:
            refused = self._throttled(env, decision, account.username, ip, client_id)
            return Refused(refused.message, retry_second_factor=True, retry_after=refused.retry_after)
        if not self.directory.verify_totp(account, code):
            SIGN_IN_FAILURES.labels(env).inc()
            self.throttle.signin_failed(realm, account.username, ip)
            self._event(
                env, Outcome.FAILURE, account.username, ip, client_id, status=401, detail=SECOND_FACTOR
            )
            self.audit.record(env, AuditEvent.MFA_FAILURE, 401, client_id=client_id, member_id=account.id)
            self.events.report_sign_in(
                SignInArea.MEMBER,
                env,
                account.username,
                SignInOutcome.WRONG_SECOND_FACTOR,
                ip or None,
                account_id=account.id,
            )
            return Refused(WRONG_CODE, retry_second_factor=True)
        self.throttle.signin_succeeded(realm, account.username, ip)
        self._event(env, Outcome.SUCCESS, account.username, ip, client_id, status=200, detail=SECOND_FACTOR)
        return self._signed_in(env, account, client_id, ip)

    def session(self, env: str, cookie: str | None) -> tuple[A, int] | None:
        """The signed-in account of a session cookie of `env`, and when it signed in; None when none."""
        data = self.signer.loads("session", cookie, self.session_lifetime) if cookie else None
        if not isinstance(data, dict) or data.get("e") != env:
            return None
        account = self.directory.get(env, int(data["m"]))
        if account is None or data.get("g", 0) != account.session_generation:
            return None  # signed out (everywhere) or a new password since
        return account, int(data["t"])

    def _signed_in(self, env: str, account: A, client_id: str | None, ip: str) -> SignedIn[A]:
        now = self.clock.now()
        self.audit.record(env, AuditEvent.LOGIN_SUCCESS, 200, client_id=client_id, member_id=account.id)
        self.events.report_sign_in(
            SignInArea.MEMBER,
            env,
            account.username,
            SignInOutcome.SUCCEEDED,
            ip or None,
            account_id=account.id,
        )
        claims = {"m": account.id, "e": env, "t": now, "g": account.session_generation}
        session = self.signer.dumps("session", claims)
        return SignedIn(account, session, now)
