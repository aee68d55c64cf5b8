"""Sign-in: password, then the second factor when one is enrolled, then a session; throttled and audited.

The steps are pages of whatever flow needs a signed-in account (today the OAuth authorize endpoint for
members; the developer portal and the staff console next): the flow renders the forms and calls
`with_password`, `with_second_factor` and `session` here, which decide.

- Failures are throttled per account and per client address (`openpayer.security.throttle`); a lockout
  answers like a wrong password, so it does not reveal that the account exists.
- Every failure and success is in the audit log (never the username, password or code), and reported to
  `SignInEvents.report_sign_in` (events.py), as the developers' and staff's sign-in is.
- A pending second factor travels in a signed field valid for `SECOND_FACTOR_MAX_AGE` seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from openpayer.accounts.events import SignInArea, SignInEvents, SignInOutcome
from openpayer.accounts.sessions import Signer
from openpayer.clock import Clock
from openpayer.security.audit import AuditEvent, AuditLog
from openpayer.security.throttle import SignInThrottle

SECOND_FACTOR_MAX_AGE = 300
WRONG_CREDENTIALS = "The username or password is incorrect, or the account cannot sign in."
SECOND_FACTOR_EXPIRED = "Your sign-in took too long. Please sign in again."
WRONG_CODE = "That code is not valid. Try again."


class Account(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def username(self) -> str: ...

    @property
    def has_totp(self) -> bool: ...


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


class SignIn(Generic[A]):
    def __init__(
        self,
        directory: Directory[A],
        *,
        throttle: SignInThrottle,
        audit: AuditLog,
        clock: Clock,
        signer: Signer,
        session_lifetime: int,
        events: SignInEvents | None = None,
    ) -> None:
        self.directory = directory
        self.throttle = throttle
        self.audit = audit
        self.clock = clock
        self.signer = signer
        self.session_lifetime = session_lifetime
        self.events = events or SignInEvents(clock)

    def with_password(
        self, env: str, username: str, password: str, *, ip: str, client_id: str | None
    ) -> SignedIn[A] | NeedsSecondFactor | Refused:
        account = None
        allowed = self.throttle.allowed(env, username, ip)
        if username and password and allowed:
            account = self.directory.authenticate(env, username, password)
        if account is None:
            self.throttle.failed(env, username, ip)
            self.audit.record(env, AuditEvent.LOGIN_FAILURE, 401, client_id=client_id)
            outcome = SignInOutcome.WRONG_PASSWORD if allowed else SignInOutcome.THROTTLED
            self.events.report_sign_in(SignInArea.MEMBER, env, username, outcome, ip or None)
            return Refused(WRONG_CREDENTIALS)
        if account.has_totp:
            return NeedsSecondFactor(self.signer.dumps("mfa", {"m": account.id, "e": env}))
        self.throttle.succeeded(env, username)
        return self._signed_in(env, account, client_id, ip)

    def with_second_factor(
        self, env: str, pending: str, code: str, *, ip: str, client_id: str | None
    ) -> SignedIn[A] | Refused:
        data = self.signer.loads("mfa", pending, SECOND_FACTOR_MAX_AGE)
        account = None
        if isinstance(data, dict) and data.get("e") == env:
            account = self.directory.get(env, int(data["m"]))
        if account is None:
            return Refused(SECOND_FACTOR_EXPIRED)
        allowed = self.throttle.allowed(env, account.username, ip)
        if not allowed or not self.directory.verify_totp(account, code):
            self.throttle.failed(env, account.username, ip)
            self.audit.record(env, AuditEvent.MFA_FAILURE, 401, client_id=client_id, member_id=account.id)
            outcome = SignInOutcome.WRONG_SECOND_FACTOR if allowed else SignInOutcome.THROTTLED
            self.events.report_sign_in(
                SignInArea.MEMBER, env, account.username, outcome, ip or None, account_id=account.id
            )
            return Refused(WRONG_CODE, retry_second_factor=True)
        self.throttle.succeeded(env, account.username)
        return self._signed_in(env, account, client_id, ip)

    def session(self, env: str, cookie: str | None) -> tuple[A, int] | None:
        """The signed-in account of a session cookie of `env`, and when it signed in; None when none."""
        data = self.signer.loads("session", cookie, self.session_lifetime) if cookie else None
        if not isinstance(data, dict) or data.get("e") != env:
            return None
        account = self.directory.get(env, int(data["m"]))
        return None if account is None else (account, int(data["t"]))

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
        session = self.signer.dumps("session", {"m": account.id, "e": env, "t": now})
        return SignedIn(account, session, now)
