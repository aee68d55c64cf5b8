"""What a member's token reaches beyond R4's compartment: US Core devices through `Device.patient`, and
the one list of non-patient types (an Endpoint included from a PractitionerRole)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from openpayer.app import Services
from openpayer.oauth.testing import TEST_PASSWORD, SmartApp

ENV = "sandbox"
FHIR = f"/{ENV}/fhir"
REDIRECT = "https://app.example.com/callback"


@pytest.fixture
def member_a(client: TestClient, services: Services, world: dict[str, str]) -> dict[str, str]:
    client_id, _ = services.auth.clients.register(ENV, name="Wallet", redirect_uris=[REDIRECT], public=True)
    token = SmartApp(client, client_id, REDIRECT).launch(
        "launch/patient patient/*.rs", "member-a", TEST_PASSWORD
    )
    return {"Authorization": f"Bearer {token['access_token']}"}


def make(services: Services, resource: dict) -> str:
    return str(services.fhir.create(ENV, resource["resourceType"], resource).stored.id)


def implant(patient: str) -> dict:
    """A US Core Implantable Device: its patient only in `Device.patient`."""
    return {
        "resourceType": "Device",
        "udiCarrier": [{"deviceIdentifier": "09504000059118"}],
        "type": {"coding": [{"system": "http://snomed.info/sct", "code": "14106009"}]},
        "patient": {"reference": f"Patient/{patient}"},
    }


def test_a_member_reads_and_searches_the_devices_implanted_in_them(
    client: TestClient, services: Services, world: dict[str, str], member_a: dict[str, str]
) -> None:
    mine = make(services, implant(world["a"]))
    theirs = make(services, implant(world["b"]))
    assert client.get(f"{FHIR}/Device/{mine}", headers=member_a).status_code == 200
    assert client.get(f"{FHIR}/Device/{theirs}", headers=member_a).status_code == 404
    found = client.get(f"{FHIR}/Device", params={"patient": f"Patient/{world['a']}"}, headers=member_a).json()
    assert [e["resource"]["id"] for e in found["entry"]] == [mine]
    everyone = client.get(f"{FHIR}/Device", headers=member_a).json()
    assert [e["resource"]["id"] for e in everyone["entry"]] == [mine]
    other = client.get(f"{FHIR}/Device", params={"patient": f"Patient/{world['b']}"}, headers=member_a).json()
    assert other.get("entry", []) == []
    compartment = client.get(f"{FHIR}/Patient/{world['a']}/Device", headers=member_a).json()
    assert [e["resource"]["id"] for e in compartment["entry"]] == [mine]
    everything = client.get(f"{FHIR}/Patient/{world['a']}/$everything", headers=member_a).json()
    devices = [e["resource"]["id"] for e in everything["entry"] if e["resource"]["resourceType"] == "Device"]
    assert devices == [mine]


def test_a_members_include_brings_the_endpoint_of_a_practitioner_role(
    client: TestClient, services: Services, world: dict[str, str], member_a: dict[str, str]
) -> None:
    endpoint = make(
        services,
        {
            "resourceType": "Endpoint",
            "status": "active",
            "connectionType": {
                "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
                "code": "hl7-fhir-rest",
            },
            "payloadType": [{"text": "any"}],
            "address": "https://provider.example.org/fhir",
        },
    )
    role = make(
        services,
        {"resourceType": "PractitionerRole", "endpoint": [{"reference": f"Endpoint/{endpoint}"}]},
    )
    query = {"_id": role, "_include": "PractitionerRole:endpoint"}
    bundle = client.get(f"{FHIR}/PractitionerRole", params=query, headers=member_a).json()
    kinds = sorted((e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"])
    assert kinds == [("Endpoint", endpoint), ("PractitionerRole", role)]
    assert client.get(f"{FHIR}/Endpoint/{endpoint}", headers=member_a).status_code == 200
