"""Reference rows carry their target's rid (`fhir_idx_reference.target_rid`), whichever is written first.

Chains and forward includes join by that rid, so a reference written before its target (a later file of a
load, a later HTTP write, another batch) must find it once the target exists, in its own environment only.
`index_problems` compares every stored row, `target_rid` included, with what a fresh extraction and the
stored resources give.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from tests.fhir.test_index_integrity import index_problems

from openpayer.bootstrap import Services
from openpayer.db import read_connection, write_transaction
from openpayer.fhir.loading import Loader
from openpayer.fhir.storage.rows import index_copy_text, reference_targets, with_target_rids
from openpayer.fhir.storage.tables import fhir_resource, idx_reference, index_key
from openpayer.fhir.storage.targets import TARGET

FHIR = "/sandbox/fhir"
JSON = {"Content-Type": "application/fhir+json"}


def observation(oid: str, patient: str, **more: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "1234-5"}]},
        "subject": {"reference": f"Patient/{patient}"},
        **more,
    }


def patient(pid: str, family: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "name": [{"family": family}]}


def found(client: TestClient, query: str) -> list[str]:
    response = client.get(f"{FHIR}/{query}")
    assert response.status_code == 200, response.text
    return sorted(
        e["resource"]["id"] for e in response.json().get("entry", []) if e["search"]["mode"] == "match"
    )


def target_rids(services: Services, env: str, oid: str) -> list[int | None]:
    key = index_key(env, "Observation", "subject")
    with read_connection(services.engine) as conn:
        rid = conn.execute(
            select(fhir_resource.c.rid).where(
                fhir_resource.c.env == env, fhir_resource.c.type == "Observation", fhir_resource.c.id == oid
            )
        ).scalar_one()
        return list(
            conn.execute(
                select(idx_reference.c.target_rid).where(
                    idx_reference.c.rid == rid, idx_reference.c.hkey == key
                )
            ).scalars()
        )


def test_http_reference_written_before_its_target(client: TestClient, services: Services) -> None:
    put = client.put(f"{FHIR}/Observation/early", json=observation("early", "later"), headers=JSON)
    assert put.status_code == 201, put.text
    assert target_rids(services, "sandbox", "early") == [None]
    assert found(client, "Observation?subject:Patient.family=Later") == []
    # The same ids in production: its reference must not be pointed at the sandbox's patient.
    services.fhir.update("production", "Observation", "early", observation("early", "later"))

    assert (
        client.put(f"{FHIR}/Patient/later", json=patient("later", "Later"), headers=JSON).status_code == 201
    )
    assert target_rids(services, "sandbox", "early") != [None]
    assert target_rids(services, "production", "early") == [None]
    assert found(client, "Observation?subject:Patient.family=Later") == ["early"]
    included = client.get(f"{FHIR}/Observation?_id=early&_include=Observation:subject").json()
    assert sorted(e["resource"]["id"] for e in included["entry"]) == ["early", "later"]
    assert index_problems(services.engine) == []

    # A deleted target keeps its rid: the chain stops matching (its index rows are gone), then matches again.
    assert client.delete(f"{FHIR}/Patient/later").status_code in (200, 204)
    assert found(client, "Observation?subject:Patient.family=Later") == []
    assert (
        client.put(f"{FHIR}/Patient/later", json=patient("later", "Later"), headers=JSON).status_code == 201
    )
    assert found(client, "Observation?subject:Patient.family=Later") == ["early"]
    assert index_problems(services.engine) == []


def test_loaded_references_find_targets_of_later_batches_and_loads(
    client: TestClient, services: Services, tmp_path: Path
) -> None:
    def load(name: str, *resources: dict[str, Any]) -> None:
        source = tmp_path / name
        source.write_bytes(b"\n".join(orjson.dumps(r) for r in resources) + b"\n")
        report = Loader(services.engine, "sandbox", matcher=services.search, workers=0, batch_size=2).run(
            [source]
        )
        assert report.rejected == [], report.rejected

    # o1's target comes two batches later in the same file, o2's in a later load, o3's never; o4 refers to a
    # patient of the same batch.
    load(
        "first.ndjson",
        observation("o1", "p1"),
        observation("o2", "p2"),
        observation("o3", "nobody"),
        observation("o4", "p4"),
        patient("p4", "Four"),
        patient("p1", "One"),
    )
    assert found(client, "Observation?subject:Patient.family=One") == ["o1"]
    assert found(client, "Observation?subject:Patient.family=Four") == ["o4"]
    assert found(client, "Observation?subject:Patient.family=Two") == []
    load("second.ndjson", patient("p2", "Two"))
    assert found(client, "Observation?subject:Patient.family=Two") == ["o2"]
    assert target_rids(services, "sandbox", "o3") == [None]
    assert index_problems(services.engine) == []


def test_the_check_sees_a_wrong_target_rid(services: Services) -> None:
    services.fhir.update("sandbox", "Patient", "p", patient("p", "P"))
    services.fhir.update("sandbox", "Observation", "o", observation("o", "p"))
    assert index_problems(services.engine) == []
    with write_transaction(services.engine) as conn:
        conn.execute(update(idx_reference).values(target_rid=None))
    assert any("differ" in p for p in index_problems(services.engine))


def test_copy_text_marks_targets_and_escapes_the_mark_in_values() -> None:
    hkey = index_key("sandbox", "Observation", "subject")
    rows = {
        "fhir_idx_reference": [
            (hkey, "Patient", "p1", None, None, None, TARGET),
            (hkey, None, None, "http://x/\x02\ttab", None, None, None),
            (hkey, "Patient", "p2", None, "s", "v\x02", TARGET),
        ]
    }
    text = index_copy_text(rows)["fhir_idx_reference"]
    assert reference_targets(rows) == [("Patient", "p1"), ("Patient", "p2")]
    filled = with_target_rids(text, reference_targets(rows), {("Patient", "p1"): 41})
    assert filled.decode().splitlines() == [
        f"\x01\t{hkey}\tPatient\tp1\t\\N\t\\N\t\\N\t41",
        f"\x01\t{hkey}\t\\N\t\\N\thttp://x/\\x02\\ttab\t\\N\t\\N\t\\N",
        f"\x01\t{hkey}\tPatient\tp2\t\\N\ts\tv\\x02\t\\N",
    ]


def test_a_reference_and_its_target_written_at_once_meet(client: TestClient, services: Services) -> None:
    """The writer of a reference to X holds its transaction open while another creates X. Each would miss the
    other's uncommitted rows; the environment's write lock (SQLite: its single writer) makes the creation
    wait, so that it finds the reference once committed."""
    created = threading.Event()

    def create_target() -> None:
        services.fhir.update("sandbox", "Patient", "late", patient("late", "Meanwhile"))
        created.set()

    with write_transaction(services.engine) as conn:
        services.fhir.update_in(conn, "sandbox", observation("waiting", "late"))
        other = threading.Thread(target=create_target)
        other.start()
        assert not created.wait(0.5)  # the creation waits for this transaction
    other.join(30)
    assert created.is_set()
    assert target_rids(services, "sandbox", "waiting") != [None]
    assert found(client, "Observation?subject:Patient.family=Meanwhile") == ["waiting"]
    assert index_problems(services.engine) == []
