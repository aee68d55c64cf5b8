"""A running server for the security tests: uvicorn on a loopback port in a thread, trusting
`X-Forwarded-For` from loopback (as from a proxy), so that one test can come from many addresses."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.live import live_servers

from openpayer.accounts.passwords import hash_password
from openpayer.bootstrap import Services
from openpayer.config import Settings
from openpayer.db import write_transaction
from openpayer.members.models import member_account

MEMBER_PASSWORD = "a member's own long passphrase"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"auth_enforce": True, "trusted_proxies": ["127.0.0.1/32"]})


@pytest.fixture
def serve() -> Iterator[Callable[[Any], str]]:
    """`serve(app)`: the app behind uvicorn on a free loopback port (lifespan on: the writers run)."""
    with live_servers(lifespan="on") as start:
        yield start


def make_members(services: Services, env: str, count: int) -> list[tuple[str, str]]:
    """`count` members (`member-N`, password `MEMBER_PASSWORD`), each with a Patient and an Observation;
    returns (username, patient id). One argon2 hash is shared, so setting up costs one hash, not 50."""
    password_hash = hash_password(MEMBER_PASSWORD)
    members = []
    rows = []
    for n in range(count):
        patient = services.fhir.create(
            env, "Patient", {"resourceType": "Patient", "name": [{"family": f"M{n}"}]}
        )
        pid = str(patient.stored.id)
        services.fhir.create(
            env,
            "Observation",
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
                "subject": {"reference": f"Patient/{pid}"},
            },
        )
        username = f"member-{n}"
        members.append((username, pid))
        rows.append(
            {
                "env": env,
                "username": username,
                "password_hash": password_hash,
                "patient_id": pid,
                "disabled": False,
                "created_at": services.clock.now(),
            }
        )
    with write_transaction(services.engine) as conn:
        conn.execute(member_account.insert(), rows)
    return members
