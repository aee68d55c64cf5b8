"""Member accounts: a login linked to one Patient per environment; argon2id passwords; optional TOTP.

Sign-in answers the same way whether the username is unknown, the password is wrong or the account is
disabled (no account enumeration), and spends the same argon2 work in each case.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Engine, select, update

from openpayer.clock import Clock
from openpayer.db import write_transaction
from openpayer.members.models import member_account
from openpayer.oauth.keys import Sealer

_HASHER = PasswordHasher()  # argon2id, RFC 9106 second recommended parameters
_DUMMY_HASH = _HASHER.hash("openpayer-no-such-member")
MIN_PASSWORD = 8


@dataclass(frozen=True, slots=True)
class Member:
    id: int
    env: str
    username: str
    patient_id: str
    has_totp: bool


class MemberStore:
    def __init__(self, engine: Engine, clock: Clock, sealer: Sealer) -> None:
        self.engine = engine
        self.clock = clock
        self.sealer = sealer

    def create(self, env: str, username: str, password: str, patient_id: str) -> Member:
        if len(password) < MIN_PASSWORD:
            raise ValueError(
                f"the password is too short: {len(password)} characters, and passwords have at least "
                f"{MIN_PASSWORD}"
            )
        with write_transaction(self.engine) as conn:
            member_id = conn.execute(
                member_account.insert().values(
                    env=env,
                    username=username,
                    password_hash=_HASHER.hash(password),
                    patient_id=patient_id,
                    disabled=False,
                    created_at=self.clock.now(),
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        return Member(int(member_id), env, username, patient_id, False)

    def enroll_totp(self, env: str, username: str) -> str:
        """Enrol a TOTP second factor (RFC 6238); returns the base32 secret to put in an authenticator."""
        secret = pyotp.random_base32()
        sealed = self.sealer.seal(secret.encode(), f"totp:{env}:{username}".encode()).hex()
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
        return Member(row.id, row.env, row.username, row.patient_id, row.totp_secret is not None)

    def authenticate(self, env: str, username: str, password: str) -> Member | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(member_account).where(
                    member_account.c.env == env, member_account.c.username == username
                )
            ).first()
        try:
            _HASHER.verify(row.password_hash if row is not None else _DUMMY_HASH, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if row is None or row.disabled:
            return None
        if _HASHER.check_needs_rehash(row.password_hash):
            with write_transaction(self.engine) as conn:
                conn.execute(
                    update(member_account)
                    .where(member_account.c.id == row.id)
                    .values(password_hash=_HASHER.hash(password))
                )
        return Member(row.id, row.env, row.username, row.patient_id, row.totp_secret is not None)

    def verify_totp(self, member: Member, code: str) -> bool:
        with self.engine.connect() as conn:
            sealed = conn.execute(
                select(member_account.c.totp_secret).where(member_account.c.id == member.id)
            ).scalar_one_or_none()
        if not sealed:
            return False
        secret = self.sealer.unseal(bytes.fromhex(sealed), f"totp:{member.env}:{member.username}".encode())
        return pyotp.TOTP(secret.decode()).verify(code.strip(), for_time=self.clock.now(), valid_window=1)
