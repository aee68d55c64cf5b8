"""TOTP second factors (RFC 6238): secrets sealed at rest, codes checked against the platform clock.

Each secret is sealed with associated data naming its owner (e.g. `totp:sandbox:alice`), so a sealed secret
copied to another account does not open.
"""

from __future__ import annotations

import pyotp

from openpayer.clock import Clock
from openpayer.security.sealing import Sealer


class TotpFactor:
    def __init__(self, sealer: Sealer, clock: Clock) -> None:
        self.sealer = sealer
        self.clock = clock

    def enroll(self, owner: str) -> tuple[str, str]:
        """A new secret: (base32 for the authenticator app, shown once; the sealed hex to store)."""
        secret = pyotp.random_base32()
        return secret, self.sealer.seal(secret.encode(), owner.encode()).hex()

    def verify(self, sealed: str | None, owner: str, code: str) -> bool:
        """The code of now (or one step either side) for the stored secret; False when none is enrolled."""
        if not sealed:
            return False
        secret = self.sealer.unseal(bytes.fromhex(sealed), owner.encode())
        return pyotp.TOTP(secret.decode()).verify(code.strip(), for_time=self.clock.now(), valid_window=1)
