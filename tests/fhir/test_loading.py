"""The bulk loader through the engine: files, bundles, references, idempotence, rejections, atomicity."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select
from tests.conftest import shared_path

from openpayer.bootstrap import Services
from openpayer.db import read_connection, write_transaction
from openpayer.fhir.loading import Loader, LoadReport, discover
from openpayer.fhir.storage import codec
from openpayer.fhir.storage.repository import ResourceRepository
from openpayer.fhir.storage.tables import INDEX_TABLES, fhir_history, fhir_resource, idx_reference

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "load"
MINI = FIXTURES / "synthea-mini"
PATIENT_BUNDLE = MINI / "Ann_Example_6a1e9b0c-3f5d-4e1a-9c39-2f7a1d3b8e01.json"
ENV = "sandbox"


def run(
    services: Services, *paths: Path, workers: int = 0, batch_size: int = 400, profile_check: bool = False
) -> LoadReport:
    loader = Loader(
        services.engine,
        ENV,
        matcher=services.search,
        workers=workers,
        batch_size=batch_size,
        profile_check=profile_check,
    )
    return loader.run(list(paths))


def stored(services: Services, rtype: str, rid: str) -> dict[str, Any]:
    return services.fhir.read(ENV, rtype, rid).json()


def count(services: Services, table: Any = fhir_resource) -> int:
    with read_connection(services.engine) as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def ndjson(path: Path, *resources: Any) -> Path:
    path.write_bytes(b"\n".join(r if isinstance(r, bytes) else orjson.dumps(r) for r in resources) + b"\n")
    return path


def patient(pid: str | None, family: str = "Doe", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"resourceType": "Patient", "name": [{"family": family}], **extra}
    if pid is not None:
        body["id"] = pid
    return body


def test_ndjson_is_loaded_validated_stamped_and_indexed(services: Services) -> None:
    report = run(services, FIXTURES / "patients.ndjson")
    assert (report.created, report.updated, report.unchanged, report.rejected) == (4, 0, 0, [])
    body = stored(services, "Patient", "nd-2")
    assert body["meta"]["versionId"] == "1"
    assert body["meta"]["lastUpdated"].endswith("+00:00")
    assert body["name"] == [{"family": "Beta", "given": ["Ben"]}]
    with read_connection(services.engine) as conn:
        assert services.search.match_ids(conn, ENV, "Patient", [("family", "gamma")]) == ["nd-3"]
        assert services.search.match_ids(conn, ENV, "Coverage", [("beneficiary", "Patient/nd-1")]) == [
            "nd-cov-1"
        ]


def test_gzip_files_and_folders_are_walked_in_order(services: Services, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    with gzip.open(folder / "sub" / "b.ndjson.gz", "wb") as out:
        out.write(orjson.dumps(patient("gz-1")) + b"\n" + orjson.dumps(patient("gz-2")) + b"\n")
    (folder / "a.json.gz").write_bytes(gzip.compress(orjson.dumps(patient("single-1"))))
    (folder / "c.json").write_bytes(orjson.dumps(patient("single-2")))
    (folder / "notes.txt").write_text("not FHIR")
    files, notes = discover([folder])
    assert [f.name for f in files] == ["a.json.gz", "c.json", "b.ndjson.gz"]
    assert len(notes) == 1
    assert "notes.txt" in notes[0]
    assert "skipped" in notes[0]
    report = run(services, folder)
    assert report.created == 4
    assert not report.rejected
    assert report.skipped == notes
    assert stored(services, "Patient", "gz-2")["id"] == "gz-2"


def test_bulk_data_files_of_referenced_types_load_first(services: Services, tmp_path: Path) -> None:
    """`<Type>.ndjson` files of the types others point at load before the rest: each reference row is
    written once with its target's rid, rather than waiting for the target and being updated."""
    folder = tmp_path / "export"
    folder.mkdir()
    observation = {
        "resourceType": "Observation",
        "id": "obs-1",
        "status": "final",
        "code": {"text": "weight"},
        "subject": {"reference": "Patient/pat-1"},
        "performer": [{"reference": "Organization/org-1"}],
    }
    ndjson(folder / "Observation.ndjson", observation)
    ndjson(
        folder / "Patient.ndjson", patient("pat-1", managingOrganization={"reference": "Organization/org-1"})
    )
    ndjson(folder / "Organization.ndjson", {"resourceType": "Organization", "id": "org-1", "name": "Plan"})
    ndjson(folder / "Basic.ndjson", {"resourceType": "Basic", "id": "b-1", "code": {"text": "note"}})
    (folder / "practitionerInformation1.json").write_bytes(
        orjson.dumps({"resourceType": "Bundle", "type": "batch", "entry": []})
    )
    files, _ = discover([folder])
    assert [f.name for f in files] == [
        "practitionerInformation1.json",  # Synthea's shared resources first, as before
        "Organization.ndjson",
        "Patient.ndjson",
        "Basic.ndjson",  # the rest by name
        "Observation.ndjson",
    ]
    report = run(services, folder)
    assert report.created == 4
    assert not report.rejected
    with read_connection(services.engine) as conn:
        h = fhir_history.c
        written = [row.type for row in conn.execute(select(h.type).order_by(h.seq))]
        assert written == ["Organization", "Patient", "Basic", "Observation"]
        ref = idx_reference.c
        rows = conn.execute(select(ref.target_type, ref.target_id, ref.target_rid)).all()
    assert {(t, i) for t, i, _ in rows} >= {("Patient", "pat-1"), ("Organization", "org-1")}
    with read_connection(services.engine) as conn:
        assert all(rid == target_rid(conn, t, i) for t, i, rid in rows)


def test_loads_and_single_writes_draw_distinct_increasing_keys(services: Services, tmp_path: Path) -> None:
    """The loader draws resource and history keys itself (SQLite: max + 1 under the write lock); writes
    of the API before, between and after loads get keys after them, and the change log keeps write order."""
    repository = services.fhir.repository
    with write_transaction(services.engine) as conn:
        repository.put(conn, ENV, patient("api-1"))
    run(services, ndjson(tmp_path / "a.ndjson", patient("load-1"), patient("load-2")))
    with write_transaction(services.engine) as conn:
        repository.put(conn, ENV, patient("api-2"))
    run(services, ndjson(tmp_path / "b.ndjson", patient("load-2", family="Changed"), patient("load-3")))
    with write_transaction(services.engine) as conn:
        repository.put(conn, ENV, patient("api-3"))
    with read_connection(services.engine) as conn:
        h, c = fhir_history.c, fhir_resource.c
        log = [(row.id, row.version) for row in conn.execute(select(h.id, h.version).order_by(h.seq))]
        rids = {row.id: row.rid for row in conn.execute(select(c.id, c.rid))}
    assert log == [
        ("api-1", 1),
        ("load-1", 1),
        ("load-2", 1),
        ("api-2", 1),
        ("load-3", 1),  # one transaction: its new resources, then its new versions
        ("load-2", 2),
        ("api-3", 1),
    ]
    assert sorted(rids, key=rids.__getitem__) == ["api-1", "load-1", "load-2", "api-2", "load-3", "api-3"]
    assert stored(services, "Patient", "load-2")["name"] == [{"family": "Changed"}]


def test_transaction_bundle_rewrites_urn_uuid_and_conditional_references(services: Services) -> None:
    report = run(services, MINI)
    assert not report.rejected
    assert report.created == 5
    encounter = stored(services, "Encounter", "b2c4e6f8-1a3b-4c5d-8e9f-0a1b2c3d4e5f")
    assert encounter["subject"]["reference"] == "Patient/6a1e9b0c-3f5d-4e1a-9c39-2f7a1d3b8e01"
    individual = encounter["participant"][0]["individual"]["reference"]
    assert individual == "Practitioner/0000016f-57cb-cdaa-0000-000000000014"
    assert encounter["serviceProvider"]["reference"] == "Organization/ef58ea08-d883-3957-8300-150554edc8fb"
    observation = stored(services, "Observation", "c3d5f7a9-2b4c-4d6e-9fa0-1b2c3d4e5f60")
    assert observation["encounter"]["reference"] == "Encounter/b2c4e6f8-1a3b-4c5d-8e9f-0a1b2c3d4e5f"
    # the Patient had no id: it took the uuid of its urn:uuid fullUrl
    assert (
        stored(services, "Patient", "6a1e9b0c-3f5d-4e1a-9c39-2f7a1d3b8e01")["name"][0]["family"] == "Example"
    )
    with read_connection(services.engine) as conn:
        found = services.search.match_ids(
            conn, ENV, "Encounter", [("practitioner", "Practitioner/0000016f-57cb-cdaa-0000-000000000014")]
        )
    assert found == ["b2c4e6f8-1a3b-4c5d-8e9f-0a1b2c3d4e5f"]


def test_conditional_reference_to_a_later_file_is_resolved_in_a_second_pass(
    services: Services, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(PATIENT_BUNDLE, folder / "a_patient.json")  # sorts before the files it refers to
    info = orjson.loads((MINI / "practitionerInformation1700000000000.json").read_bytes())
    (folder / "z_practitioner.json").write_bytes(orjson.dumps(info["entry"][0]["resource"]))
    (folder / "z_organization.ndjson").write_bytes(orjson.dumps(info["entry"][1]["resource"]) + b"\n")
    report = run(services, folder)
    assert not report.rejected
    assert report.created == 5
    assert report.records == 5
    encounter = stored(services, "Encounter", "b2c4e6f8-1a3b-4c5d-8e9f-0a1b2c3d4e5f")
    assert encounter["serviceProvider"]["reference"] == "Organization/ef58ea08-d883-3957-8300-150554edc8fb"


def test_unresolvable_conditional_reference_rejects_the_transaction(services: Services) -> None:
    report = run(services, PATIENT_BUNDLE)
    assert report.written == 0
    assert count(services) == 0
    reasons = [(r.line, r.reason) for r in report.rejected]
    assert any(line == "entry[1]" and "matched no resource" in reason for line, reason in reasons), reasons
    assert reasons[-1][0] == "-"
    assert "transaction not loaded" in reasons[-1][1]


def test_loading_twice_changes_nothing(services: Services) -> None:
    first = run(services, FIXTURES)
    assert first.created == 9
    assert not first.rejected
    history = count(services, fhir_history)
    index = [count(services, table) for table in INDEX_TABLES]
    second = run(services, FIXTURES)
    assert (second.created, second.updated, second.unchanged, second.rejected) == (0, 0, 9, [])
    assert count(services, fhir_history) == history
    assert [count(services, table) for table in INDEX_TABLES] == index
    with read_connection(services.engine) as conn:
        assert set(conn.execute(select(fhir_resource.c.version)).scalars()) == {1}


def test_changed_content_gets_a_new_version_and_a_new_index(services: Services, tmp_path: Path) -> None:
    source = ndjson(tmp_path / "p.ndjson", patient("p-1", "Before"), patient("p-2", "Same"))
    run(services, source)
    ndjson(source, patient("p-1", "After"), patient("p-2", "Same"))
    report = run(services, source)
    assert (report.created, report.updated, report.unchanged) == (0, 1, 1)
    body = stored(services, "Patient", "p-1")
    assert body["meta"]["versionId"] == "2"
    assert body["name"] == [{"family": "After"}]
    assert services.fhir.vread(ENV, "Patient", "p-1", "1").json()["name"] == [{"family": "Before"}]
    with read_connection(services.engine) as conn:
        assert services.search.match_ids(conn, ENV, "Patient", [("family", "before")]) == []
        assert services.search.match_ids(conn, ENV, "Patient", [("family", "after")]) == ["p-1"]


def test_a_deleted_resource_is_created_again(services: Services, tmp_path: Path) -> None:
    source = ndjson(tmp_path / "p.ndjson", patient("p-1"))
    run(services, source)
    services.fhir.delete(ENV, "Patient", "p-1")
    report = run(services, source)
    assert report.created == 1
    assert stored(services, "Patient", "p-1")["meta"]["versionId"] == "3"


def test_resources_without_ids_get_deterministic_ids(services: Services, tmp_path: Path) -> None:
    source = ndjson(tmp_path / "p.ndjson", patient(None, "Anon"))
    run(services, source)
    again = run(services, source)
    assert again.unchanged == 1
    assert count(services) == 1
    with read_connection(services.engine) as conn:
        (rid,) = conn.execute(select(fhir_resource.c.id)).scalars()
    assert len(rid) == 32
    assert stored(services, "Patient", rid)["name"] == [{"family": "Anon"}]


def test_writes_match_resource_repository_put(services: Services, tmp_path: Path) -> None:
    """The batched writer stores what `ResourceRepository.put` stores: same row, body and index rows."""
    resource = orjson.loads((MINI / "practitionerInformation1700000000000.json").read_bytes())["entry"][0]
    resource = resource["resource"]
    run(services, ndjson(tmp_path / "p.ndjson", resource))
    with write_transaction(services.engine) as conn:
        services.fhir.repository.put(conn, "production", resource)
    with read_connection(services.engine) as conn:
        c = fhir_resource.c
        rows = {row.env: row for row in conn.execute(select(c.env, c.rid, c.version, c.last_updated))}
        assert rows["sandbox"].version == rows["production"].version == 1

        def index_of(table: Any, env: str) -> list[tuple[Any, ...]]:
            columns = [col for col in table.columns if col.name not in ("rid", "hkey")]
            found = [tuple(r) for r in conn.execute(select(*columns).where(table.c.rid == rows[env].rid))]
            return sorted(found, key=repr)

        for table in INDEX_TABLES:
            assert index_of(table, "sandbox") == index_of(table, "production"), table.name
        assert index_of(INDEX_TABLES[1], "sandbox")  # its tokens: there is something to compare
        # neither writes rows for _id or _lastUpdated: searches read the resource row (extract.ROW_PARAMETERS)
        for env in rows:
            updated = [r for r in index_of(INDEX_TABLES[2], env) if rows[env].last_updated in r]
            assert updated == []
            assert (None, resource["id"], None) not in [r[:3] for r in index_of(INDEX_TABLES[1], env)]
        bodies = [ResourceRepository().read(conn, env, "Practitioner", resource["id"]) for env in rows]
    assert bodies[0] is not None
    assert bodies[1] is not None
    strip = [{k: v for k, v in b.json().items() if k != "meta"} for b in bodies]
    assert strip[0] == strip[1]
    assert list(bodies[0].json()) == list(bodies[1].json())
    assert bodies[0].json()["meta"]["versionId"] == bodies[1].json()["meta"]["versionId"] == "1"


def test_rejected_ndjson_lines_are_reported_with_line_and_reason(services: Services, tmp_path: Path) -> None:
    source = ndjson(
        tmp_path / "mixed.ndjson",
        patient("ok-1"),
        b'{"resourceType": "Patient", "id": ',
        b"[1, 2]",
        b'{"id": "no-type"}',
        {"resourceType": "Patient", "id": "bad-1", "gender": "robot", "birthDate": "1970-13-45"},
        {"resourceType": "NotAType", "id": "x"},
        patient("ok-2"),
    )
    report = run(services, source)
    assert report.created == 2
    assert report.records == 7
    by_line = {r.line: r for r in report.rejected}
    assert set(by_line) == {"2", "3", "4", "5", "6"}
    assert all(r.file == str(source) for r in report.rejected)
    assert by_line["2"].reason.startswith("invalid JSON")
    assert "not a FHIR resource" in by_line["3"].reason
    assert "array" in by_line["3"].reason
    assert "no resourceType" in by_line["4"].reason
    bad = by_line["5"]
    assert (bad.resource_type, bad.id) == ("Patient", "bad-1")
    expressions = {expression for expression, _ in bad.issues}
    assert {"Patient.gender", "Patient.birthDate"} <= expressions
    assert by_line["6"].resource_type == "NotAType"


def test_transaction_with_an_invalid_entry_writes_nothing(services: Services, tmp_path: Path) -> None:
    run(services, MINI / "practitionerInformation1700000000000.json")
    before = count(services)
    bundle = orjson.loads(PATIENT_BUNDLE.read_bytes())
    bundle["entry"][2]["resource"]["status"] = "not-a-status"
    bundle["entry"][0]["resource"]["birthDate"] = "yesterday"
    (tmp_path / "bad.json").write_bytes(orjson.dumps(bundle))
    report = run(services, tmp_path / "bad.json")
    assert report.written == 0
    assert count(services) == before
    lines = [r.line for r in report.rejected]
    assert lines == ["entry[0]", "entry[2]", "-"]
    assert report.rejected[1].issues[0][0] == "Observation.status"
    assert "2 of 3 entries rejected" in report.rejected[2].reason


def test_batch_and_collection_entries_load_on_their_own(services: Services, tmp_path: Path) -> None:
    entries = [
        {"resource": patient("b-1"), "request": {"method": "PUT", "url": "Patient/b-1"}},
        {"resource": patient("b-2", gender="robot"), "request": {"method": "PUT", "url": "Patient/b-2"}},
        {"request": {"method": "DELETE", "url": "Patient/b-9"}},
        {"request": {"method": "GET", "url": "Patient/b-1"}},
        {"resource": patient(None, "Urly"), "request": {"method": "PUT", "url": "Patient/from-url"}},
    ]
    (tmp_path / "batch.json").write_bytes(
        orjson.dumps({"resourceType": "Bundle", "type": "batch", "entry": entries})
    )
    collection = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "http://example.org/fhir/Patient/c-1", "resource": patient(None)},
            {"fullUrl": "x"},
        ],
    }
    (tmp_path / "collection.json").write_bytes(orjson.dumps(collection))
    report = run(services, tmp_path)
    assert sorted(r.line for r in report.rejected) == ["entry[1]", "entry[1]", "entry[2]"]
    assert report.created == 3
    assert stored(services, "Patient", "from-url")["name"] == [{"family": "Urly"}]
    assert stored(services, "Patient", "c-1")["id"] == "c-1"


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("broken.json", b'{"resourceType": "Patient",', "invalid JSON"),
        ("other.json", b'{"hello": "world"}', "no resourceType"),
        ("empty.json", b"", "empty file"),
        ("binary.json", bytes(range(256)) * 4, "invalid JSON"),
        ("scalar.json", b"42", "not a FHIR resource"),
        ("bad.json.gz", b"not gzip at all", "cannot read"),
        ("bad.ndjson.gz", b"\x1f\x8b\x08\x00garbage", "cannot read"),
    ],
)
def test_garbage_files_are_reported_not_crashing(
    services: Services, tmp_path: Path, name: str, data: bytes, reason: str
) -> None:
    (tmp_path / name).write_bytes(data)
    report = run(services, tmp_path / name)
    assert len(report.rejected) == 1
    assert report.written == 0
    rejection = report.rejected[0]
    assert rejection.line == "-"
    assert reason in rejection.reason
    assert rejection.file.endswith(name)


def test_worker_processes_and_small_batches(services: Services, tmp_path: Path) -> None:
    source = ndjson(tmp_path / "many.ndjson", *(patient(f"w-{i}", f"Name{i}") for i in range(450)))
    report = run(services, source, workers=2, batch_size=50)
    assert report.created == 450
    assert not report.rejected
    assert count(services) == 450
    assert stored(services, "Patient", "w-449")["name"] == [{"family": "Name449"}]


def test_synthea_sample_loads_with_every_reference_resolved(services: Services) -> None:
    folder = shared_path("fhir-data", "synthea-r4-sample")
    report = run(services, folder, workers=2)
    assert not report.rejected, report.rejected[:3]
    assert report.created == count(services) > 2000
    with read_connection(services.engine) as conn:
        contents = conn.execute(select(fhir_resource.c.content)).scalars().all()
    assert not any(b'"reference":"urn:uuid:' in codec.decode(c) for c in contents)
    # Organizations and Practitioners appear in several files with different content (the info files carry
    # utilization extensions): the later file wins, so a reload writes those again; the rest is unchanged.
    again = run(services, folder, workers=2)
    assert again.created == 0
    assert not again.rejected
    assert again.unchanged > 2000
    assert again.updated < 100


def test_batch_entry_set_aside_keeps_its_bundle_references(services: Services, tmp_path: Path) -> None:
    """A batch entry retried after the other files still has its urn:uuid references to its own Bundle."""
    patient_url = "urn:uuid:11111111-2222-4333-8444-555555555555"
    encounter = {
        "resourceType": "Encounter",
        "id": "enc-1",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": patient_url},
        "serviceProvider": {"reference": "Organization?identifier=https://example.org/org|late"},
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {
                "fullUrl": patient_url,
                "resource": patient(None),
                "request": {"method": "POST", "url": "Patient"},
            },
            {"resource": encounter, "request": {"method": "PUT", "url": "Encounter/enc-1"}},
        ],
    }
    (tmp_path / "a.json").write_bytes(orjson.dumps(bundle))
    organization = {
        "resourceType": "Organization",
        "id": "org-late",
        "identifier": [{"system": "https://example.org/org", "value": "late"}],
    }
    (tmp_path / "b.json").write_bytes(orjson.dumps(organization))
    report = run(services, tmp_path)
    assert not report.rejected
    assert (report.created, report.records) == (3, 3)
    body = stored(services, "Encounter", "enc-1")
    assert body["subject"]["reference"] == "Patient/11111111-2222-4333-8444-555555555555"
    assert body["serviceProvider"]["reference"] == "Organization/org-late"


def test_odd_ids_and_deep_nesting_are_rejected(services: Services, tmp_path: Path) -> None:
    deep = b'{"resourceType":"Patient","id":"deep","extension":' + b"[" * 1000 + b"]" * 1000 + b"}"
    source = ndjson(
        tmp_path / "odd.ndjson",
        {"resourceType": "Patient", "id": 5},
        {"resourceType": "Patient", "id": "not valid!"},
        {"resourceType": "Patient", "id": "x" * 65},
        deep,
    )
    report = run(services, source)
    assert report.written == 0
    reasons = {r.line: r.reason for r in report.rejected}
    assert set(reasons) == {"1", "2", "3", "4"}
    assert "must be a JSON string" in reasons["1"]
    assert "Patient.id" in reasons["2"]
    assert "Patient.id" in reasons["3"]


def _carin_eob(name: str) -> dict[str, Any]:
    path = shared_path("ig", "carin-bb-2.0.0", "example", f"ExplanationOfBenefit-{name}.json")
    return orjson.loads(path.read_bytes().removeprefix(b"\xef\xbb\xbf"))


def test_profile_check_accepts_conforming_carin_examples(services: Services, tmp_path: Path) -> None:
    folder = shared_path("ig", "carin-bb-2.0.0", "example")
    source = tmp_path / "carin"
    source.mkdir()
    for item in sorted(folder.glob("*.json")):
        body = orjson.loads(item.read_bytes().removeprefix(b"\xef\xbb\xbf"))
        if body.get("resourceType") in ("ExplanationOfBenefit", "Coverage", "Patient", "Organization"):
            shutil.copy(item, source / item.name)
    report = run(services, source, profile_check=True)
    assert not report.rejected, report.rejected[:3]
    assert report.created == len(list(source.iterdir())) >= 10
    assert stored(services, "ExplanationOfBenefit", "EOBInpatient1")["meta"]["profile"][0].startswith(
        "http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-ExplanationOfBenefit-Inpatient"
    )


@pytest.mark.parametrize("workers", [0, 2])
def test_profile_check_rejects_instances_violating_their_profile(
    services: Services, tmp_path: Path, workers: int
) -> None:
    good = _carin_eob("EOBOutpatient1")
    bad = _carin_eob("EOBInpatient1")
    bad["id"] = "no-claim-id"
    del bad["identifier"]  # C4BB requires identifier 1..* with the uniqueclaimid slice; base R4 does not
    source = ndjson(tmp_path / "eob.ndjson", good, bad)
    report = run(services, source, workers=workers, profile_check=True)
    assert report.created == 1
    assert len(report.rejected) == 1
    rejection = report.rejected[0]
    assert (rejection.file, rejection.line) == (str(source), "2")
    assert (rejection.resource_type, rejection.id) == ("ExplanationOfBenefit", "no-claim-id")
    assert rejection.reason.startswith("does not conform to its profiles: ExplanationOfBenefit.identifier")
    assert {expression for expression, _ in rejection.issues} == {"ExplanationOfBenefit.identifier"}
    assert any("uniqueclaimid" in text for _, text in rejection.issues)
    assert all("C4BB" in text for _, text in rejection.issues)
    # Without the flag it is structurally valid R4, so it loads.
    report = run(services, source, workers=workers)
    assert report.created == 1
    assert report.unchanged == 1
    assert not report.rejected


def test_profile_check_in_a_transaction_bundle_rejects_it_whole(services: Services, tmp_path: Path) -> None:
    bad = _carin_eob("EOBInpatient1")
    del bad["identifier"]
    entries = [
        {"fullUrl": "urn:uuid:6a1e9b0c-3f5d-4e1a-9c39-2f7a1d3b8e77", "resource": patient(None, "Profiled"),
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": bad, "request": {"method": "PUT", "url": "ExplanationOfBenefit/EOBInpatient1"}},
    ]  # fmt: skip
    source = tmp_path / "tx.json"
    source.write_bytes(orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries}))
    report = run(services, source, profile_check=True)
    assert report.written == 0
    assert [r.line for r in report.rejected] == ["entry[1]", "-"]
    assert "does not conform to its profiles" in report.rejected[0].reason


def test_index_values_are_index_rows_to_values_as_tuples() -> None:
    from openpayer.fhir.search.extract import extract_index
    from openpayer.fhir.storage.repository import index_rows_to_values
    from openpayer.fhir.storage.rows import index_tuples, index_values

    checked = 0
    for item in sorted(shared_path("ig").glob("*/example/*.json")):
        body = orjson.loads(item.read_bytes().removeprefix(b"\xef\xbb\xbf"))
        if not isinstance(body, dict) or "resourceType" not in body:
            continue
        rows = extract_index(body)
        rtype = body["resourceType"]
        assert index_values(ENV, rtype, rows) == index_tuples(index_rows_to_values(ENV, rtype, 0, rows))
        checked += 1
    long = patient("long", "x" * 600, identifier=[{"system": "s" * 300, "value": "v" * 300}])
    rows = extract_index(long)
    assert index_values(ENV, "Patient", rows) == index_tuples(index_rows_to_values(ENV, "Patient", 0, rows))
    assert checked > 100


def test_copy_rows_are_the_copy_text_of_the_index_values() -> None:
    """The workers' direct COPY text (`index_copy_rows`) is what the general path writes, escapes, NULLs,
    truncation and target marks included: on every example instance and on random rows."""
    import random

    from openpayer.fhir.search.extract import extract_index
    from openpayer.fhir.storage.index import (
        DateValue,
        IndexRows,
        NumberValue,
        ReferenceValue,
        StringValue,
        TokenValue,
        UriValue,
    )
    from openpayer.fhir.storage.rows import index_copy_rows, index_copy_text, index_values, reference_targets

    def general(rtype: str, rows: IndexRows) -> tuple[dict[str, bytes], list[Any]]:
        index = index_values(ENV, rtype, rows)
        return index_copy_text(index), reference_targets(index)

    checked = 0
    for item in sorted(shared_path("ig").glob("*/example/*.json")):
        body = orjson.loads(item.read_bytes().removeprefix(b"\xef\xbb\xbf"))
        if isinstance(body, dict) and "resourceType" in body:
            rows = extract_index(body)
            assert index_copy_rows(ENV, body["resourceType"], rows) == general(body["resourceType"], rows)
            checked += 1
    assert checked > 100

    generator = random.Random(11)
    alphabet = ["a", "Z", "é", " ", "N", "\\", "\t", "\n", "\r", "\x01", "\x02"]

    def text(nullable: bool = True) -> Any:
        if nullable and generator.random() < 0.3:
            return None
        return "".join(generator.choices(alphabet, k=generator.randint(0, 3))) * generator.choice([1, 1, 200])

    def some(make: Any) -> list[Any]:
        return [make() for _ in range(generator.randint(0, 3))]

    for _ in range(3000):
        rows = IndexRows(
            strings=some(lambda: StringValue(generator.choice("ab"), text(False), text(False))),
            tokens=some(lambda: TokenValue(generator.choice("ab"), text(), text(), text())),
            dates=some(lambda: DateValue("d", generator.randint(-(10**17), 10**17), 5)),
            numbers=some(lambda: NumberValue("n", generator.choice([0.5, float("nan"), -3.0]))),
            references=some(lambda: ReferenceValue("r", text(), text(), text(), text(), text())),
            uris=some(lambda: UriValue("u", text(False))),
        )
        assert index_copy_rows(ENV, "Basic", rows) == general("Basic", rows), rows


def test_index_rows_written_are_the_extracted_ones(services: Services, tmp_path: Path) -> None:
    """Escapes and numbers survive the writer (COPY text made by the workers on PostgreSQL)."""
    from openpayer.fhir.search.extract import extract_index
    from openpayer.fhir.storage.rows import index_values

    odd = "tab\there \\back\\slash\nnew line\rcr \x01one \\x01 ünïcödé 漢字 \\N"
    resources = [
        patient("esc-1", odd, identifier=[{"system": "urn:x:a\\b", "value": odd}]),
        patient("esc-2", "x" * 600, gender="other"),
        {
            "resourceType": "Observation",
            "id": "num-1",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "1-8", "display": odd}]},
            "valueQuantity": {
                "value": 0.1,
                "unit": "m\tg",
                "system": "http://unitsofmeasure.org",
                "code": "m",
            },
            "effectiveDateTime": "2021-02-03T04:05:06.789+02:00",
        },
        {
            "resourceType": "Observation",
            "id": "num-2",
            "status": "final",
            "code": {"text": "big"},
            "valueQuantity": {"value": 12345678901234567890.5e10},
        },
        {
            "resourceType": "RiskAssessment",
            "id": "ra-1",
            "status": "final",
            "subject": {"reference": "Patient/esc-1"},
            "prediction": [{"probabilityDecimal": 1e-7}],
        },
    ]
    report = run(services, ndjson(tmp_path / "odd.ndjson", *resources), workers=1)
    assert report.created == len(resources), report.rejected
    for body in resources:
        rtype, rid = body["resourceType"], body["id"]
        stamped = stored(services, rtype, rid)
        expected = index_values(ENV, rtype, extract_index(stamped))
        with read_connection(services.engine) as conn:
            # A reference row's mark becomes its target's rid (ra-1's subject, Patient/esc-1, is loaded).
            expected["fhir_idx_reference"] = [
                (*row[:-1], None if row[-1] is None else target_rid(conn, row[1], row[2]))
                for row in expected.get("fhir_idx_reference", [])
            ]
            key = conn.execute(
                select(fhir_resource.c.rid).where(fhir_resource.c.type == rtype, fhir_resource.c.id == rid)
            ).scalar_one()
            for table in INDEX_TABLES:
                columns = [c for c in table.columns if c.name != "rid"]
                found = sorted(
                    (tuple(row) for row in conn.execute(select(*columns).where(table.c.rid == key))), key=repr
                )
                assert found == sorted(expected.get(table.name, []), key=repr), (rid, table.name)


def target_rid(conn: Any, rtype: str, rid: str) -> int:
    query = select(fhir_resource.c.rid).where(
        fhir_resource.c.env == ENV, fhir_resource.c.type == rtype, fhir_resource.c.id == rid
    )
    return int(conn.execute(query).scalar_one())


def test_index_copy_text_escapes_exactly_when_needed() -> None:
    import random

    from openpayer.fhir.storage.rows import _COPY_ESCAPES, _copy_field, index_copy_text

    def escaped(index: dict[str, list[tuple[Any, ...]]]) -> dict[str, bytes]:
        return {
            name: "".join(
                "\x01\t"
                + "\t".join(v.translate(_COPY_ESCAPES) if isinstance(v, str) else _copy_field(v) for v in row)
                + "\n"
                for row in rows
            ).encode()
            for name, rows in index.items()
            if rows
        }

    alphabet = ["a", "Z", "é", " ", "N", "\\", "\t", "\n", "\r", "\x01", "\x02"]
    generator = random.Random(7)
    for _ in range(5000):
        values: list[Any] = [None, 5, -3, 0.5, float("inf"), float("nan")]
        rows = [
            tuple(
                generator.choice([*values, "".join(generator.choices(alphabet, k=generator.randint(0, 4)))])
                for _ in range(generator.randint(1, 4))
            )
            for _ in range(generator.randint(0, 3))
        ]
        assert index_copy_text({"t": rows}) == escaped({"t": rows}), rows
    assert index_copy_text({"t": [(1, None, "a\\b")]})["t"] == b"\x01\t1\t\\N\ta\\\\b\n"


def test_a_load_leaves_postgresql_able_to_answer_from_indexes_alone(
    services: Services, tmp_path: Path
) -> None:
    """The load ends with VACUUM (ANALYZE): pages all-visible (index-only scans for search pages) and
    statistics fresh, where autovacuum would lag behind a bulk load."""
    if services.engine.dialect.name != "postgresql":
        return
    run(services, ndjson(tmp_path / "p.ndjson", *(patient(f"v-{n}") for n in range(50))))
    with read_connection(services.engine) as conn:
        visible, tuples = conn.exec_driver_sql(
            "SELECT relallvisible, reltuples FROM pg_class WHERE oid = 'fhir_resource'::regclass"
        ).one()
        tables = ["fhir_resource", "fhir_history", *(table.name for table in INDEX_TABLES)]
        maintained = conn.exec_driver_sql(
            "SELECT relname FROM pg_stat_user_tables "
            "WHERE relname = ANY(%s) AND last_vacuum IS NOT NULL AND last_analyze IS NOT NULL",
            (tables,),
        ).scalars()
    assert visible > 0
    assert tuples >= 50
    assert sorted(maintained) == sorted(tables)  # each on a connection of its own, the largest first


@pytest.mark.parametrize(("chunk_lines", "read_block"), [(200, 1024 * 1024), (3, 7), (1, 1)])
def test_ndjson_parts_read_by_the_workers_keep_every_line_and_its_number(
    services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_lines: int, read_block: int
) -> None:
    """The workers read their own part of a file: a BOM, blank lines, CRLF line ends and a last line
    without its newline, wherever the parts and the main process's reads end, change nothing."""
    from openpayer.fhir import loading

    monkeypatch.setattr(loading, "CHUNK_LINES", chunk_lines)
    monkeypatch.setattr(loading, "_READ_BLOCK", read_block)
    lines = [orjson.dumps(patient(f"span-{n}", family=f"Span{n}")) for n in range(9)]
    lines[4] = b'{"resourceType": "Patient", "id": "bad one"}'
    text = (
        b"\xef\xbb\xbf"
        + lines[0]
        + b"\r\n\r\n"
        + b"\n".join(lines[1:6])
        + b"\n   \n"
        + b"\r\n".join(lines[6:])
    )
    path = tmp_path / "spans.ndjson"
    path.write_bytes(text)
    report = run(services, path, workers=1)
    assert report.created == 8
    assert [(r.line, r.id) for r in report.rejected] == [("6", "bad one")]  # BOM line 1, blank line 2
    assert report.records == 9
    assert stored(services, "Patient", "span-8")["name"] == [{"family": "Span8"}]
    assert count(services) == 8


def test_empty_and_blank_ndjson_files_are_noted_not_loaded(services: Services, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.ndjson").write_bytes(b"")
    (folder / "b.ndjson").write_bytes(b"\n  \r\n\n")
    report = run(services, folder, workers=1)
    assert report.records == 0
    assert sorted(report.skipped) == [
        f"{folder / 'a.ndjson'}: empty, nothing to load",
        f"{folder / 'b.ndjson'}: empty, nothing to load",
    ]


def test_a_load_analyses_as_it_grows_but_not_just_before_it_ends(services: Services, tmp_path: Path) -> None:
    """`fhir_resource` is analysed when the load has never been analysed and each time the load has
    doubled what it wrote, except when the load will end before doubling again (the end analyses it)."""
    if services.engine.dialect.name != "postgresql":
        return

    def analyses() -> int:
        with read_connection(services.engine) as conn:
            query = "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'fhir_resource'"
            return int(conn.exec_driver_sql(query).scalar_one())

    before = analyses()
    path = ndjson(tmp_path / "grow.ndjson", *(patient(f"g-{n}") for n in range(2000)))
    report = run(services, path, workers=1, batch_size=600)
    assert report.created == 2000
    # never analysed (the first batch), at 1,200 written none (2,000 expected < 2,400), the end of the load
    assert analyses() - before == 2
