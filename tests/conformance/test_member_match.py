"""`Patient/$member-match` (HRex 1.0.0) on `/{env}/fhir`, and its declaration in the CapabilityStatement.

Data: the PDex IG's Patients and Coverages and the Inferno PDex bundle (patient 999), plus the PDex test
kit's request presets. `$member-match` is a payer-to-payer (backend, `system/` token) call: the matching
rules are exercised with the guard off, and who may call it with the guard on (backend tokens granted
Patient read; not a member's app).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from openpayer.app import create_app
from openpayer.bootstrap import Services, build_services
from openpayer.config import Settings
from openpayer.db import write_transaction

support = sys.modules["openpayer_conformance_support"]
SHARED = (Path(__file__).resolve().parents[2] / ".." / "shared").resolve()
KIT = SHARED / "fhir-data" / "pdex-test-kit-fixtures"
ENV = "sandbox"
BASE = f"/{ENV}/fhir"
MATCH = f"{BASE}/Patient/$member-match"
FHIR_JSON = "application/fhir+json"
MB = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MB"}]}


def _read(path: Path) -> Any:
    if not path.exists():
        pytest.skip(f"reference data {path} is not available")
    return orjson.loads(path.read_bytes())


@pytest.fixture
def engine_services(settings: Settings) -> Iterator[Services]:
    """Services with the bearer-token guard off (`auth_enforce=False`, the engine-test switch); the guarded
    calls use `guarded` over the same database."""
    bundle = "fhir-data/inferno-reference-server-data/pdex_bundle_patient_999.json"
    _read(SHARED / bundle)  # skips when ../shared is absent
    built = build_services(settings.model_copy(update={"auth_enforce": False}))
    rejected = support.load(built, [bundle])
    assert rejected == {}
    for name in ("Patient-1.json", "Patient-1-2.json", "Patient-100.json", "Coverage-Coverage1.json",
                 "Coverage-883210.json"):  # fmt: skip
        resource = _read(SHARED / "ig" / "pdex-2.0.0" / "example" / name)
        built.fhir.update("sandbox", resource["resourceType"], resource["id"], resource)
    yield built
    built.engine.dispose()


@pytest.fixture
def api(engine_services: Services) -> Iterator[tuple[TestClient, dict[str, str]]]:
    app = create_app(engine_services.settings, services=engine_services)
    with TestClient(app, base_url="http://testserver", raise_server_exceptions=False) as client:
        yield client, {"Content-Type": FHIR_JSON}


@pytest.fixture
def guarded(engine_services: Services) -> Iterator[tuple[TestClient, Services]]:
    """The same data behind the bearer-token guard (`auth_enforce=True`)."""
    built = build_services(engine_services.settings.model_copy(update={"auth_enforce": True}))
    app = create_app(built.settings, services=built)
    with TestClient(app, base_url="http://testserver", raise_server_exceptions=False) as client:
        yield client, built
    built.engine.dispose()


def _token(services: Services, scope: str, *, patient_id: str | None = None) -> str:
    """An access token of a client registered for `scope`; with `patient_id`, a member's (patient) token."""
    auth = services.auth
    member_id = None
    if patient_id is not None:
        member_id = auth.members.create(
            ENV, f"member-{patient_id}", "correct horse battery staple", patient_id
        ).id
    client_id, _ = auth.clients.register(ENV, name="member-match tests", redirect_uris=[], scopes=[scope])
    with write_transaction(services.engine) as conn:
        return auth.tokens.issue(
            conn,
            env=ENV,
            kind="access",
            client_id=client_id,
            scope=scope,
            expires_at=int(time.time()) + 300,
            member_id=member_id,
            patient_id=patient_id,
        )


PATTY_MEMBER_ID = "99999"


@pytest.mark.parametrize(
    "scope", ["system/*.rs", "system/Patient.read", "system/Patient.rs system/Coverage.rs"]
)
def test_a_system_token_reaches_member_match(guarded: tuple[TestClient, Services], scope: str) -> None:
    client, services = guarded
    headers = {"Authorization": f"Bearer {_token(services, scope)}", "Content-Type": FHIR_JSON}
    response = client.post(MATCH, content=orjson.dumps(request(PATTY, OLD_COVERAGE)), headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["parameter"][0]["valueIdentifier"]["value"] == PATTY_MEMBER_ID
    wrong = {**OLD_COVERAGE, "subscriberId": "00000"}
    response = client.post(MATCH, content=orjson.dumps(request(PATTY, wrong)), headers=headers)
    assert response.status_code == 422
    assert "No member matches" in _outcome(response)


@pytest.mark.parametrize("scope", ["system/Coverage.rs", "system/Patient.s"])
def test_a_system_token_without_patient_read_is_403(guarded: tuple[TestClient, Services], scope: str) -> None:
    client, services = guarded
    headers = {"Authorization": f"Bearer {_token(services, scope)}", "Content-Type": FHIR_JSON}
    response = client.post(MATCH, content=orjson.dumps(request(PATTY, OLD_COVERAGE)), headers=headers)
    assert response.status_code == 403
    assert "$member-match" in _outcome(response)


def test_a_members_token_cannot_match_members(guarded: tuple[TestClient, Services]) -> None:
    """Even for its own patient, with Patient read granted: member matching is payer-to-payer."""
    client, services = guarded
    token = _token(services, "launch/patient patient/*.read", patient_id="1")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": FHIR_JSON}
    response = client.post(MATCH, content=orjson.dumps(request(PATTY, OLD_COVERAGE)), headers=headers)
    assert response.status_code == 403
    assert "backend services token" in _outcome(response)
    assert client.get(f"{BASE}/Patient/1", headers=headers).status_code == 200  # the token itself works


def test_member_match_needs_a_token(guarded: tuple[TestClient, Services]) -> None:
    client, _ = guarded
    body = orjson.dumps(request(PATTY, OLD_COVERAGE))
    response = client.post(MATCH, content=body, headers={"Content-Type": FHIR_JSON})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["resourceType"] == "OperationOutcome"


def request(patient: dict[str, Any], coverage: dict[str, Any], **extra: dict[str, Any]) -> dict[str, Any]:
    parameters = [
        {"name": "MemberPatient", "resource": patient},
        {"name": "CoverageToMatch", "resource": coverage},
    ]
    parameters += [{"name": name, "resource": resource} for name, resource in extra.items()]
    return {"resourceType": "Parameters", "parameter": parameters}


PATTY = {
    "resourceType": "Patient",
    "name": [{"family": "Dexter882", "given": ["Patty408"]}],
    "gender": "female",
    "birthDate": "1980-01-15",
}
OLD_COVERAGE = {
    "resourceType": "Coverage",
    "status": "active",
    "subscriberId": "97531",
    "beneficiary": {"reference": "Patient/1"},
    "payor": [{"display": "Old Health Plan"}],
}


def _outcome(response: Any) -> str:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    return " ".join(issue["diagnostics"] for issue in body["issue"])


def test_a_unique_member_is_matched_by_demographics_and_subscriber_id(api: Any) -> None:
    client, headers = api
    response = client.post(MATCH, content=orjson.dumps(request(PATTY, OLD_COVERAGE)), headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["resourceType"] == "Parameters"
    assert body["parameter"] == [
        {
            "name": "MemberIdentifier",
            "valueIdentifier": {
                "type": MB,
                "system": "http://github.com/inferno-framework/target-payer/identifiers/member",
                "value": "99999",
                "assigner": {"display": "Old Payer"},
            },
        }
    ]


def test_names_are_matched_without_regard_to_case_and_consent_is_accepted(api: Any) -> None:
    client, headers = api
    patient = {**PATTY, "name": [{"family": "DEXTER882", "given": ["patty408"]}]}
    consent = _read(KIT / "member_match_request.preset.json")["parameter"][3]["resource"]
    body = request(patient, OLD_COVERAGE, CoverageToLink=OLD_COVERAGE, Consent=consent)
    response = client.post(MATCH, content=orjson.dumps(body), headers=headers)
    assert response.status_code == 200, response.text


def test_a_coverage_identifier_matches_too(api: Any) -> None:
    client, headers = api
    coverage = {
        **OLD_COVERAGE,
        "subscriberId": None,
        "identifier": [{"system": "http://example.org/old-payer/identifiers/coverage", "value": "234567"}],
    }
    del coverage["subscriberId"]
    johnny = {
        "resourceType": "Patient",
        "name": [{"family": "Appleseed", "given": ["Johnny"]}],
        "birthDate": "1986-01-01",
    }
    response = client.post(MATCH, content=orjson.dumps(request(johnny, coverage)), headers=headers)
    # Patients 1, 1-2 and 100 share these demographics; only Patient/1 holds the coverage.
    assert response.status_code == 200, response.text
    assert response.json()["parameter"][0]["valueIdentifier"]["value"].endswith("#1234-234-1243-12345678901")


def test_no_match_is_422(api: Any) -> None:
    client, headers = api
    response = client.post(
        MATCH, content=(KIT / "no_member_match_request.preset.json").read_bytes(), headers=headers
    )
    assert response.status_code == 422
    assert "No member matches" in _outcome(response)
    wrong_subscriber = {**OLD_COVERAGE, "subscriberId": "00000"}
    response = client.post(MATCH, content=orjson.dumps(request(PATTY, wrong_subscriber)), headers=headers)
    assert response.status_code == 422
    wrong_birth_date = {**PATTY, "birthDate": "1980-01-16"}
    response = client.post(
        MATCH, content=orjson.dumps(request(wrong_birth_date, OLD_COVERAGE)), headers=headers
    )
    assert response.status_code == 422


def test_the_kit_preset_does_not_match_the_example_data(api: Any) -> None:
    """The PDex kit's preset names the coverage with another system (`mitre.org`) than the IG example
    (`example.org`) it was written against; a deterministic match on identifiers refuses it."""
    client, headers = api
    response = client.post(
        MATCH, content=(KIT / "member_match_request.preset.json").read_bytes(), headers=headers
    )
    assert response.status_code == 422


def test_several_matches_are_422(api: Any, engine_services: Services) -> None:
    client, headers = api
    twin = {**_read(SHARED / "ig" / "pdex-2.0.0" / "example" / "Patient-100.json")}
    coverage = {**OLD_COVERAGE, "id": "twin-coverage", "beneficiary": {"reference": "Patient/100"}}
    engine_services.fhir.update("sandbox", "Coverage", "twin-coverage", coverage)
    johnny = {"resourceType": "Patient", "name": twin["name"], "birthDate": twin["birthDate"]}
    response = client.post(MATCH, content=orjson.dumps(request(johnny, OLD_COVERAGE)), headers=headers)
    assert response.status_code == 422
    assert "not unique" in _outcome(response)


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b'{"resourceType": "Patient"}',
        orjson.dumps(
            {"resourceType": "Parameters", "parameter": [{"name": "MemberPatient", "resource": PATTY}]}
        ),
        orjson.dumps(request({"resourceType": "Coverage"}, OLD_COVERAGE)),
        orjson.dumps(request({"resourceType": "Patient", "birthDate": "1980-01-15"}, OLD_COVERAGE)),
        orjson.dumps({"resourceType": "Parameters", "parameter": [{"name": "Other", "valueString": "x"}]}),
    ],
    ids=["not-json", "not-parameters", "no-coverage", "wrong-type", "no-name", "unknown-parameter"],
)
def test_malformed_input_is_400(api: Any, body: bytes) -> None:
    client, headers = api
    response = client.post(MATCH, content=body, headers=headers)
    assert response.status_code == 400, response.text


def test_get_is_not_allowed(api: Any) -> None:
    client, headers = api
    assert client.get(MATCH, headers=headers).status_code == 405


def test_declared_in_the_capability_statement(api: Any) -> None:
    client, _ = api
    statement = client.get(f"{BASE}/metadata").json()
    patient = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Patient")
    operations = {op["name"]: op["definition"] for op in patient["operation"]}
    assert (
        operations["member-match"] == "http://hl7.org/fhir/us/davinci-hrex/OperationDefinition/member-match"
    )
    assert operations["everything"] == "http://hl7.org/fhir/OperationDefinition/Patient-everything"


def test_values_are_taken_literally(api: Any, engine_services: Services) -> None:
    """A comma in a name is not a search OR: the member with that name is matched, no one else."""
    patient = {
        "resourceType": "Patient",
        "id": "comma",
        "name": [{"family": "Dexter882,Smith", "given": ["Patty408"]}],
    }
    patient |= {"gender": "female", "birthDate": "1980-01-15"}
    engine_services.fhir.update("sandbox", "Patient", "comma", patient)
    coverage = {**OLD_COVERAGE, "id": "comma-coverage", "beneficiary": {"reference": "Patient/comma"}}
    engine_services.fhir.update("sandbox", "Coverage", "comma-coverage", coverage)
    client, headers = api
    asked = {**PATTY, "name": [{"family": "Dexter882,Smith", "given": ["Patty408"]}]}
    response = client.post(MATCH, content=orjson.dumps(request(asked, OLD_COVERAGE)), headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["parameter"][0]["valueIdentifier"]["value"] == "comma"  # no MB identifier: the id
