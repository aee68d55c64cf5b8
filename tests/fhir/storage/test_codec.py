"""Stored resource bytes: Zstandard frames, and the zlib streams that earlier versions stored."""

from __future__ import annotations

import zlib

import orjson
import pytest
import zstandard
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from openpayer.db import write_transaction
from openpayer.fhir.storage import codec
from openpayer.fhir.storage.tables import fhir_history, fhir_resource

PATIENT = {"resourceType": "Patient", "name": [{"family": "Ruíz", "given": ["Ana"]}], "gender": "female"}


def test_encoded_bytes_are_a_checked_zstandard_frame_of_the_json() -> None:
    raw, compressed = codec.encode(PATIENT)
    assert raw == orjson.dumps(PATIENT)
    assert compressed[:4] == b"\x28\xb5\x2f\xfd"
    assert codec.decode(compressed) == raw
    damaged = bytearray(compressed)
    damaged[-6] ^= 0xFF  # in the payload or its checksum: never silently different bytes
    with pytest.raises(zstandard.ZstdError):
        codec.decode(bytes(damaged))


def test_zlib_streams_from_before_still_decode() -> None:
    raw = orjson.dumps(PATIENT)
    for level in (1, 3, 9):
        assert codec.decode(zlib.compress(raw, level)) == raw


def test_a_resource_stored_as_zlib_is_read_searched_and_updated(client: TestClient, engine: Engine) -> None:
    """A store written before the change: its rows keep their zlib bytes until they are written again."""
    created = client.post("/sandbox/fhir/Patient", json=PATIENT)
    assert created.status_code == 201
    rid = created.json()["id"]
    stored = orjson.dumps(client.get(f"/sandbox/fhir/Patient/{rid}").json())
    with write_transaction(engine) as conn:
        for table in (fhir_resource, fhir_history):
            conn.execute(update(table).where(table.c.id == rid).values(content=zlib.compress(stored, 3)))
    assert client.get(f"/sandbox/fhir/Patient/{rid}").json() == orjson.loads(stored)
    found = client.get("/sandbox/fhir/Patient", params={"family": "ruiz"}).json()
    assert [entry["resource"] for entry in found["entry"]] == [orjson.loads(stored)]
    history = client.get(f"/sandbox/fhir/Patient/{rid}/_history").json()
    assert [entry["resource"]["id"] for entry in history["entry"]] == [rid]
    updated = client.put(f"/sandbox/fhir/Patient/{rid}", json={**PATIENT, "id": rid, "gender": "other"})
    assert updated.status_code == 200
    assert client.get(f"/sandbox/fhir/Patient/{rid}").json()["gender"] == "other"
