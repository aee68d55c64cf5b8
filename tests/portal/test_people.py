"""Developer and staff accounts: NIST 800-63B passwords, verification links, TOTP, no enumeration."""

from __future__ import annotations

import pyotp
import pytest
from sqlalchemy import select

from openpayer.accounts import passwords
from openpayer.app import Services
from openpayer.portal.errors import Conflict, Invalid
from openpayer.portal.models import portal_account
from openpayer.portal.people import VERIFY_LIFETIME

GOOD = "correct horse battery staple"


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("1234567", "at least 8"),
        ("password", "common or breached"),
        ("Password1", "common or breached"),  # compared case-insensitively
        ("iloveyou!", "common or breached"),
        ("tangerine-violin-42", None),  # no composition rule: accepted as it is
        ("dev@example.com", "e-mail address"),
        ("openpayer2026", "service's name"),
        ("x" * 257, "at most 256"),
    ],
)
def test_password_rules(password: str, reason: str | None) -> None:
    if reason is None:
        passwords.check(password, email="dev@example.com")
        return
    with pytest.raises(passwords.PasswordProblem, match=reason):
        passwords.check(password, email="dev@example.com")


def test_no_composition_rules_and_spaces_allowed() -> None:
    passwords.check("all lower case words here")
    passwords.check("ünïcödé pässwörd")
    assert len(passwords.common_passwords()) > 25_000


def test_accounts_store_argon2id_and_do_not_enumerate(services: Services) -> None:
    people = services.portal.people
    person = people.create("Dev@Example.com", GOOD)
    assert person.email == "dev@example.com"
    with services.engine.connect() as conn:
        stored = conn.execute(select(portal_account.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$")
    assert people.authenticate("DEV@example.com", GOOD) == person
    assert people.authenticate("dev@example.com", "wrong password!") is None
    assert people.authenticate("nobody@example.com", GOOD) is None
    with pytest.raises(Conflict):
        people.create("dev@example.com", GOOD)
    with pytest.raises(Invalid) as caught:
        people.create("other@example.com", "password")
    assert caught.value.field == "password"
    people.set_disabled(person.id, True)
    assert people.authenticate("dev@example.com", GOOD) is None


def test_verification_links_are_signed_and_expire(services: Services) -> None:
    people = services.portal.people
    person = people.create("dev@example.com", GOOD)
    token = people.verification_token(person)
    assert people.verify_email(token + "x") is None
    verified = people.verify_email(token)
    assert verified is not None
    assert verified.email_verified
    later = people.create("late@example.com", GOOD)
    late_token = people.verification_token(later)
    import time

    real = time.time
    try:
        time.time = lambda: real() + VERIFY_LIFETIME + 5  # itsdangerous reads the system clock
        assert people.verify_email(late_token) is None
    finally:
        time.time = real


def test_totp_is_kept_only_once_proven_and_sealed(services: Services) -> None:
    people = services.portal.people
    person = people.create("dev@example.com", GOOD)
    secret = people.new_totp_secret()
    now = services.auth.clock.now()
    assert not people.confirm_totp(
        person, secret, "000000" if pyotp.TOTP(secret).at(now) != "000000" else "111111"
    )
    assert not people.verify_totp(person, pyotp.TOTP(secret).at(now))  # not enrolled yet
    assert people.confirm_totp(person, secret, pyotp.TOTP(secret).at(now))
    with services.engine.connect() as conn:
        sealed = conn.execute(select(portal_account.c.totp_secret)).scalar_one()
    assert secret not in sealed
    assert people.verify_totp(person, pyotp.TOTP(secret).at(now))
    services.auth.clock.advance(120)
    assert not people.verify_totp(person, pyotp.TOTP(secret).at(now))  # an old code
