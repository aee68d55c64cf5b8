"""The people of the developer program: developer and staff accounts (e-mail, password, TOTP).

Members of the health plan sign in elsewhere (`/{env}/auth`); these accounts sign in to `/portal/` and
`/admin/`. A staff member is an account with a row in `portal_staff` (openpayer.portal.staff).

- Passwords follow NIST SP 800-63B (`passwords.check`) and are stored as argon2id hashes (`passwords`, the
  one hasher). Sign-in spends the same argon2 work whether the address is unknown, the password wrong or the
  account disabled, and answers the same.
- The e-mail address is verified by a signed link (`verification_token`, valid `VERIFY_LIFETIME`); an
  unverified account may sign in only to verify it, and invitations need the verified address.
- TOTP (`totp.TotpFactor`): enrolment keeps the secret only once a code from the person's authenticator proves
  it, sealed (AES-GCM bound to the account); so does a replacement, which also ends the other sessions.
- Recovery codes (`recovery_codes.RecoveryCodes`): enrolling or replacing the factor makes a new set in the
  same transaction (returned to be shown once); turning the factor off deletes the set.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.exc import IntegrityError

from openpayer.accounts import passwords
from openpayer.accounts.models import portal_account
from openpayer.accounts.recovery_codes import RecoveryCodes
from openpayer.accounts.sessions import Signer
from openpayer.accounts.totp import TotpFactor
from openpayer.clock import Clock
from openpayer.db import write_transaction
from openpayer.security.sealing import Sealer
from openpayer.web.refusals import Conflict, Invalid, email

VERIFY_LIFETIME = 24 * 3600


@dataclass(frozen=True, slots=True)
class Person:
    id: int
    email: str
    email_verified: bool
    has_totp: bool
    disabled: bool
    session_generation: int = 0  # a session cookie of another generation has ended


class PeopleService:
    def __init__(self, engine: Engine, clock: Clock, sealer: Sealer, secret_key: str) -> None:
        self.engine = engine
        self.clock = clock
        self.totp = TotpFactor(sealer, clock)
        self.recovery_codes = RecoveryCodes(engine, clock, secret_key)
        self._links = Signer(secret_key)

    def create(self, address: str, password: str) -> Person:
        address = email(address, "email").lower()
        password_hash = chosen_password_hash(password, address)
        try:
            with write_transaction(self.engine) as conn:
                account_id = conn.execute(
                    portal_account.insert()
                    .values(
                        email=address,
                        password_hash=password_hash,
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

    def by_email(self, address: str) -> Person | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(portal_account).where(portal_account.c.email == address.strip().lower())
            ).first()
        return _person(row) if row is not None else None

    def authenticate(self, address: str, password: str) -> Person | None:
        """The account, when the password matches and it is not disabled; None otherwise (same work)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(portal_account).where(portal_account.c.email == address.strip().lower())
            ).first()
        typed = passwords.normalise(password)
        if not passwords.verify(row.password_hash if row is not None else None, typed):
            return None
        if row is None or row.disabled:
            return None
        values: dict[str, Any] = {"last_sign_in_at": self.clock.now()}
        if passwords.needs_rehash(row.password_hash):
            values["password_hash"] = passwords.hash_password(typed)
        with write_transaction(self.engine) as conn:
            conn.execute(update(portal_account).where(portal_account.c.id == row.id).values(**values))
        return _person(row)

    def password_matches(self, person: Person, password: str) -> bool:
        """Re-authentication of a signed-in account (changing its password): the sign-in's argon2 work."""
        with self.engine.connect() as conn:
            stored = conn.execute(
                select(portal_account.c.password_hash).where(portal_account.c.id == person.id)
            ).scalar_one_or_none()
        return passwords.verify(stored, passwords.normalise(password))

    def change_password(self, person: Person, password: str) -> Person:
        """Set a new password the person chose (sign-up's rules, else `Invalid`) and end every session of the
        account by raising its generation; the caller re-issues the one session that made the change."""
        password_hash = chosen_password_hash(password, person.email)
        with write_transaction(self.engine) as conn:
            row = conn.execute(
                update(portal_account)
                .where(portal_account.c.id == person.id)
                .values(
                    password_hash=password_hash,
                    session_generation=portal_account.c.session_generation + 1,
                )
                .returning(*portal_account.c)
            ).one()
        return _person(row)

    def end_sessions(self, account_id: int) -> None:
        """End every session of the account, everywhere ("sign out everywhere"; a password reset)."""
        with write_transaction(self.engine) as conn:
            conn.execute(
                update(portal_account)
                .where(portal_account.c.id == account_id)
                .values(session_generation=portal_account.c.session_generation + 1)
            )

    def set_disabled(self, account_id: int, disabled: bool) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(
                update(portal_account).where(portal_account.c.id == account_id).values(disabled=disabled)
            )

    # ---- for the domains above, in their own transaction ------------------------------------------
    def people_in(self, conn: Connection, account_ids: Iterable[int]) -> list[Person]:
        """The accounts with these ids that exist (the inactivity policy's recipients)."""
        ids = list(account_ids)
        if not ids:
            return []
        rows = conn.execute(select(portal_account).where(portal_account.c.id.in_(ids))).all()
        return [_person(row) for row in rows]

    def delete_in(self, conn: Connection, account_ids: Iterable[int]) -> None:
        """Delete accounts: an organization removed for inactivity "restarts at sign-up" (docs/policy.md)."""
        ids = list(account_ids)
        if ids:
            conn.execute(portal_account.delete().where(portal_account.c.id.in_(ids)))

    # ---- e-mail verification -----------------------------------------------------------------------
    def verification_token(self, person: Person) -> str:
        return self._links.dumps("portal.verify-email", {"a": person.id, "e": person.email})

    def verify_email(self, token: str) -> Person | None:
        """Mark the address verified when the signed link is genuine, fresh and still the account's."""
        data = self._links.loads("portal.verify-email", token, VERIFY_LIFETIME)
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
    def new_totp_secret(self) -> str:
        return self.totp.new_secret()

    def provisioning_uri(self, person: Person, secret: str) -> str:
        return self.totp.provisioning_uri(person.email, secret)

    def confirm_totp(self, person: Person, secret: str, code: str) -> list[str] | None:
        """Enrol `secret` once the person proves their authenticator holds it (a current code); the new
        recovery codes, to show once (None, nothing changed, when the code is wrong)."""
        if not self.totp.matches(secret, code):
            return None
        sealed = self.totp.seal(secret, _totp_owner(person.id))
        with write_transaction(self.engine) as conn:
            conn.execute(
                update(portal_account).where(portal_account.c.id == person.id).values(totp_secret=sealed)
            )
            return self.recovery_codes.issue_in(conn, person.id)

    def replace_totp(self, person: Person, secret: str, code: str) -> tuple[Person, list[str]] | None:
        """Put `secret` in place of the enrolled factor once a code from it proves the new authenticator holds
        it (None, nothing changed, otherwise), with a new set of recovery codes (the old set stops working),
        and end every session of the account: the caller re-issues the one that made the change."""
        if not self.totp.matches(secret, code):
            return None
        sealed = self.totp.seal(secret, _totp_owner(person.id))
        with write_transaction(self.engine) as conn:
            changed = self._set_totp_in(conn, person, sealed)
            return changed, self.recovery_codes.issue_in(conn, person.id)

    def remove_totp(self, person: Person) -> Person:
        """Clear the factor and its recovery codes, and end every session of the account (the caller
        re-issues the current one)."""
        with write_transaction(self.engine) as conn:
            self.recovery_codes.discard_in(conn, person.id)
            return self._set_totp_in(conn, person, None)

    @staticmethod
    def _set_totp_in(conn: Connection, person: Person, sealed: str | None) -> Person:
        row = conn.execute(
            update(portal_account)
            .where(portal_account.c.id == person.id)
            .values(totp_secret=sealed, session_generation=portal_account.c.session_generation + 1)
            .returning(*portal_account.c)
        ).one()
        return _person(row)

    def verify_totp(self, person: Person, code: str) -> bool:
        with self.engine.connect() as conn:
            sealed = conn.execute(
                select(portal_account.c.totp_secret).where(portal_account.c.id == person.id)
            ).scalar_one_or_none()
        return self.totp.verify(sealed, _totp_owner(person.id), code)

    # ---- for the staff console -------------------------------------------------------------------
    def search(self, contains: str, limit: int = 200) -> list[Person]:
        """Accounts whose address contains `contains` (case-insensitive), by address."""
        t = portal_account
        query = select(t).order_by(t.c.email).limit(limit)
        if contains.strip():
            needle = contains.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(t.c.email.ilike(f"%{needle}%", escape="\\"))
        with self.engine.connect() as conn:
            return [_person(row) for row in conn.execute(query)]

    def last_sign_in(self, account_id: int) -> int | None:
        with self.engine.connect() as conn:
            found = conn.execute(
                select(portal_account.c.last_sign_in_at).where(portal_account.c.id == account_id)
            ).scalar_one_or_none()
        return int(found) if found is not None else None

    def mark_verified(self, account_id: int) -> None:
        """The address is taken as verified without a link (someone trusted vouches for it: an operator or an
        admin creating a staff account)."""
        with write_transaction(self.engine) as conn:
            conn.execute(
                update(portal_account)
                .where(portal_account.c.id == account_id, portal_account.c.email_verified_at.is_(None))
                .values(email_verified_at=self.clock.now())
            )

    @staticmethod
    def temporary_password() -> str:
        """A password for an account created from the command line, shown once (24 random characters)."""
        return secrets.token_urlsafe(18)


def chosen_password_hash(password: str, address: str) -> str:
    """The hash of a password a person chose, once it passes the NIST rules (`Invalid` naming `password`):
    sign-up, a reset link and a change while signed in apply exactly the same rules."""
    try:
        passwords.check(password, email=address)
    except passwords.PasswordProblem as exc:
        raise Invalid(str(exc), "password") from exc
    return passwords.hash_password(passwords.normalise(password))


def _totp_owner(account_id: int) -> str:
    return f"portal-totp:{account_id}"


def _person(row: Any) -> Person:
    return Person(
        row.id,
        row.email,
        row.email_verified_at is not None,
        row.totp_secret is not None,
        row.disabled,
        row.session_generation,
    )
