"""The validator's index is vendored built (`validation-index.json.gz`): it must be what the builder makes
of the vendored R4 definitions today, so the validator checks exactly what it did when it built the index
at run time."""

from __future__ import annotations

from openpayer.fhir.validation.builder import build_index_from_vendored, read_vendored_index
from openpayer.fhir.validation.model import build_model, get_model


def test_vendored_index_is_a_fresh_build() -> None:
    # Equal as JSON values and in the same order (orjson keeps it); if not: scripts/vendor_validation_index.py
    vendored = read_vendored_index()
    built = build_index_from_vendored()
    assert vendored == built
    assert list(vendored["nodes"]) == list(built["nodes"])
    for name, node in built["nodes"].items():
        names = [e["name"] for e in node["elements"]]
        assert [e["name"] for e in vendored["nodes"][name]["elements"]] == names, name


def test_the_model_is_built_from_the_vendored_index() -> None:
    model = get_model()
    fresh = build_model(build_index_from_vendored())
    assert model.resource_types == fresh.resource_types
    assert sorted(model.nodes) == sorted(fresh.nodes)
    for name, node in fresh.nodes.items():
        assert list(model.nodes[name].fields) == list(node.fields), name
