"""Account recovery for developers and staff: password reset by an e-mailed link, and a fresh verification
link for an address not yet verified.

- A reset link carries a random 256-bit token; only its SHA-256 digest is stored (`account_password_reset`).
  It works once, for `RESET_LIFETIME` seconds, and asking again replaces any unused link of the account.
- The new password passes the same NIST SP 800-63B rules as at sign-up (`passwords.check`: length, the
  common and breached list, context words). Setting it ends every session of the account (its session
  generation rises) and marks the address verified (the link proved it).
- Requests are throttled per address and per client address (`RECOVERY_ACCOUNT`, `RECOVERY_IP`), and the
  pages answer the same whether or not an account uses the address: these functions return None for an
  unknown address, a disabled account or a throttled request alike.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import Engine, delete, select, update

from openpayer.accounts.models import account_password_reset, portal_account
from openpayer.accounts.people import PeopleService, Person, chosen_password_hash
from openpayer.clock import Clock
from openpayer.db import write_transaction
from openpayer.security.throttle import FailureCounter, Limit, RateLimit
from openpayer.web.refusals import Invalid

RESET_LIFETIME = 3600
RECOVERY_ACCOUNT = Limit("recovery:account", failures=3, window=3600.0)
RECOVERY_IP = Limit("recovery:ip", failures=30, window=3600.0)
LINK_DOES_NOT_WORK = "This link does not work: it is invalid, already used, or older than an hour."


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Recovery:
    def __init__(self, engine: Engine, clock: Clock, people: PeopleService, counter: FailureCounter) -> None:
        self.engine = engine
        self.clock = clock
        self.people = people
        self.limit = RateLimit(counter, clock, per_key=RECOVERY_ACCOUNT, per_ip=RECOVERY_IP)

    # ---- password reset ----------------------------------------------------------------------------
    def request_reset(self, address: str, client: str | None) -> tuple[Person, str] | None:
        """A new reset token for the account of `address` (to e-mail, never to show), or None."""
        name = address.strip().lower()
        if not self.limit.hit(f"reset:{name}", client or ""):
            return None
        person = self.people.by_email(name) if name else None
        if person is None or person.disabled:
            return None
        token = secrets.token_urlsafe(32)
        now = self.clock.now()
        with write_transaction(self.engine) as conn:
            conn.execute(
                delete(account_password_reset).where(
                    account_password_reset.c.account_id == person.id,
                    account_password_reset.c.used_at.is_(None),
                )
            )
            conn.execute(
                account_password_reset.insert().values(
                    account_id=person.id,
                    token_digest=_digest(token),
                    created_at=now,
                    expires_at=now + RESET_LIFETIME,
                )
            )
        return person, token

    def reset_for(self, token: str) -> Person | None:
        """The account whose unused, unexpired link this is (the link is not spent by looking)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(account_password_reset).where(account_password_reset.c.token_digest == _digest(token))
            ).first()
        if row is None or row.used_at is not None or row.expires_at <= self.clock.now():
            return None
        person = self.people.get(row.account_id)
        return None if person is None or person.disabled else person

    def reset(self, token: str, password: str) -> Person:
        """Spend the link and set the password; every session of the account ends. `Invalid` otherwise."""
        person = self.reset_for(token)
        if person is None:
            raise Invalid(LINK_DOES_NOT_WORK, "token")
        password_hash = chosen_password_hash(password, person.email)
        now = self.clock.now()
        with write_transaction(self.engine) as conn:
            spent = conn.execute(
                update(account_password_reset)
                .where(
                    account_password_reset.c.token_digest == _digest(token),
                    account_password_reset.c.used_at.is_(None),
                    account_password_reset.c.expires_at > now,
                )
                .values(used_at=now)
            ).rowcount
            if spent != 1:  # spent by a concurrent request
                raise Invalid(LINK_DOES_NOT_WORK, "token")
            conn.execute(
                update(account_password_reset)
                .where(
                    account_password_reset.c.account_id == person.id,
                    account_password_reset.c.used_at.is_(None),
                )
                .values(used_at=now)
            )
            verified = select(portal_account.c.email_verified_at).where(portal_account.c.id == person.id)
            conn.execute(
                update(portal_account)
                .where(portal_account.c.id == person.id)
                .values(
                    password_hash=password_hash,
                    session_generation=portal_account.c.session_generation + 1,
                    email_verified_at=conn.execute(verified).scalar_one() or now,
                )
            )
        changed = self.people.get(person.id)
        assert changed is not None
        return changed

    # ---- verification links ------------------------------------------------------------------------
    def resend_verification(self, address: str, client: str | None) -> Person | None:
        """The unverified account of `address`, when a new link may be sent now; None otherwise."""
        name = address.strip().lower()
        if not self.limit.hit(f"verify:{name}", client or ""):
            return None
        person = self.people.by_email(name) if name else None
        if person is None or person.disabled or person.email_verified:
            return None
        return person
