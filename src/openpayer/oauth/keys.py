"""Signing keys per environment (RS256 for ID tokens), kept in the database with private halves encrypted.

Keys are generated on first use and published at `/{env}/auth/jwks`; `openpayer keys rotate ENV` adds a
new key that signs from then on while older keys stay published so that tokens they signed still verify
(OpenID Connect Core §10.1.1). Private keys are sealed with AES-256-GCM under a key derived (HKDF) from
`auth_key_encryption_key`, or from the deployment secret when that is unset (`openpayer.security.sealing`).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from typing import Any

from cryptography.exceptions import InvalidTag
from joserfc.jwk import RSAKey
from sqlalchemy import Engine, select

from openpayer.clock import Clock
from openpayer.db import write_transaction
from openpayer.oauth.models import oauth_signing_key
from openpayer.security.sealing import Sealer
from openpayer.web.threads import off_loop

ALG = "RS256"
_CACHE_SECONDS = 60.0


class KeyStore:
    def __init__(self, engine: Engine, sealer: Sealer, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock
        self.sealer = sealer
        self._lock = threading.RLock()
        self._cache: dict[str, tuple[float, RSAKey, dict[str, Any]]] = {}

    def rotate(self, env: str) -> str:
        """Add a new signing key for `env`; it signs from now on. Returns its `kid`."""
        kid = f"{env}-{secrets.token_hex(8)}"
        key = RSAKey.generate_key(2048, parameters={"kid": kid, "alg": ALG, "use": "sig"})
        public = key.as_dict(private=False)
        pem = key.as_pem(private=True)
        with write_transaction(self.engine) as conn:
            conn.execute(
                oauth_signing_key.insert().values(
                    kid=kid,
                    env=env,
                    alg=ALG,
                    public_jwk=json.dumps(public),
                    private_enc=self.sealer.seal(pem, kid.encode()),
                    created_at=int(self.clock.now_float() * 1_000_000),
                )
            )
        self._cache.pop(env, None)
        return kid

    def _load(self, env: str) -> tuple[RSAKey, dict[str, Any]]:
        cached = self._cache.get(env)
        if cached and time.monotonic() - cached[0] < _CACHE_SECONDS:
            return cached[1], cached[2]
        # The lock is held across a query: on the event loop (`run_cooperative`) another grant's greenlet,
        # on the same thread, would take it again, so there the load runs in a thread.
        return off_loop(self._load_locked, env)

    def _load_locked(self, env: str) -> tuple[RSAKey, dict[str, Any]]:
        with self._lock:
            cached = self._cache.get(env)  # loaded by another thread while this one waited for the lock
            if cached and time.monotonic() - cached[0] < _CACHE_SECONDS:
                return cached[1], cached[2]
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(oauth_signing_key)
                    .where(oauth_signing_key.c.env == env)
                    .order_by(oauth_signing_key.c.created_at.desc())
                ).all()
            if not rows:
                self.rotate(env)
                return self._load_locked(env)
            newest = rows[0]
            pem = self.sealer.unseal(newest.private_enc, newest.kid.encode())
            key = RSAKey.import_key(pem, parameters={"kid": newest.kid, "alg": ALG, "use": "sig"})
            jwks = {"keys": [json.loads(row.public_jwk) for row in rows]}
            self._cache[env] = (time.monotonic(), key, jwks)
            return key, jwks

    def undecryptable(self) -> list[str]:
        """Environments whose current signing key this host cannot decrypt: it was sealed under another
        host's `auth_key_encryption_key` (or secret key). Such a host would answer 500 on /token and /jwks."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    oauth_signing_key.c.env, oauth_signing_key.c.kid, oauth_signing_key.c.private_enc
                ).order_by(oauth_signing_key.c.created_at.desc())
            ).all()
        newest: dict[str, Any] = {}
        for row in rows:
            newest.setdefault(row.env, row)
        failing = []
        for env, row in newest.items():
            try:
                self.sealer.unseal(row.private_enc, row.kid.encode())
            except InvalidTag:
                failing.append(env)
        return sorted(failing)

    def decryption_problem(self) -> str | None:
        """What the operator must fix when this host cannot decrypt the signing keys, naming the setting."""
        failing = self.undecryptable()
        if not failing:
            return None
        return (
            f"The signing keys of {', '.join(failing)} in the database were encrypted by a host with another "
            "key: set OPENPAYER_AUTH_KEY_ENCRYPTION_KEY (or, where it is unset, OPENPAYER_SECRET_KEY) to the "
            "value the other hosts of this deployment use."
        )

    def signing_key(self, env: str) -> RSAKey:
        return self._load(env)[0]

    def jwks(self, env: str) -> dict[str, Any]:
        return self._load(env)[1]
