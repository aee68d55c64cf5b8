"""What a loader worker sends back: a `PreparedResource` crosses the process boundary by pickle."""

from __future__ import annotations

import pickle

from openpayer.fhir.storage.bulk import PreparedResource


def test_a_prepared_resource_survives_the_trip_to_the_main_process() -> None:
    prepared = PreparedResource(
        "12",
        "Observation",
        "o1",
        1_700_000_000_000_000,
        b"\x28\xb5\x2f\xfdcompressed",
        {"fhir_idx_token": [(1, "http://loinc.org", "1234-5", None)]},
        {"fhir_idx_reference": b"\x00\t1\tPatient\tp1\n"},
        [("Patient", "p1")],
    )
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(prepared, protocol))
        assert back == prepared
        assert back.targets == [("Patient", "p1")]
        assert back.copy == prepared.copy
    bare = PreparedResource("-", "Patient", "p1", 1, b"x")
    assert pickle.loads(pickle.dumps(bare)) == bare
    assert pickle.loads(pickle.dumps(bare)).index == {}
