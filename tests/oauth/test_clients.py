"""Client registration and authentication rules (RFC 6749 §2, §2.3)."""

from __future__ import annotations

import pytest

from openpayer.bootstrap import Services
from openpayer.oauth.clients import digest


def test_registration_refuses_unsafe_urls(services: Services) -> None:
    store = services.auth.clients
    with pytest.raises(ValueError, match="privacy policy"):
        store.register(
            "sandbox", name="X", redirect_uris=["https://a.example/cb"], privacy_policy_url="javascript:x"
        )
    with pytest.raises(ValueError, match="fragment"):
        store.register("sandbox", name="X", redirect_uris=["https://a.example/cb#frag"])


def test_secrets_are_shown_once_and_stored_as_digests(services: Services) -> None:
    client_id, secret = services.auth.clients.register(
        "sandbox", name="X", redirect_uris=["https://a.example/cb"]
    )
    assert secret is not None
    stored = services.auth.clients.get("sandbox", client_id)
    assert stored is not None
    assert stored.secret_digest == digest(secret)
    assert secret not in repr(stored)
    assert services.auth.clients.get("production", client_id) is None
