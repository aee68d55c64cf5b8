"""TOTP second factors (RFC 6238: 30 s, 6 digits, one step of drift either way) for every kind of account:
secrets sealed at rest, codes checked against the platform clock.

Each secret is sealed with associated data naming its owner (e.g. `totp:sandbox:alice`,
`portal-totp:42`), so a sealed secret copied to another account does not open.
"""

from __future__ import annotations

import pyotp

from openpayer.clock import Clock
from openpayer.security.sealing import Sealer

ISSUER = "OpenPayer"


class TotpFactor:
    def __init__(self, sealer: Sealer, clock: Clock) -> None:
        self.sealer = sealer
        self.clock = clock

    @staticmethod
    def new_secret() -> str:
        return pyotp.random_base32()

    @staticmethod
    def provisioning_uri(name: str, secret: str) -> str:
        """The `otpauth://` link an authenticator app reads (shown as text beside the key)."""
        return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=ISSUER)

    def seal(self, secret: str, owner: str) -> str:
        """The sealed hex to store for `owner`."""
        return self.sealer.seal(secret.encode(), owner.encode()).hex()

    def enroll(self, owner: str) -> tuple[str, str]:
        """A new secret: (base32 for the authenticator app, shown once; the sealed hex to store)."""
        secret = self.new_secret()
        return secret, self.seal(secret, owner)

    def matches(self, secret: str, code: str) -> bool:
        """`code` is the code of now (or one step either side) for the plain `secret`."""
        return pyotp.TOTP(secret).verify(code.strip(), for_time=self.clock.now(), valid_window=1)

    def verify(self, sealed: str | None, owner: str, code: str) -> bool:
        """The code of now (or one step either side) for the stored secret; False when none is enrolled."""
        if not sealed:
            return False
        secret = self.sealer.unseal(bytes.fromhex(sealed), owner.encode())
        return self.matches(secret.decode(), code)
