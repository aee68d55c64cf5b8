"""Sign-in events: the one place every sign-in path reports to (members at `/{env}/auth/`, developers at
`/portal/`, staff at `/admin/`), so that security monitoring hooks in once instead of in three flows.

Every attempt that ends is reported through `SignInEvents.report_sign_in(area, env, account, outcome,
address)`; listeners (`SignInEvents.listeners`) receive a `SignInEvent`. `account` is the sign-in name as
typed (a member's username, a developer's or staff member's e-mail address, lower-cased), because a failed
attempt has no account to name: a listener must not log or store it in clear (digest it). A listener that
raises is logged and skipped: monitoring never breaks a sign-in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from openpayer.clock import Clock

log = logging.getLogger(__name__)


class SignInArea(StrEnum):
    MEMBER = "member"  # /{env}/auth/ (SMART sign-in); env is the environment
    PORTAL = "portal"  # /portal/ developers; env is None
    ADMIN = "admin"  # /admin/ staff; env is None


class SignInOutcome(StrEnum):
    SUCCEEDED = "succeeded"  # signed in, second factor included when the account has one
    WRONG_PASSWORD = "wrong_password"  # noqa: S105 - unknown name, wrong password or disabled account
    WRONG_SECOND_FACTOR = "wrong_second_factor"
    THROTTLED = "throttled"  # refused without checking: too many recent failures
    REFUSED = "refused"  # the right password, but the account may not sign in here (unverified, not staff)


@dataclass(frozen=True, slots=True)
class SignInEvent:
    area: SignInArea
    env: str | None
    account: str  # the sign-in name as typed, lower-cased (never log it in clear)
    outcome: SignInOutcome
    address: str | None  # the client address (after the trusted-proxy rules)
    at: int  # seconds since the epoch, the platform clock
    account_id: int | None = None  # when the attempt reached a known account


Listener = Callable[[SignInEvent], None]


class SignInEvents:
    """Built once by the composition root and handed to every sign-in flow."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.listeners: list[Listener] = []

    def report_sign_in(
        self,
        area: SignInArea | str,
        env: str | None,
        account: str,
        outcome: SignInOutcome,
        address: str | None,
        *,
        account_id: int | None = None,
    ) -> SignInEvent:
        """Tell every listener how a sign-in attempt ended; returns the event."""
        event = SignInEvent(
            SignInArea(area), env, account.strip().lower(), outcome, address, self.clock.now(), account_id
        )
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:  # a monitor's bug must not lock people out
                log.exception("a sign-in listener failed")
        return event
