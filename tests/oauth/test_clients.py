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


def _authenticates(services: Services, client_id: str, secret: str) -> bool:
    from authlib.oauth2.rfc6749.errors import InvalidClientError

    try:
        services.auth.clients.authenticate(
            "sandbox",
            {"client_id": client_id, "client_secret": secret},
            {},
            "http://testserver/sandbox/auth/token",
        )
    except InvalidClientError:
        return False
    return True


def test_rotated_secret_overlap_is_bounded_and_ends(services: Services) -> None:
    store = services.auth.clients
    client_id, old = store.register("sandbox", name="X", redirect_uris=["https://a.example/cb"])
    assert old is not None
    with pytest.raises(ValueError, match="24 hours"):
        store.rotate_secret("sandbox", client_id, 24 * 3600 + 1)
    new = store.rotate_secret("sandbox", client_id, 600)
    assert new != old
    stored = store.get("sandbox", client_id)
    assert stored is not None
    assert stored.previous_secret_digest == digest(old)
    assert _authenticates(services, client_id, old)
    assert _authenticates(services, client_id, new)
    services.auth.clock.advance(601)
    assert not _authenticates(services, client_id, old)
    assert _authenticates(services, client_id, new)
    newest = store.rotate_secret("sandbox", client_id)  # no overlap: the old secret stops at once
    assert not _authenticates(services, client_id, new)
    assert _authenticates(services, client_id, newest)


def test_only_secret_clients_rotate_and_updates_keep_credentials(services: Services) -> None:
    store = services.auth.clients
    public_id, _ = store.register("sandbox", name="P", redirect_uris=["https://a.example/cb"], public=True)
    with pytest.raises(ValueError, match="only a client with a secret"):
        store.rotate_secret("sandbox", public_id)
    client_id, secret = store.register("sandbox", name="X", redirect_uris=["https://a.example/cb"])
    assert store.update("sandbox", client_id, name="Y", redirect_uris=["https://b.example/cb"])
    with pytest.raises(ValueError, match="fragment"):
        store.update("sandbox", client_id, name="Y", redirect_uris=["https://b.example/cb#x"])
    stored = store.get("sandbox", client_id)
    assert stored is not None
    assert (stored.name, stored.redirect_uris) == ("Y", ("https://b.example/cb",))
    assert _authenticates(services, client_id, secret or "")
