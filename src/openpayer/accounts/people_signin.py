"""Sign-in for developers (`/portal/`) and staff (`/admin/`): password, then the second factor, throttled
per account and per client address (`openpayer.security.throttle`, keyed by area) and reported to
`SignInEvents`, like the members' sign-in (`signin.py`).

The pages decide what an area asks beyond the password (a verified address, an active staff role) and call
`refused` when it is missing, `signed_in` once the session is complete. A lockout answers like a wrong
password, so it does not reveal that the account exists.
"""

from __future__ import annotations

from openpayer.accounts.events import SignInArea, SignInEvents, SignInOutcome
from openpayer.accounts.people import PeopleService, Person
from openpayer.security.throttle import SignInThrottle


class PeopleSignIn:
    def __init__(self, people: PeopleService, throttle: SignInThrottle, events: SignInEvents) -> None:
        self.people = people
        self.throttle = throttle
        self.events = events

    def with_password(self, area: SignInArea, typed: str, password: str, client: str | None) -> Person | None:
        """The account when the password is right and the area's throttle allows a try; None otherwise."""
        name, ip = typed.strip().lower(), client or ""
        person = None
        allowed = self.throttle.allowed(area, name, ip)
        if name and password and allowed:
            person = self.people.authenticate(name, password)
        if person is None:
            self.throttle.failed(area, name, ip)
            outcome = SignInOutcome.WRONG_PASSWORD if allowed else SignInOutcome.THROTTLED
            self.events.report_sign_in(area, None, name, outcome, client)
        return person

    def second_factor(self, area: SignInArea, person: Person, code: str, client: str | None) -> bool:
        ip = client or ""
        allowed = self.throttle.allowed(area, person.email, ip)
        if allowed and self.people.verify_totp(person, code):
            return True
        self.throttle.failed(area, person.email, ip)
        outcome = SignInOutcome.WRONG_SECOND_FACTOR if allowed else SignInOutcome.THROTTLED
        self.events.report_sign_in(area, None, person.email, outcome, client, account_id=person.id)
        return False

    def refused(self, area: SignInArea, person: Person, client: str | None, *, failure: bool) -> None:
        """The right password, but the account may not sign in here; `failure` counts it for the throttle."""
        if failure:
            self.throttle.failed(area, person.email, client or "")
        self.events.report_sign_in(
            area, None, person.email, SignInOutcome.REFUSED, client, account_id=person.id
        )

    def signed_in(self, area: SignInArea, person: Person, client: str | None) -> None:
        self.throttle.succeeded(area, person.email)
        self.events.report_sign_in(
            area, None, person.email, SignInOutcome.SUCCEEDED, client, account_id=person.id
        )
