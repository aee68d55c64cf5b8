"""Index rows belong to current versions only: nothing outlives an update, a delete or a failed write.

The index tables have no foreign key to `fhir_resource` (a third of PostgreSQL's CPU in a bulk load), so
these tests hold the invariant the key used to: every index row points at a resource row that exists and
is not deleted, and carries exactly the values extracted from that row's current content; a reference row
carries its target's rid when the target exists (`fhir.storage.targets`), whichever was written first.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, insert, select, update

from openpayer.bootstrap import Services
from openpayer.db import read_connection, write_transaction
from openpayer.fhir.loading import Loader
from openpayer.fhir.search.extract import extract_index
from openpayer.fhir.storage import codec
from openpayer.fhir.storage.repository import index_rows_to_values
from openpayer.fhir.storage.tables import INDEX_TABLES, fhir_resource

FHIR = "/sandbox/fhir"
JSON = {"Content-Type": "application/fhir+json"}


def index_problems(engine: Engine) -> list[str]:
    """Orphaned or stale index rows, compared with a fresh extraction of every current resource."""
    problems: list[str] = []
    with read_connection(engine) as conn:
        resources = {
            row.rid: row
            for row in conn.execute(
                select(
                    fhir_resource.c.rid,
                    fhir_resource.c.env,
                    fhir_resource.c.type,
                    fhir_resource.c.id,
                    fhir_resource.c.deleted,
                    fhir_resource.c.content,
                )
            )
        }
        rids = {(row.env, row.type, row.id): rid for rid, row in resources.items()}
        stored: dict[str, Counter[tuple[Any, ...]]] = {}
        for table in INDEX_TABLES:
            rows = Counter(tuple(row) for row in conn.execute(select(table)))
            stored[table.name] = rows
            for row in rows:
                resource = resources.get(row[0])
                if resource is None or resource.deleted:
                    problems.append(f"{table.name}: row of rid {row[0]} whose resource is gone or deleted")
    expected: dict[str, Counter[tuple[Any, ...]]] = {table.name: Counter() for table in INDEX_TABLES}
    for rid, resource in resources.items():
        if resource.deleted or resource.content is None:
            continue
        body = orjson.loads(codec.decode(resource.content))
        rows = index_rows_to_values(resource.env, body["resourceType"], rid, extract_index(body))
        for table, values in rows:
            for v in values:
                if "target_rid" in v:  # the rid of the target in the referrer's environment, deleted or not
                    v["target_rid"] = rids.get((resource.env, v["target_type"], v["target_id"]))
            expected[table.name].update(tuple(v.get(c.name) for c in table.columns) for v in values)
    for name, rows in stored.items():
        if rows != expected[name]:
            problems.append(f"{name}: stored rows differ from the current versions' extraction")
    return problems


def test_http_writes_leave_only_current_index_rows(client: TestClient, services: Services) -> None:
    def post(resource: dict[str, Any]) -> str:
        response = client.post(f"{FHIR}/{resource['resourceType']}", json=resource, headers=JSON)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    kept = post({"resourceType": "Patient", "name": [{"family": "Kept"}], "gender": "female"})
    updated = post({"resourceType": "Patient", "name": [{"family": "Before"}], "birthDate": "1970"})
    deleted = post({"resourceType": "Patient", "name": [{"family": "Gone"}]})
    patched = post({"resourceType": "Patient", "name": [{"family": "Patched"}], "gender": "male"})
    observation = post(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "1234-5"}]},
            "subject": {"reference": f"Patient/{kept}"},
            "valueQuantity": {"value": 5, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"},
        }
    )
    put = {"resourceType": "Patient", "id": updated, "name": [{"family": "After"}], "birthDate": "1980-02"}
    assert client.put(f"{FHIR}/Patient/{updated}", json=put, headers=JSON).status_code == 200
    assert client.delete(f"{FHIR}/Patient/{deleted}").status_code in (200, 204)
    ops = [{"op": "replace", "path": "/gender", "value": "other"}]
    headers = {"Content-Type": "application/json-patch+json"}
    assert (
        client.patch(f"{FHIR}/Patient/{patched}", content=orjson.dumps(ops), headers=headers).status_code
        == 200
    )
    assert client.delete(f"{FHIR}/Observation?code=1234-5").status_code in (200, 204)
    failed = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {"resourceType": "Patient", "id": kept, "name": [{"family": "Overwritten"}]},
                "request": {"method": "PUT", "url": f"Patient/{kept}"},
            },
            {
                "resource": {"resourceType": "Patient", "gender": "robot"},
                "request": {"method": "POST", "url": "Patient"},
            },
        ],
    }
    assert client.post(FHIR, json=failed, headers=JSON).status_code == 400

    assert index_problems(services.engine) == []
    assert client.get(f"{FHIR}/Patient?family=overwritten").json().get("total") == 0
    assert client.get(f"{FHIR}/Patient?family=before").json().get("total") == 0
    assert client.get(f"{FHIR}/Observation/{observation}").status_code == 410


def test_loads_and_reloads_leave_only_current_index_rows(services: Services, tmp_path: Path) -> None:
    def load(*resources: dict[str, Any]) -> None:
        source = tmp_path / "data.ndjson"
        source.write_bytes(b"\n".join(orjson.dumps(r) for r in resources) + b"\n")
        report = Loader(services.engine, "sandbox", matcher=services.search, workers=0).run([source])
        assert report.rejected == [], report.rejected

    load(
        {"resourceType": "Patient", "id": "a", "name": [{"family": "First"}], "gender": "male"},
        {"resourceType": "Patient", "id": "b", "name": [{"family": "Same"}]},
    )
    load(
        {"resourceType": "Patient", "id": "a", "name": [{"family": "Second"}], "birthDate": "2001"},
        {"resourceType": "Patient", "id": "b", "name": [{"family": "Same"}]},
        {"resourceType": "Patient", "id": "c", "name": [{"family": "New"}]},
    )
    services.fhir.delete("sandbox", "Patient", "c")
    assert index_problems(services.engine) == []


def test_the_check_sees_an_orphaned_and_a_stale_row(services: Services) -> None:
    services.fhir.update("sandbox", "Patient", "p", {"resourceType": "Patient", "id": "p", "gender": "male"})
    assert index_problems(services.engine) == []
    token = next(t for t in INDEX_TABLES if t.name == "fhir_idx_token")
    with write_transaction(services.engine) as conn:
        conn.execute(insert(token).values(rid=10**9, hkey=1, system=None, code="x", text_norm=None))
    assert any("gone or deleted" in p for p in index_problems(services.engine))
    with write_transaction(services.engine) as conn:
        conn.execute(delete(token).where(token.c.rid == 10**9, token.c.code == "x"))
        conn.execute(update(token).where(token.c.code == "male").values(code="female"))
    assert any("differ" in p for p in index_problems(services.engine))
