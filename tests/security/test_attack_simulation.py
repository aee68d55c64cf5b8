"""The attack simulation (issue #11): a running server driven over HTTP from many addresses.

Brute force on one account, password spraying over 100 accounts from one address, credential stuffing with
1,000 breached pairs from 200 addresses through one registered app, and client-secret guessing at the token
endpoint, all mixed with 50 members signing in through their own app and reading their data. Each attack
is detected within its window, the stuffing app is handed to the RiskSink with its evidence, and none of the
50 members is refused.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx
import pytest
from tests.security.conftest import MEMBER_PASSWORD, make_members
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from openpayer.app import create_app
from openpayer.bootstrap import Services
from openpayer.oauth.testing import SmartApp, hidden

ENV = "sandbox"
SCOPE = "launch/patient openid fhirUser patient/*.read"
REDIRECT = "https://app.example.com/callback"


class FakeRisk:
    """A RiskSink that keeps what it was handed (the incidents domain implements the real one)."""

    def __init__(self) -> None:
        self.flags: list[tuple[str, str, str, Mapping[str, Any]]] = []

    def flag(self, env: str, client_id: str, reason: str, evidence: Mapping[str, Any]) -> None:
        self.flags.append((env, client_id, reason, evidence))


def sign_in_page(http: httpx.Client, client_id: str, origin: str) -> dict[str, str]:
    """An attacker's copy of the sign-in form of `client_id` (its hidden fields, reused for every try)."""
    page = SmartApp(http, client_id, REDIRECT, origin=origin).authorize(SCOPE)
    assert page.status_code == 200, page.text
    return hidden(page.text)


def attempt(http: httpx.Client, form: dict[str, str], address: str, username: str, password: str) -> int:
    data = {**form, "username": username, "password": password}
    response = http.post(f"/{ENV}/auth/authorize", data=data, headers={"X-Forwarded-For": address})
    assert response.status_code in (401, 429), response.text
    assert 'name="decision"' not in response.text
    if response.status_code == 429:
        assert int(response.headers["retry-after"]) >= 1
    return response.status_code


@pytest.fixture
def risk(services: Services) -> FakeRisk:
    sink = FakeRisk()
    services.security.sink = sink  # as the composition root rebinds it for the incidents domain
    return sink


@pytest.fixture
def server(services: Services, serve: Callable[[Any], str], risk: FakeRisk) -> str:
    return serve(create_app(services.settings, services=services))


@pytest.fixture
def attacker(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, follow_redirects=False) as http:
        yield http


def test_attacks_are_detected_and_members_are_never_refused(
    services: Services, server: str, attacker: httpx.Client, risk: FakeRisk
) -> None:
    clients = services.auth.clients
    member_app, _ = clients.register(ENV, name="Member app", redirect_uris=[REDIRECT], public=True)
    stuffing_app, _ = clients.register(ENV, name="Stuffing app", redirect_uris=[REDIRECT], public=True)
    other_app, _ = clients.register(ENV, name="Other app", redirect_uris=[REDIRECT], public=True)
    backend, _ = clients.register(ENV, name="Backend", redirect_uris=[REDIRECT])
    members = make_members(services, ENV, 50)
    usernames = [name for name, _ in members]
    started = services.clock.now_micros()

    breached = [p for p in FREQUENCY_LISTS["passwords"] if len(p) >= 6][:1000]
    stuffing_pairs = iter(
        [
            (
                usernames[n % 50] if n % 4 == 0 else f"someone{n}@example.com",
                breached[n],
                f"198.51.{n % 200 // 100}.{n % 100}",
            )
            for n in range(1000)
        ]
    )
    spray_targets = iter(usernames + [f"staff{n}" for n in range(50)])
    brute_force = iter(range(15))
    rounds = itertools.count()
    stuffing_form = sign_in_page(attacker, stuffing_app, server)
    other_form = sign_in_page(attacker, other_app, server)
    statuses: Counter[str] = Counter()

    def attack_a_little() -> None:
        for username, password, address in itertools.islice(stuffing_pairs, 20):
            statuses[f"stuffing {attempt(attacker, stuffing_form, address, username, password)}"] += 1
        for username in itertools.islice(spray_targets, 2):
            statuses[f"spray {attempt(attacker, other_form, '203.0.113.7', username, 'Autumn-2026!')}"] += 1
        for _ in itertools.islice(brute_force, 1):
            statuses[f"brute {attempt(attacker, other_form, '203.0.113.9', 'member-7', 'guess-me-1')}"] += 1
        if next(rounds) == 20:  # a burst of guesses of a confidential client's secret
            for n in range(15):
                guess = attacker.post(
                    f"/{ENV}/auth/token",
                    data={"grant_type": "client_credentials", "scope": "system/*.read"},
                    auth=(backend, f"guess-{n}"),
                    headers={"X-Forwarded-For": "203.0.113.50"},
                )
                assert guess.status_code in (401, 429), guess.text
                assert guess.json()["error"] in ("invalid_client", "temporarily_unavailable")
                statuses[f"secret {guess.status_code}"] += 1

    for n, (username, patient_id) in enumerate(members):
        attack_a_little()
        with httpx.Client(
            base_url=server, follow_redirects=False, headers={"X-Forwarded-For": f"10.50.0.{n + 1}"}
        ) as http:
            app = SmartApp(http, member_app, REDIRECT, origin=server)
            tokens = app.launch(SCOPE, username, MEMBER_PASSWORD)  # asserts every step succeeded
            bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
            assert http.get(f"/{ENV}/fhir/Patient/{patient_id}", headers=bearer).status_code == 200
            assert http.get(f"/{ENV}/fhir/Observation", headers=bearer).json()["total"] == 1
    for _ in range(50):  # the rest of the stuffing run
        attack_a_little()

    assert statuses["stuffing 401"] + statuses["stuffing 429"] == 1000
    assert statuses["brute 429"] == 5  # the 11th try on and after: that pair is blocked
    # Growing delays once an address spent its free failures (how many 429s depends on the pace).
    assert statuses["spray 401"] >= 25
    assert statuses["spray 429"] >= 1
    assert statuses["secret 401"] >= 10
    assert statuses["secret 429"] >= 1

    found = services.security.detections()
    by_kind: dict[str, list[Any]] = {}
    for detection in found:
        by_kind.setdefault(detection.kind, []).append(detection)
        assert (
            detection.window_end - detection.window_start <= detection.evidence["window"]["seconds"] * 10**6
        )
        assert detection.at >= started
    brute = by_kind["brute_force"]
    assert len(brute) == 1
    assert "address=203.0.113.9" in brute[0].subject
    assert brute[0].count == 10
    spray = by_kind["password_spraying"]
    assert len(spray) == 1
    assert spray[0].subject == "address=203.0.113.7"
    assert spray[0].count > 15
    stuffing = by_kind["credential_stuffing"]
    assert [d.client_id for d in stuffing] == [stuffing_app]
    assert stuffing[0].evidence["counts"]["addresses"] >= 10
    assert [d.client_id for d in by_kind["breached_passwords"]] == [stuffing_app]
    assert {d.subject for d in by_kind["client_secret_guessing"]} == {
        f"client_id={backend}",
        "address=203.0.113.50",
    }
    assert all(d.client_id is None for d in by_kind["client_secret_guessing"])  # the target, not the way in

    flagged = {(client_id, reason) for _, client_id, reason, _ in risk.flags}
    assert (stuffing_app, "credential_stuffing") in flagged
    assert (stuffing_app, "breached_passwords") in flagged
    assert member_app not in {client_id for client_id, _ in flagged}
    evidence = next(e for _, c, r, e in risk.flags if r == "credential_stuffing")
    assert evidence["event_ids"]
    assert evidence["window"]["start"] < evidence["window"]["end"]
    assert evidence["detection_id"] == stuffing[0].id

    # The defense: once stuffing through the app was detected, breached passwords there went unchecked.
    refused = services.security.events.query(client_id=stuffing_app, outcome="refused", limit=2000)
    assert len(refused) > 900
    # No member was ever refused or throttled, though all were targets of the attacks.
    member_addresses = {f"10.50.0.{n + 1}" for n in range(50)}
    events = services.security.events.query(kinds=["signin:member", "rate-limit"], limit=10_000)
    assert not [e for e in events if e.address in member_addresses and e.outcome != "success"]
    assert sum(1 for e in events if e.address in member_addresses) == 50

    # /metrics counts detections and mitigations by kind.
    metrics = attacker.get("/metrics").text
    assert 'openpayer_security_detections_total{kind="credential_stuffing"}' in metrics
    assert 'openpayer_security_mitigations_total{kind="signin:member"}' in metrics
    assert 'openpayer_security_mitigations_total{kind="token"}' in metrics
