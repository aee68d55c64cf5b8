"""Two processes sweeping one database at once (two hosts, or the daily job and an operator) send each
notice once: every step is a compare-and-set committed with its record and its mail."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from tests.policy.conftest import REDIRECT, World

from openpayer.email.tables import email_message
from openpayer.policy.tables import policy_transition
from openpayer.portal.applications import ApplicationDetails
from openpayer.portal.organizations import OrganizationDetails

OPENPAYER = str(Path(sys.executable).parent / "openpayer")
ORGANIZATIONS = 12


def add_organizations(world: World) -> None:
    portal = world.services.portal
    for n in range(ORGANIZATIONS):
        organization = portal.organizations.create(
            3000 + n,
            OrganizationDetails(
                legal_name=f"Org {n}",
                website=f"https://org{n}.example",
                domain=f"org{n}.example",
                address="1 Main St",
                technical_contact_name="T",
                technical_contact_email=f"tech@org{n}.example",
                security_contact_name="S",
                security_contact_email=f"security@org{n}.example",
            ),
        )
        portal.applications.register(
            3000 + n,
            organization.id,
            ApplicationDetails(
                name=f"App {n}",
                description="An app.",
                website=f"https://org{n}.example",
                privacy_policy_url=f"https://org{n}.example/privacy",
                support_email=f"tech@org{n}.example",
                redirect_uris=(REDIRECT,),
                client_type="public",
                scopes=("launch/patient", "patient/Patient.rs"),
            ),
        )


def sweep_processes(world: World, day: int) -> list[subprocess.Popen[str]]:
    settings = world.services.settings
    env = dict(
        os.environ,
        OPENPAYER_DATABASE_URL=settings.resolved_database_url,
        OPENPAYER_HOME=str(settings.home),
        OPENPAYER_SECRET_KEY="test-secret",
        COLUMNS="200",
    )
    as_of = (world.day0 + timedelta(days=day)).isoformat()
    return [
        subprocess.Popen(
            [OPENPAYER, "policy", "sweep", "--as-of", as_of],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]


def test_two_processes_sweeping_at_once_send_each_notice_once(world: World) -> None:
    add_organizations(world)
    subscriptions = ORGANIZATIONS + 2
    for day in (60, 74):
        processes = sweep_processes(world, day)
        outputs = [p.communicate(timeout=120)[0] for p in processes]
        assert all(p.returncode == 0 for p in processes), outputs
        taken = sum(int(out.strip().splitlines()[-1].split()[0]) for out in outputs)
        assert taken == subscriptions  # between them, each subscription moved once
    world.services.background.runner.run_due()
    with world.services.engine.connect() as conn:
        keys = conn.execute(select(email_message.c.idempotency_key)).scalars().all()
        steps = conn.execute(select(policy_transition.c.subscription_id, policy_transition.c.to_state)).all()
    assert len(keys) == 2 * subscriptions
    assert max(Counter(keys).values()) == 1
    assert max(Counter(steps).values()) == 1
    delivered = Counter((tuple(to), message["Subject"]) for to, message in world.relay.mail())
    assert len(world.relay.received) == 2 * subscriptions
    assert max(delivered.values()) == 1  # each developer: each notice of each subscription once
