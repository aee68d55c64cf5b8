"""Member accounts: argon2id hashes, no enumeration, TOTP second factor."""

from __future__ import annotations

import pyotp
import pytest
from sqlalchemy import select

from openpayer.accounts import passwords
from openpayer.bootstrap import Services
from openpayer.members.models import member_account


def test_passwords_are_argon2id_and_verify(services: Services) -> None:
    members = services.auth.members
    created = members.create("sandbox", "maria", "a long passphrase", "p1")
    with services.engine.connect() as conn:
        stored = conn.execute(select(member_account.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$")
    assert members.authenticate("sandbox", "maria", "a long passphrase") == created
    assert members.authenticate("sandbox", "maria", "wrong passphrase") is None
    assert members.authenticate("sandbox", "nobody", "a long passphrase") is None
    assert members.authenticate("production", "maria", "a long passphrase") is None


def test_an_unknown_account_costs_an_argon2_verify_with_the_current_parameters() -> None:
    """The hash an unknown account is checked against is made on the first `verify` (not at import), for
    whichever account that call is about, with the hasher's parameters: the same work as a real account's."""
    passwords._dummy_hash.cache_clear()
    assert passwords.verify(passwords.hash_password("a long passphrase"), "a long passphrase")
    assert passwords._dummy_hash.cache_info().currsize == 1  # a known account's first check made it too
    dummy = passwords._dummy_hash()
    assert dummy.startswith("$argon2id$")
    assert not passwords.needs_rehash(dummy)
    assert passwords.verify(None, "openpayer-no-such-account") is False


def test_short_passwords_are_refused(services: Services) -> None:
    with pytest.raises(ValueError, match="at least"):
        services.auth.members.create("sandbox", "short", "1234567", "p1")


def test_totp_second_factor(services: Services) -> None:
    members = services.auth.members
    members.create("sandbox", "maria", "a long passphrase", "p1")
    secret = members.enroll_totp("sandbox", "maria")
    member = members.authenticate("sandbox", "maria", "a long passphrase")
    assert member is not None
    assert member.has_totp
    assert members.verify_totp(member, pyotp.TOTP(secret).at(services.auth.clock.now()))
    assert not members.verify_totp(member, "000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    with services.engine.connect() as conn:
        sealed = conn.execute(select(member_account.c.totp_secret)).scalar_one()
    assert secret not in sealed


def test_sandbox_members_are_idempotent_and_never_in_production(services: Services) -> None:
    from openpayer.members.sandbox import SANDBOX_MEMBERS, ensure_sandbox_members

    assert len(ensure_sandbox_members(services.auth.members)) == len(SANDBOX_MEMBERS)
    assert ensure_sandbox_members(services.auth.members) == []
    username, password, patient = SANDBOX_MEMBERS[0]
    member = services.auth.members.authenticate("sandbox", username, password)
    assert member is not None
    assert member.patient_id == patient
    with pytest.raises(ValueError, match="sandbox only"):
        ensure_sandbox_members(services.auth.members, "production")
