"""The sandbox's published test logins ship with their argon2id hashes: each must be the hash of its
published password, with the hasher's parameters, or be made anew when the parameters move on."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from openpayer.accounts import passwords
from openpayer.bootstrap import Services
from openpayer.members import sandbox
from openpayer.members.models import member_account
from openpayer.members.sandbox import SANDBOX_HASHES, SANDBOX_MEMBERS, ensure_sandbox_members


def stored_hashes(services: Services) -> dict[str, str]:
    with services.engine.connect() as conn:
        rows = conn.execute(select(member_account.c.username, member_account.c.password_hash)).all()
    return {str(username): str(password_hash) for username, password_hash in rows}


@pytest.mark.parametrize(("username", "password", "patient"), SANDBOX_MEMBERS)
def test_each_shipped_hash_is_its_published_password_with_the_current_parameters(
    username: str, password: str, patient: str
) -> None:
    shipped = SANDBOX_HASHES[username]
    assert shipped.startswith("$argon2id$")
    assert passwords.verify(shipped, password)
    assert not passwords.verify(shipped, password + "x")
    assert not passwords.needs_rehash(shipped)


def test_the_logins_are_created_with_the_shipped_hashes_without_hashing(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_hashing(password: str) -> str:
        raise AssertionError("hashed a sandbox password again")

    monkeypatch.setattr(passwords, "hash_password", no_hashing)
    assert ensure_sandbox_members(services.auth.members) == [u for u, _, _ in SANDBOX_MEMBERS]
    assert stored_hashes(services) == SANDBOX_HASHES
    for username, password, patient in SANDBOX_MEMBERS:
        member = services.auth.members.authenticate("sandbox", username, password)
        assert member is not None
        assert member.patient_id == patient


def test_a_shipped_hash_with_older_parameters_is_made_anew(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    older = dict(
        SANDBOX_HASHES, **{"sandbox-member-2": SANDBOX_HASHES["sandbox-member-2"].replace("t=3", "t=2")}
    )
    monkeypatch.setattr(sandbox, "SANDBOX_HASHES", older)
    ensure_sandbox_members(services.auth.members)
    stored = stored_hashes(services)
    assert stored["sandbox-member-1"] == SANDBOX_HASHES["sandbox-member-1"]
    assert stored["sandbox-member-2"] not in (older["sandbox-member-2"], SANDBOX_HASHES["sandbox-member-2"])
    assert not passwords.needs_rehash(stored["sandbox-member-2"])
    assert services.auth.members.authenticate("sandbox", "sandbox-member-2", "Sandbox-Member-2!") is not None
