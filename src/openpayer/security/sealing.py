"""Secrets at rest (signing keys, TOTP secrets): AES-256-GCM under a key derived (HKDF) from a configured
secret, `OPENPAYER_AUTH_KEY_ENCRYPTION_KEY` or else the deployment secret. The composition root builds the one
`Sealer`; every host that reads what another wrote must share that secret."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class Sealer:
    """AES-256-GCM under a key derived from a configured secret; associated data binds each blob to a use."""

    def __init__(self, secret: str) -> None:
        self._aead = AESGCM(
            HKDF(hashes.SHA256(), 32, salt=None, info=b"openpayer/oauth/sealing").derive(secret.encode())
        )

    def seal(self, data: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, data, aad)

    def unseal(self, blob: bytes, aad: bytes) -> bytes:
        return self._aead.decrypt(blob[:12], blob[12:], aad)
