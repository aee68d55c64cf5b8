"""The synthetic health-plan generator: determinism, coherence, counts, markers and conformance."""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import pytest

from openpayer.fhir.profiles import known_profiles, profile_errors
from openpayer.fhir.validation import validate_resource
from openpayer.seed import (
    DATA_ORIGIN_SYSTEM,
    SYNTHETIC_CODE,
    TEST_MEMBERS,
    generate_plan,
    is_valid_npi,
    write_ndjson,
)
from openpayer.seed.common import CITIES

MEMBERS = 20
ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
CARIN_EOB = "http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-ExplanationOfBenefit-"
EOB_TYPES = (
    "Inpatient-Institutional",
    "Outpatient-Institutional",
    "Professional-NonClinician",
    "Pharmacy",
    "Oral",
)

Resource = dict[str, Any]


@pytest.fixture(scope="module")
def plan() -> list[Resource]:
    return list(generate_plan(MEMBERS, seed=1))


@pytest.fixture(scope="module")
def by_ref(plan: list[Resource]) -> dict[str, Resource]:
    return {f"{r['resourceType']}/{r['id']}": r for r in plan}


def _references(node: object) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                found.append(value)
            else:
                found += _references(value)
    elif isinstance(node, list):
        for item in node:
            found += _references(item)
    return found


def _eobs(plan: list[Resource], kind: str | None = None) -> list[Resource]:
    eobs = [r for r in plan if r["resourceType"] == "ExplanationOfBenefit"]
    return [e for e in eobs if kind is None or e["meta"]["profile"][0].startswith(CARIN_EOB + kind)]


def _cents(adjudications: list[Resource]) -> dict[str, int]:
    return {
        a["category"]["coding"][0]["code"]: round(a["amount"]["value"] * 100)
        for a in adjudications
        if "amount" in a
    }


def _ndjson(tmp_path: Path, members: int, seed: int, **kwargs: Any) -> dict[str, bytes]:
    out = tmp_path / f"m{members}-s{seed}-{len(kwargs)}"
    write_ndjson(generate_plan(members, seed, **kwargs), out)
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


# --- determinism ---------------------------------------------------------------------------------------
def test_same_seed_gives_byte_identical_ndjson(tmp_path: Path) -> None:
    first = _ndjson(tmp_path / "a", 8, 42)
    second = _ndjson(tmp_path / "b", 8, 42)
    assert first == second
    assert "ExplanationOfBenefit.ndjson" in first


def test_different_seed_or_start_date_gives_different_data(tmp_path: Path) -> None:
    base = _ndjson(tmp_path / "a", 8, 42)
    assert _ndjson(tmp_path / "b", 8, 43) != base
    shifted = _ndjson(tmp_path / "c", 8, 42, start_date=dt.date(2024, 1, 1))
    assert shifted["Patient.ndjson"] != base["Patient.ndjson"]


def test_a_member_does_not_depend_on_how_many_members_are_generated() -> None:
    small = [r for r in generate_plan(6, seed=9) if r["resourceType"] == "Patient"]
    large = {r["id"]: r for r in generate_plan(12, seed=9) if r["resourceType"] == "Patient"}
    assert [p["id"] for p in small] == [f"member-{i:06d}" for i in range(1, 7)]
    for p in small:
        assert large[p["id"]] == p


def test_test_members_are_stable_across_seeds_and_sizes() -> None:
    for members, seed in ((3, 1), (3, 77), (25, 5)):
        patients = {r["id"]: r for r in generate_plan(members, seed) if r["resourceType"] == "Patient"}
        for t in TEST_MEMBERS:
            p = patients[t.patient_id]
            assert p["name"][0]["family"] == t.family
            assert tuple(p["name"][0]["given"]) == t.given
            assert p["gender"] == t.gender
            assert p["birthDate"] == t.birth_date
            assert any(i["value"] == t.member_id for i in p["identifier"])


# --- shape ---------------------------------------------------------------------------------------------
def test_ids_are_unique_and_valid(plan: list[Resource]) -> None:
    keys = [f"{r['resourceType']}/{r['id']}" for r in plan]
    assert len(keys) == len(set(keys))
    assert all(ID.match(r["id"]) for r in plan)


def test_every_resource_is_marked_synthetic(plan: list[Resource]) -> None:
    for r in plan:
        tags = r["meta"]["tag"]
        assert {"system": DATA_ORIGIN_SYSTEM, "code": SYNTHETIC_CODE} in [
            {"system": t["system"], "code": t["code"]} for t in tags
        ], r["id"]
        assert any(s["code"] == "HTEST" for s in r["meta"]["security"])
        assert r["meta"]["profile"]
        assert r["meta"]["lastUpdated"].endswith("Z")


def test_resources_share_no_mutable_objects(plan: list[Resource]) -> None:
    """Callers may mutate what they receive (e.g. set meta.versionId) without touching other resources."""
    seen: dict[int, str] = {}

    def walk(node: object, owner: str) -> None:
        if isinstance(node, dict | list):
            assert id(node) not in seen, f"an object of {owner} is also in {seen[id(node)]}"
            seen[id(node)] = owner
            for child in node.values() if isinstance(node, dict) else node:
                walk(child, owner)

    for r in plan[:3000]:
        walk(r, f"{r['resourceType']}/{r['id']}")


def test_counts_per_member_and_types(plan: list[Resource]) -> None:
    counts = Counter(r["resourceType"] for r in plan)
    assert 80 <= len(plan) / MEMBERS <= 140, len(plan) / MEMBERS
    assert counts["Patient"] == MEMBERS
    assert counts["Coverage"] == 2 * MEMBERS
    assert counts["Practitioner"] == 20  # 1 per 5 members, at least 20
    expected = (
        "Organization Location HealthcareService OrganizationAffiliation Endpoint PractitionerRole "
        "InsurancePlan Basic MedicationKnowledge RelatedPerson ExplanationOfBenefit Encounter Condition "
        "Observation "
        "DiagnosticReport MedicationRequest Immunization AllergyIntolerance Procedure DocumentReference"
    )
    for rtype in expected.split():
        assert counts[rtype] > 0, rtype
    kinds = Counter(e["meta"]["profile"][0].removeprefix(CARIN_EOB).split("|")[0] for e in _eobs(plan))
    assert set(kinds) == set(EOB_TYPES), kinds


def test_directory_scales_with_members() -> None:
    practitioners = sum(1 for r in generate_plan(150, seed=1) if r["resourceType"] == "Practitioner")
    assert practitioners == 30


def test_dependency_order(plan: list[Resource]) -> None:
    """Every reference points at a resource yielded earlier: payer, directory, formulary, then members."""
    seen: set[str] = set()
    for r in plan:
        for target in _references(r):
            assert target in seen, f"{r['resourceType']}/{r['id']} -> {target}"
        seen.add(f"{r['resourceType']}/{r['id']}")
    order = [r["resourceType"] for r in plan]
    assert order[0] == "Organization"
    assert plan[0]["id"] == "payer"
    assert order.index("Patient") > max(i for i, t in enumerate(order) if t == "Basic")


# --- coherence -----------------------------------------------------------------------------------------
def test_every_reference_resolves(plan: list[Resource], by_ref: dict[str, Resource]) -> None:
    for r in plan:
        for target in _references(r):
            assert re.match(r"^[A-Za-z]+/[A-Za-z0-9\-.]{1,64}$", target), target
            assert target in by_ref, f"{r['id']} -> {target}"


def test_every_eob_has_the_patients_coverage(plan: list[Resource], by_ref: dict[str, Resource]) -> None:
    for eob in _eobs(plan):
        coverage = by_ref[eob["insurance"][0]["coverage"]["reference"]]
        assert coverage["beneficiary"]["reference"] == eob["patient"]["reference"]
        assert coverage["payor"][0]["reference"] == eob["insurer"]["reference"] == "Organization/payer"
        dental = eob["type"]["coding"][0]["code"] == "oral"
        assert (coverage["type"]["coding"][0]["code"] == "DENTPRG") == dental


def test_dependents_have_a_subscriber(plan: list[Resource], by_ref: dict[str, Resource]) -> None:
    coverages = [r for r in plan if r["resourceType"] == "Coverage"]
    relationships = Counter(c["relationship"]["coding"][0]["code"] for c in coverages)
    assert relationships["self"]
    assert relationships["spouse"] or relationships["child"]
    for c in coverages:
        subscriber = by_ref[c["subscriber"]["reference"]]
        if c["relationship"]["coding"][0]["code"] == "self":
            assert subscriber["resourceType"] == "Patient"
            assert c["dependent"] == "00"
        else:
            assert subscriber["resourceType"] == "RelatedPerson"
            assert subscriber["patient"]["reference"] == c["beneficiary"]["reference"]
            assert c["subscriberId"] == subscriber["identifier"][0]["value"].split("-")[0]


def test_pharmacy_claims_use_formulary_drugs(plan: list[Resource], by_ref: dict[str, Resource]) -> None:
    plans = {
        i["value"]: r for r in plan if r["resourceType"] == "InsurancePlan" for i in r.get("identifier", [])
    }
    items: dict[str, set[tuple[str, str]]] = defaultdict(set)  # formulary -> (ndc, rxnorm)
    for r in plan:
        if r["resourceType"] == "Basic":
            formulary = r["extension"][0]["valueReference"]["reference"]
            codes = by_ref[r["subject"]["reference"]]["code"]["coding"]
            rx = next(c["code"] for c in codes if c["system"].endswith("rxnorm"))
            ndc = next(c["code"] for c in codes if c["system"] == "http://hl7.org/fhir/sid/ndc")
            items[formulary].add((ndc, rx))
    pharmacy = _eobs(plan, "Pharmacy")
    assert pharmacy
    for eob in pharmacy:
        coverage = by_ref[eob["insurance"][0]["coverage"]["reference"]]
        plan_code = next(c["value"] for c in coverage["class"] if c["type"]["coding"][0]["code"] == "plan")
        drug_plan = plans[plan_code + "-RX"]
        formulary = drug_plan["coverage"][0]["extension"][0]["valueReference"]["reference"]
        ndc = eob["item"][0]["productOrService"]["coding"][0]["code"]
        assert ndc in {n for n, _ in items[formulary]}, (eob["id"], ndc)
    requests = [r for r in plan if r["resourceType"] == "MedicationRequest"]
    all_rx = {rx for pairs in items.values() for _, rx in pairs}
    assert all(r["medicationCodeableConcept"]["coding"][0]["code"] in all_rx for r in requests)


def test_adjudication_amounts_add_up(plan: list[Resource]) -> None:
    for eob in _eobs(plan):
        lines = [_cents(item.get("adjudication", [])) for item in eob["item"]]
        header = _cents(eob.get("adjudication", []))
        total = _cents(eob["total"])
        for amounts in [*[a for a in lines if a], *([header] if header else []), total]:
            assert amounts["submitted"] >= amounts["eligible"] >= 0
            assert amounts["submitted"] == amounts["eligible"] + amounts["discount"]
            member = amounts["deductible"] + amounts["copay"] + amounts["coinsurance"]
            assert amounts["eligible"] == member + amounts["benefit"]
            assert amounts["memberliability"] == amounts["paidbypatient"] == member
            assert amounts["paidtoprovider"] == amounts["benefit"] >= 0
        summed: Counter[str] = Counter()
        for amounts in [*lines, header]:
            summed.update(amounts)
        assert {k: summed[k] for k in total} == total, eob["id"]
        assert round(eob["payment"]["amount"]["value"] * 100) == total["paidtoprovider"]
        # CARIN institutional rule: amounts at the header or on the items, never both
        if eob["type"]["coding"][0]["code"] == "institutional":
            assert bool(header) != any(lines), eob["id"]


def test_deductible_never_exceeds_the_plan_deductible(
    plan: list[Resource], by_ref: dict[str, Resource]
) -> None:
    paid: Counter[str] = Counter()
    for eob in _eobs(plan):
        if eob["type"]["coding"][0]["code"] != "oral":
            paid[eob["insurance"][0]["coverage"]["reference"]] += _cents(eob["total"])["deductible"]
    for coverage_ref, cents in paid.items():
        limit = next(
            round(c["valueMoney"]["value"] * 100)
            for c in by_ref[coverage_ref]["costToBeneficiary"]
            if c["type"]["coding"][0]["code"] == "deductible"
        )
        assert cents <= limit


def test_dates_are_consistent(plan: list[Resource]) -> None:
    start, end = "2025-01-01", "2025-12-31"
    for eob in _eobs(plan):
        created = eob["created"][:10]
        period = eob["billablePeriod"]
        assert start <= period["start"] <= period["end"] <= created <= end, eob["id"]
        for item in eob["item"]:
            served = item.get("servicedDate") or item["servicedPeriod"]["end"]
            assert served <= created
        received = next(
            s["timingDate"]
            for s in eob["supportingInfo"]
            if s["category"]["coding"][0]["code"] == "clmrecvddate"
        )
        assert period["end"] <= received <= created <= eob["payment"]["date"]
        assert eob["meta"]["lastUpdated"][:10] > created
    for r in plan:
        if r["resourceType"] == "Encounter":
            assert start <= r["period"]["start"] <= r["period"]["end"] <= end + "T23:59:59Z"
        if r["resourceType"] == "Patient":
            assert r["birthDate"] < start


def test_npis_have_valid_check_digits(plan: list[Resource]) -> None:
    assert is_valid_npi("1234567893")  # the CMS example
    assert not is_valid_npi("1234567890")
    npis = [
        i["value"]
        for r in plan
        for i in r.get("identifier", [])
        if i.get("system") == "http://hl7.org/fhir/sid/us-npi"
    ]
    assert len(npis) > 30
    assert all(is_valid_npi(n) for n in npis)
    assert len(npis) == len(set(npis))


def test_documents_carry_a_readable_synthetic_note(plan: list[Resource]) -> None:
    docs = [r for r in plan if r["resourceType"] == "DocumentReference"]
    for doc in docs:
        text = base64.b64decode(doc["content"][0]["attachment"]["data"]).decode()
        assert "synthetic record" in text


def test_locations_use_real_cities_with_coordinates(plan: list[Resource]) -> None:
    for loc in (r for r in plan if r["resourceType"] == "Location" and "position" in r):
        assert re.match(r"^\d{5}$", loc["address"]["postalCode"])
        assert 18 < loc["position"]["latitude"] < 72
        assert -170 < loc["position"]["longitude"] < -66


def test_write_ndjson_returns_counts(tmp_path: Path, plan: list[Resource]) -> None:
    counts = write_ndjson(iter(plan), tmp_path)
    assert counts == dict(sorted(Counter(r["resourceType"] for r in plan).items()))
    for rtype, n in counts.items():
        lines = (tmp_path / f"{rtype}.ndjson").read_bytes().splitlines()
        assert len(lines) == n
        assert all(orjson.loads(line)["resourceType"] == rtype for line in lines)


# --- conformance ---------------------------------------------------------------------------------------
def test_no_error_issues_from_the_validator(plan: list[Resource]) -> None:
    problems = [
        (r["resourceType"], r["id"], issue.diagnostics, issue.expression)
        for r in plan
        for issue in validate_resource(r)
        if issue.is_error
    ]
    assert problems == []


def test_resources_conform_to_their_profiles(plan: list[Resource]) -> None:
    """The profile validator `openpayer load --profile-check` and `$validate?profile=` use."""
    claimed = {p.split("|")[0] for r in plan for p in r["meta"]["profile"]}
    assert claimed <= set(known_profiles()), claimed - set(known_profiles())
    problems = [
        (r["resourceType"], r["id"], issue.expression, issue.diagnostics)
        for r in plan
        for issue in profile_errors(r)
    ]
    assert problems == []


def test_the_directory_can_be_sized_apart_from_the_members() -> None:
    sized = Counter(r["resourceType"] for r in generate_plan(3, seed=2, practitioners=300))
    default = Counter(r["resourceType"] for r in generate_plan(3, seed=2))
    assert sized["Practitioner"] == 300
    assert default["Practitioner"] == 20
    assert sized["PractitionerRole"] > default["PractitionerRole"]
    assert sized["Patient"] == default["Patient"] == 3
    with pytest.raises(ValueError, match="practitioners"):
        list(generate_plan(3, practitioners=5))


def test_a_large_directory_spreads_offices_over_neighbouring_zips() -> None:
    """Eight offices to a ZIP next to the city's main one (a directory search by ZIP then finds tens of
    roles, as in a real plan, not every role of the market); a small directory keeps the main ZIPs."""
    main_zips = {city.zip for city in CITIES}

    def zips(plan: Iterable[Resource]) -> Counter[str]:
        return Counter(
            r["address"]["postalCode"]
            for r in plan
            if r["resourceType"] == "Location" and "postalCode" in r.get("address", {})
        )

    small = zips(generate_plan(3, seed=2))
    assert set(small) <= main_zips
    large = zips(generate_plan(3, seed=2, practitioners=3000))
    assert len(large) > 3 * len(small)
    assert max(large.values()) <= 8
    assert all(any(0 <= int(z) - int(m) < 50 for m in main_zips) for z in large)
