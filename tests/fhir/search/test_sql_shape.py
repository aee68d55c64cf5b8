"""The SQL shape of ANDed criteria: on SQLite one criterion drives and the others probe by rid.

Results are the same on both databases (the conformance suite runs on both); this checks the shape that
keeps SQLite from materialising every laboratory result of the store for one patient's search.
"""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite

from openpayer.fhir.search.params import parse_query
from openpayer.fhir.search.registry import default_registry
from openpayer.fhir.search.sql import Context, criteria_clauses, drive_order
from openpayer.fhir.storage.tables import fhir_resource


def _sql(query: list[tuple[str, str]], dialect_name: str) -> str:
    parsed = parse_query(
        default_registry(), "Observation", query, strict=True, default_count=50, max_count=1000
    )
    ctx = Context("sandbox", "http://x", dialect_name, None, None, 0)
    dialect = sqlite.dialect() if dialect_name == "sqlite" else postgresql.dialect()
    clauses = criteria_clauses(parsed.criteria, fhir_resource, ctx)
    return " AND ".join(str(c.compile(dialect=dialect)) for c in clauses)


QUERY = [("category", "laboratory"), ("patient", "member-1"), ("date", "ge2020-01-01")]


def test_sqlite_drives_from_the_patient_and_probes_the_rest() -> None:
    sql = _sql(QUERY, "sqlite")
    assert sql.count("IN (SELECT") == 1
    assert "fhir_idx_reference.target_id" in sql.split("IN (SELECT")[1].split(")")[0]
    assert sql.count("EXISTS (SELECT") == 2
    assert sql.count("hkey + ") == 2  # no index on hkey: the probe reaches its rows by rid


def test_postgresql_keeps_every_criterion_as_a_semi_join_for_its_planner() -> None:
    sql = _sql(QUERY, "postgresql")
    assert sql.count("IN (SELECT") == 3
    assert "EXISTS" not in sql


def test_negated_and_missing_criteria_never_drive() -> None:
    sql = _sql([("code:not", "x"), ("status", "final")], "sqlite")
    assert sql.count("NOT (EXISTS") == 1
    assert sql.count("IN (SELECT") == 1
    parsed = parse_query(
        default_registry(),
        "Observation",
        [("subject:missing", "true")],
        strict=True,
        default_count=50,
        max_count=1000,
    )
    assert drive_order(parsed.criteria[0]) == 9


def test_ids_drive_and_every_index_criterion_probes() -> None:
    sql = _sql([("status", "final"), ("_id", "a,b"), ("category", "laboratory")], "sqlite")
    assert "IN (SELECT" not in sql
    assert sql.count("EXISTS (SELECT") == 2
