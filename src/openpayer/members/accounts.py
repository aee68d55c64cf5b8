"""Member accounts: a login linked to one Patient per environment, with an optional TOTP second factor.

The identity machinery (argon2id hashing, TOTP, throttled sign-in, sessions) is `openpayer.accounts`; this
store keeps the member's row. Sign-in answers the same way whether the username is unknown, the password is
wrong or the account is disabled (no account enumeration), and spends the same argon2 work in each case.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from openpayer.accounts import passwords
from openpayer.accounts.totp import TotpFactor
from openpayer.clock import Clock
from openpayer.db import write_transaction
from openpayer.members.models import member_account
from openpayer.security.sealing import Sealer


@dataclass(frozen=True, slots=True)
class Member:
    id: int
    env: str
    username: str
    patient_id: str
    has_totp: bool
    session_generation: int = 0  # a session cookie of another generation has ended


def _owner(env: str, username: str) -> str:
    return f"totp:{env}:{username}"


class MemberStore:
    """The member directory the sign-in flow (`openpayer.accounts.signin`) authenticates against."""

    def __init__(self, engine: Engine, clock: Clock, sealer: Sealer) -> None:
        self.engine = engine
        self.clock = clock
        self.totp = TotpFactor(sealer, clock)

    def create(self, env: str, username: str, password: str, patient_id: str) -> Member:
        return self.create_hashed(env, username, passwords.hash_password(password), patient_id)

    def create_hashed(self, env: str, username: str, password_hash: str, patient_id: str) -> Member:
        """`create` with the password already hashed by `passwords.hash_password` (the sandbox's published
        test logins ship with theirs: `members.sandbox.SANDBOX_HASHES`)."""
        with write_transaction(self.engine) as conn:
            member_id = conn.execute(
                member_account.insert().values(
                    env=env,
                    username=username,
                    password_hash=password_hash,
                    patient_id=patient_id,
                    disabled=False,
                    created_at=self.clock.now(),
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        return Member(int(member_id), env, username, patient_id, False)

    def set_password(self, env: str, member_id: int, password: str) -> None:
        """A new password (a monitoring account's, issued in the portal); the old one stops working."""
        with write_transaction(self.engine) as conn:
            conn.execute(
                update(member_account)
                .where(member_account.c.env == env, member_account.c.id == member_id)
                .values(
                    password_hash=passwords.hash_password(password),
                    session_generation=member_account.c.session_generation + 1,  # sessions end
                )
            )

    def enroll_totp(self, env: str, username: str) -> str:
        """Enrol a TOTP second factor (RFC 6238); returns the base32 secret to put in an authenticator."""
        secret, sealed = self.totp.enroll(_owner(env, username))
        with write_transaction(self.engine) as conn:
            done = conn.execute(
                update(member_account)
                .where(member_account.c.env == env, member_account.c.username == username)
                .values(totp_secret=sealed)
            ).rowcount
        if not done:
            raise LookupError(f"no member {username!r} in {env}")
        return secret

    def get(self, env: str, member_id: int) -> Member | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(member_account).where(member_account.c.env == env, member_account.c.id == member_id)
            ).first()
        if row is None or row.disabled:
            return None
        return _member(row)

    def disable_in(self, conn: Connection, env: str, member_id: int) -> None:
        """In the caller's transaction: the account can no longer sign in, and its sessions end."""
        conn.execute(
            update(member_account)
            .where(member_account.c.env == env, member_account.c.id == member_id)
            .values(disabled=True, session_generation=member_account.c.session_generation + 1)
        )

    def end_sessions(self, env: str, member_id: int) -> None:
        """Sign the member out everywhere: every session cookie issued so far stops working."""
        with write_transaction(self.engine) as conn:
            conn.execute(
                update(member_account)
                .where(member_account.c.env == env, member_account.c.id == member_id)
                .values(session_generation=member_account.c.session_generation + 1)
            )

    def authenticate(self, env: str, username: str, password: str) -> Member | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(member_account).where(
                    member_account.c.env == env, member_account.c.username == username
                )
            ).first()
        if not passwords.verify(row.password_hash if row is not None else None, password):
            return None
        if row is None or row.disabled:
            return None
        if passwords.needs_rehash(row.password_hash):
            with write_transaction(self.engine) as conn:
                conn.execute(
                    update(member_account)
                    .where(member_account.c.id == row.id)
                    .values(password_hash=passwords.hash_password(password))
                )
        return _member(row)

    def verify_totp(self, member: Member, code: str) -> bool:
        with self.engine.connect() as conn:
            sealed = conn.execute(
                select(member_account.c.totp_secret).where(member_account.c.id == member.id)
            ).scalar_one_or_none()
        return self.totp.verify(sealed, _owner(member.env, member.username), code)


def _member(row: Any) -> Member:
    return Member(
        row.id, row.env, row.username, row.patient_id, row.totp_secret is not None, row.session_generation
    )
