"""Recovery codes of two-step sign-in for developer and staff accounts: the way in when the authenticator is
lost (GitHub's and Google's "backup codes").

- A set is `COUNT` random codes of `LENGTH` characters (`xxxxx-xxxxx`, an alphabet without look-alikes: about
  49 bits each), shown once, on the page that made them, and never again.
- At rest each code is a keyed digest, HMAC-SHA-256 under a key derived from the deployment secret, of
  (account, code): fast, and a copied table alone neither yields the codes nor lets them be guessed offline
  (the codes are shorter than a reset link's 256-bit token, which a plain SHA-256 suffices for). The digest
  is bound to its account, so a code works for no other.
- A code works once: using one marks it used with a conditional UPDATE (`used_at IS NULL`) and counts the
  rows, so of two requests racing with the same code exactly one succeeds. The account's unused digests are
  compared in constant time (`hmac.compare_digest`), all of them, before that UPDATE.
- A new set (enrolment, a new authenticator, "new recovery codes") deletes the old one in the same
  transaction; turning two-step sign-in off deletes the set.

Throttling and the sign-in records are the sign-in's (`people_signin.PeopleSignIn.recovery_code`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import Connection, Engine, delete, func, select, update

from openpayer.accounts.models import account_recovery_code
from openpayer.clock import Clock
from openpayer.db import write_transaction

COUNT = 10
LENGTH = 10  # characters, shown as two groups of five
ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read from paper and typed back


def normalise(code: str) -> str:
    """What a person typed, as stored: case, spaces and hyphens do not matter."""
    return "".join(c for c in code.strip().lower() if c not in " -\t")


class RecoveryCodes:
    def __init__(self, engine: Engine, clock: Clock, secret_key: str) -> None:
        self.engine = engine
        self.clock = clock
        purpose = b"openpayer/accounts/recovery-code"
        self._key = hmac.new(secret_key.encode(), purpose, hashlib.sha256).digest()

    def digest(self, account_id: int, code: str) -> str:
        message = f"{account_id}\x00{normalise(code)}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    @staticmethod
    def _new_code() -> str:
        raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
        return f"{raw[:5]}-{raw[5:]}"

    def issue_in(self, conn: Connection, account_id: int) -> list[str]:
        """A new set for the account in the caller's transaction (the old set stops working); the codes to
        show once."""
        codes = [self._new_code() for _ in range(COUNT)]
        now = self.clock.now()
        conn.execute(delete(account_recovery_code).where(account_recovery_code.c.account_id == account_id))
        rows = [
            {"account_id": account_id, "code_digest": self.digest(account_id, c), "created_at": now}
            for c in codes
        ]
        conn.execute(account_recovery_code.insert(), rows)
        return codes

    def issue(self, account_id: int) -> list[str]:
        with write_transaction(self.engine) as conn:
            return self.issue_in(conn, account_id)

    def discard_in(self, conn: Connection, account_id: int) -> None:
        """Delete the account's set (two-step sign-in turned off)."""
        conn.execute(delete(account_recovery_code).where(account_recovery_code.c.account_id == account_id))

    def use(self, account_id: int, code: str) -> int | None:
        """Spend `code` when it is one of the account's unused codes: the number of unused codes left after
        it; None (nothing spent) otherwise, or when another request spent it first."""
        typed = normalise(code)
        if len(typed) != LENGTH:
            return None
        given = self.digest(account_id, typed)
        t = account_recovery_code
        with write_transaction(self.engine) as conn:
            rows = conn.execute(
                select(t.c.id, t.c.code_digest).where(t.c.account_id == account_id, t.c.used_at.is_(None))
            ).all()
            found = None
            for row in rows:  # every one compared, in constant time each
                if hmac.compare_digest(row.code_digest, given):
                    found = row.id
            if found is None:
                return None
            spent = conn.execute(
                update(t).where(t.c.id == found, t.c.used_at.is_(None)).values(used_at=self.clock.now())
            ).rowcount
            if spent != 1:  # a concurrent request used it first
                return None
            return self._remaining(conn, account_id)

    def remaining(self, account_id: int) -> int:
        """How many unused codes the account has (what its security page shows; never the codes)."""
        with self.engine.connect() as conn:
            return self._remaining(conn, account_id)

    @staticmethod
    def _remaining(conn: Connection, account_id: int) -> int:
        t = account_recovery_code
        query = select(func.count()).select_from(t).where(t.c.account_id == account_id, t.c.used_at.is_(None))
        return int(conn.execute(query).scalar_one())
