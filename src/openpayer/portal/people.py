"""The people of the developer program: developer and staff accounts (e-mail, password, TOTP).

Members of the health plan sign in elsewhere (`/{env}/auth`); these accounts sign in to `/portal/` and
`/admin/`. A staff member is an account with a row in `portal_staff` (staff.py).

- Passwords follow NIST SP 800-63B (`passwords.py`) and are stored as argon2id hashes. Sign-in spends the same
  argon2 work whether the address is unknown, the password wrong or the account disabled,
  and answers the same.
- The e-mail address is verified by a signed link (`verification_token`, valid `VERIFY_LIFETIME`); an
  unverified account may sign in only to verify it, and invitations need the verified address.
- TOTP (RFC 6238, 30 s, 6 digits, one step of drift either way): enrolment keeps the secret only once a code
  from the person's authenticator proves it, sealed (AES-GCM bound to the account).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError

from openpayer.db import write_transaction
from openpayer.portal import passwords, validation
from openpayer.portal.errors import Conflict, Invalid
from openpayer.portal.interfaces import Clock, Sealer
from openpayer.portal.models import portal_account

VERIFY_LIFETIME = 24 * 3600
TOTP_ISSUER = "OpenPayer"
_HASHER = PasswordHasher()  # argon2id, RFC 9106's second recommended parameters
_DUMMY_HASH = _HASHER.hash("openpayer-no-such-account")


@dataclass(frozen=True, slots=True)
class Person:
    id: int
    email: str
    email_verified: bool
    has_totp: bool
    disabled: bool


class PeopleService:
    def __init__(self, engine: Engine, clock: Clock, sealer: Sealer, secret_key: str) -> None:
        self.engine = engine
        self.clock = clock
        self.sealer = sealer
        self._links = URLSafeTimedSerializer(secret_key, salt="openpayer.portal.verify-email")

    def create(self, email: str, password: str) -> Person:
        address = validation.email(email, "email").lower()
        try:
            passwords.check(password, email=address)
        except passwords.PasswordProblem as exc:
            raise Invalid(str(exc), "password") from exc
        try:
            with write_transaction(self.engine) as conn:
                account_id = conn.execute(
                    portal_account.insert()
                    .values(
                        email=address,
                        password_hash=_HASHER.hash(passwords.normalise(password)),
                        disabled=False,
                        created_at=self.clock.now(),
                    )
                    .returning(portal_account.c.id)
                ).scalar_one()
        except IntegrityError as exc:
            raise Conflict("an account with this e-mail address exists; sign in instead") from exc
        return Person(int(account_id), address, False, False, False)

    def get(self, account_id: int) -> Person | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(portal_account).where(portal_account.c.id == account_id)).first()
        return _person(row) if row is not None else None

    def by_email(self, email: str) -> Person | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(portal_account).where(portal_account.c.email == email.strip().lower())
            ).first()
        return _person(row) if row is not None else None

    def authenticate(self, email: str, password: str) -> Person | None:
        """The account, when the password matches and it is not disabled; None otherwise (same work)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(portal_account).where(portal_account.c.email == email.strip().lower())
            ).first()
        try:
            _HASHER.verify(
                row.password_hash if row is not None else _DUMMY_HASH, passwords.normalise(password)
            )
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if row is None or row.disabled:
            return None
        values: dict[str, Any] = {"last_sign_in_at": self.clock.now()}
        if _HASHER.check_needs_rehash(row.password_hash):
            values["password_hash"] = _HASHER.hash(passwords.normalise(password))
        with write_transaction(self.engine) as conn:
            conn.execute(update(portal_account).where(portal_account.c.id == row.id).values(**values))
        return _person(row)

    def set_disabled(self, account_id: int, disabled: bool) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(
                update(portal_account).where(portal_account.c.id == account_id).values(disabled=disabled)
            )

    # ---- e-mail verification -----------------------------------------------------------------------
    def verification_token(self, person: Person) -> str:
        return self._links.dumps({"a": person.id, "e": person.email})

    def verify_email(self, token: str) -> Person | None:
        """Mark the address verified when the signed link is genuine, fresh and still the account's."""
        try:
            data = self._links.loads(token, max_age=VERIFY_LIFETIME)
        except BadSignature:
            return None
        if not isinstance(data, dict):
            return None
        person = self.get(int(data.get("a", 0)))
        if person is None or person.email != data.get("e"):
            return None
        if not person.email_verified:
            with write_transaction(self.engine) as conn:
                conn.execute(
                    update(portal_account)
                    .where(portal_account.c.id == person.id)
                    .values(email_verified_at=self.clock.now())
                )
        return self.get(person.id)

    # ---- TOTP (RFC 6238) ---------------------------------------------------------------------------
    @staticmethod
    def new_totp_secret() -> str:
        return pyotp.random_base32()

    @staticmethod
    def provisioning_uri(person: Person, secret: str) -> str:
        return pyotp.TOTP(secret).provisioning_uri(name=person.email, issuer_name=TOTP_ISSUER)

    def confirm_totp(self, person: Person, secret: str, code: str) -> bool:
        """Enrol `secret` once the person proves their authenticator holds it (a current code)."""
        if not pyotp.TOTP(secret).verify(code.strip(), for_time=self.clock.now(), valid_window=1):
            return False
        sealed = self.sealer.seal(secret.encode(), _totp_aad(person.id)).hex()
        with write_transaction(self.engine) as conn:
            conn.execute(
                update(portal_account).where(portal_account.c.id == person.id).values(totp_secret=sealed)
            )
        return True

    def verify_totp(self, person: Person, code: str) -> bool:
        with self.engine.connect() as conn:
            sealed = conn.execute(
                select(portal_account.c.totp_secret).where(portal_account.c.id == person.id)
            ).scalar_one_or_none()
        if not sealed:
            return False
        secret = self.sealer.unseal(bytes.fromhex(sealed), _totp_aad(person.id)).decode()
        return pyotp.TOTP(secret).verify(code.strip(), for_time=self.clock.now(), valid_window=1)

    @staticmethod
    def temporary_password() -> str:
        """A password for an account created from the command line, shown once (24 random characters)."""
        return secrets.token_urlsafe(18)


def _totp_aad(account_id: int) -> bytes:
    return f"portal-totp:{account_id}".encode()


def _person(row: Any) -> Person:
    return Person(
        row.id, row.email, row.email_verified_at is not None, row.totp_secret is not None, row.disabled
    )
