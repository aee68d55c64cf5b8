"""Sign-in for developers (`/portal/`) and staff (`/admin/`): password, then the second factor, throttled
per (account, address) and per address with growing delays (`openpayer.security.throttle`, keyed by area),
recorded in the security event stream (`signin:developer`, `signin:staff`: the account as a keyed hash) and
reported to `SignInEvents`, like the members' sign-in (`signin.py`).

The pages decide what an area asks beyond the password (a verified address, an active staff role) and call
`refused` when it is missing, `signed_in` once the session is complete. A throttled attempt comes back as
`Throttled` (the page answers 429 with `Retry-After`) without its password being checked; it says nothing
about whether the account exists. Changing a password, or replacing or removing the authenticator, while
signed in confirms the current password here (`confirm_password`; the authenticator's code through
`second_factor`): the same argon2 work, the same counters and the same failure reports as a sign-in.

A recovery code (`recovery_code`) stands in for the authenticator's code at the second step: the same
throttle counters (a wrong recovery code and a wrong TOTP code count alike), the same failure report
(`WRONG_SECOND_FACTOR`), and security events whose detail says a recovery code was tried (`recovery-code`).
"""

from __future__ import annotations

from dataclasses import dataclass

from openpayer.accounts.events import SignInArea, SignInEvents, SignInOutcome
from openpayer.accounts.people import PeopleService, Person
from openpayer.security.breached import is_breached
from openpayer.security.events import BREACHED, RECOVERY_CODE, SECOND_FACTOR, EventKind, Outcome
from openpayer.security.monitor import SecurityMonitor

KINDS = {SignInArea.PORTAL: EventKind.SIGNIN_DEVELOPER, SignInArea.ADMIN: EventKind.SIGNIN_STAFF}


@dataclass(frozen=True, slots=True)
class Throttled:
    retry_after: int  # seconds, for `Retry-After`

    @property
    def message(self) -> str:
        wait = self.retry_after
        text = f"{wait} seconds" if wait < 120 else f"{(wait + 59) // 60} minutes"
        return f"Too many failed sign-in attempts from your network. Try again in {text}."


@dataclass(frozen=True, slots=True)
class RecoveryCodeUsed:
    remaining: int  # unused codes left after this one


class PeopleSignIn:
    def __init__(self, people: PeopleService, security: SecurityMonitor, events: SignInEvents) -> None:
        self.people = people
        self.security = security
        self.throttle = security.throttle
        self.events = events

    def _record(
        self, area: SignInArea, outcome: Outcome, name: str, client: str | None, detail: str | None = None
    ) -> None:
        kind = KINDS.get(area, EventKind.SIGNIN_DEVELOPER)
        account = self.security.account(str(kind), name) if name else None
        self.security.record(kind, outcome, address=client, account=account, detail=detail)

    def _check(self, area: SignInArea, name: str, client: str | None) -> Throttled | None:
        decision = self.throttle.check_signin(str(area), name, client or "")
        if decision.allowed:
            return None
        kind = KINDS.get(area, EventKind.SIGNIN_DEVELOPER)
        account = self.security.account(str(kind), name) if name else None
        self.security.mitigated(str(kind), decision, address=client, account=account)
        self.events.report_sign_in(area, None, name, SignInOutcome.THROTTLED, client)
        return Throttled(decision.retry_after)

    def with_password(
        self, area: SignInArea, typed: str, password: str, client: str | None
    ) -> Person | Throttled | None:
        """The account when the password is right; `Throttled` when the address must wait; else None."""
        name = typed.strip().lower()
        throttled = self._check(area, name, client)
        if throttled is not None:
            return throttled
        detail = BREACHED if is_breached(password) else None
        person = self.people.authenticate(name, password) if name and password else None
        if person is None:
            self.throttle.signin_failed(str(area), name, client or "")
            self._record(area, Outcome.FAILURE, name, client, detail)
            self.events.report_sign_in(area, None, name, SignInOutcome.WRONG_PASSWORD, client)
        return person

    def confirm_password(
        self, area: SignInArea, person: Person, password: str, client: str | None
    ) -> bool | Throttled:
        """A signed-in person's current password (to change it), throttled and counted like a sign-in's, so a
        stolen session is no unlimited password-guessing oracle. Only failures are reported: none signs in."""
        throttled = self._check(area, person.email, client)
        if throttled is not None:
            return throttled
        if password and self.people.password_matches(person, password):
            return True
        detail = BREACHED if is_breached(password) else None
        self.throttle.signin_failed(str(area), person.email, client or "")
        self._record(area, Outcome.FAILURE, person.email, client, detail)
        self.events.report_sign_in(
            area, None, person.email, SignInOutcome.WRONG_PASSWORD, client, account_id=person.id
        )
        return False

    def second_factor(
        self, area: SignInArea, person: Person, code: str, client: str | None
    ) -> bool | Throttled:
        throttled = self._check(area, person.email, client)
        if throttled is not None:
            return throttled
        if self.people.verify_totp(person, code):
            return True
        self.throttle.signin_failed(str(area), person.email, client or "")
        self._record(area, Outcome.FAILURE, person.email, client, SECOND_FACTOR)
        self.events.report_sign_in(
            area, None, person.email, SignInOutcome.WRONG_SECOND_FACTOR, client, account_id=person.id
        )
        return False

    def recovery_code(
        self, area: SignInArea, person: Person, code: str, client: str | None
    ) -> RecoveryCodeUsed | Throttled | None:
        """A recovery code in place of the authenticator's code: spent (at most once, even under concurrent
        requests) when it is one of the account's unused codes; throttled and reported like a wrong TOTP
        code otherwise. The caller completes the sign-in (`signed_in(..., detail=RECOVERY_CODE)`)."""
        throttled = self._check(area, person.email, client)
        if throttled is not None:
            return throttled
        remaining = self.people.recovery_codes.use(person.id, code) if code.strip() else None
        if remaining is not None:
            return RecoveryCodeUsed(remaining)
        self.throttle.signin_failed(str(area), person.email, client or "")
        self._record(area, Outcome.FAILURE, person.email, client, RECOVERY_CODE)
        self.events.report_sign_in(
            area, None, person.email, SignInOutcome.WRONG_SECOND_FACTOR, client, account_id=person.id
        )
        return None

    def refused(self, area: SignInArea, person: Person, client: str | None, *, failure: bool) -> None:
        """The right password, but the account may not sign in here; `failure` counts it for the throttle."""
        if failure:
            self.throttle.signin_failed(str(area), person.email, client or "")
        self._record(area, Outcome.REFUSED, person.email, client)
        self.events.report_sign_in(
            area, None, person.email, SignInOutcome.REFUSED, client, account_id=person.id
        )

    def signed_in(
        self, area: SignInArea, person: Person, client: str | None, *, detail: str | None = None
    ) -> None:
        """The sign-in is complete; `detail` is `RECOVERY_CODE` when a recovery code stood in for TOTP."""
        self.throttle.signin_succeeded(str(area), person.email, client or "")
        self._record(area, Outcome.SUCCESS, person.email, client, detail)
        self.events.report_sign_in(
            area, None, person.email, SignInOutcome.SUCCEEDED, client, account_id=person.id
        )
