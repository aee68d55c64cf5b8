"""Members: families (subscribers and dependents), demographics, Patient, RelatedPerson and Coverage.

Member ``k`` always gets the id ``member-{k:06d}``. Families are drawn in order from a plan-level stream, so
a member's identity depends only on (seed, k), not on how many members are generated. The first three
members (:data:`TEST_MEMBERS`) are fixed for every seed: sign-in test accounts are linked to them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from random import Random

from . import codes as C
from .common import (
    CITIES,
    MEMBER_ID_SYSTEM,
    P_C4BB_COVERAGE,
    P_C4BB_PATIENT,
    P_C4BB_RELATED,
    UNIQUE_MEMBER_ID_SYSTEM,
    USC,
    City,
    Resource,
    age_on,
    cc,
    coding,
    instant,
    iso,
    meta,
    phone,
    ref,
)
from .data.names import FAMILY, FEMALE_GIVEN, MALE_GIVEN, STREETS
from .plans import PAYER_NAME, PAYER_REF, PRODUCTS_BY_ID, Product

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
RACES = (
    ("2106-3", "White", 600),
    ("2054-5", "Black or African American", 130),
    ("2028-9", "Asian", 60),
    ("1002-5", "American Indian or Alaska Native", 10),
    ("2076-8", "Native Hawaiian or Other Pacific Islander", 5),
)
RACE_WEIGHTS = tuple(r[2] for r in RACES)
HISPANIC = ("2135-2", "Hispanic or Latino")
NOT_HISPANIC = ("2186-5", "Not Hispanic or Latino")


@dataclass(frozen=True, slots=True)
class Scenario:
    """What a test member's year must contain (the rest is drawn from the seed as for everyone)."""

    chronic: tuple[str, ...] = ()
    outpatient: str = ""
    inpatient: str = ""
    allergies: int = 0


@dataclass(slots=True)
class Member:
    index: int
    given: tuple[str, ...]
    family: str
    gender: str  # administrative gender: "female" / "male"
    birth: int  # ordinal
    city: City
    line: str
    phone: str
    race: tuple[str, str, int]
    hispanic: bool
    spanish: bool
    product: Product
    relationship: str  # "self" | "spouse" | "child"
    subscriber: Member | None = None  # None for a subscriber
    dependent_no: int = 0
    married: bool = False
    forced: Scenario | None = None  # the fixed story outline of a test member

    @property
    def num(self) -> str:
        return f"{self.index:06d}"

    @property
    def id(self) -> str:
        return f"member-{self.index:06d}"

    @property
    def reference(self) -> str:
        return "Patient/" + self.id

    @property
    def name_text(self) -> str:
        return f"{' '.join(self.given)} {self.family}"

    @property
    def subscriber_id(self) -> str:
        head = self.subscriber or self
        return f"OPH{head.index:09d}"

    @property
    def member_no(self) -> str:
        return f"{self.subscriber_id}-{self.dependent_no:02d}"

    @property
    def female(self) -> bool:
        return self.gender == "female"


@dataclass(frozen=True, slots=True)
class TestMember:
    """A stable sign-in test identity (the same for every seed and member count >= its index)."""

    patient_id: str
    given: tuple[str, ...]
    family: str
    gender: str
    birth_date: str
    member_id: str
    relationship: str
    product_id: str
    city: str
    notes: str


TEST_MEMBERS: tuple[TestMember, ...] = (
    TestMember(
        "member-000001",
        ("Maria", "Elena"),
        "Sandoval",
        "female",
        "1984-03-14",
        "OPH000000001-00",
        "self",
        "plan-gold-ppo",
        "Columbus, OH",
        "Subscriber. Hypertension and hyperlipidemia on maintenance drugs; screening mammogram.",
    ),
    TestMember(
        "member-000002",
        ("David", "James"),
        "Sandoval",
        "male",
        "1982-11-02",
        "OPH000000001-01",
        "spouse",
        "plan-gold-ppo",
        "Columbus, OH",
        "Spouse (dependent). Asthma; an inpatient appendectomy.",
    ),
    TestMember(
        "member-000003",
        ("Sofia", "Grace"),
        "Sandoval",
        "female",
        "2015-06-21",
        "OPH000000001-02",
        "child",
        "plan-gold-ppo",
        "Columbus, OH",
        "Child (dependent). Peanut allergy, well-child visits and immunizations.",
    ),
)
_TEST_SCENARIOS = (
    Scenario(chronic=("htn", "hld"), outpatient="mammogram"),
    Scenario(chronic=("asthma",), inpatient="appendix"),
    Scenario(chronic=("peanut",), allergies=1),
)


def _test_member(k: int, subscriber: Member | None) -> Member:
    t = TEST_MEMBERS[k]
    city = next(c for c in CITIES if f"{c.name}, {c.state}" == t.city)
    return Member(
        index=k + 1,
        given=t.given,
        family=t.family,
        gender=t.gender,
        birth=dt.date.fromisoformat(t.birth_date).toordinal(),
        city=city,
        line="4821 Maple Ave",
        phone="(614) 555-0142",
        race=RACES[0],
        hispanic=True,
        spanish=False,
        product=PRODUCTS_BY_ID[t.product_id],
        relationship=t.relationship,
        subscriber=subscriber,
        dependent_no=k,
        forced=_TEST_SCENARIOS[k],
        married=k < 2,
    )


def iter_members(members: int, seed: int, start_ord: int, markets: tuple[City, ...]) -> Iterator[Member]:
    """Members 1..n in order, subscribers before their dependents."""
    fam_rng = Random(seed * 104729 + 3)
    subscriber: Member | None = None
    for k in range(min(3, members)):
        member = _test_member(k, subscriber)
        subscriber = subscriber or member
        yield member
    index = 4
    while index <= members:
        rng = Random(seed * 1_000_003 + index)
        medicare = fam_rng.random() < 0.3
        size = 1 if medicare else fam_rng.choices((1, 2, 3, 4, 5), (40, 20, 15, 15, 10))[0]
        city = markets[fam_rng.randrange(len(markets))]
        family = FAMILY[rng.randrange(len(FAMILY))]
        line = f"{rng.randrange(100, 9900)} {STREETS[rng.randrange(len(STREETS))]}"
        if medicare:
            product = PRODUCTS_BY_ID["plan-ma-hmo"]
            age = rng.randrange(65, 92)
        else:
            product = PRODUCTS_BY_ID["plan-silver-hmo" if rng.random() < 0.6 else "plan-gold-ppo"]
            age = rng.randrange(22, 64) if size == 1 else rng.randrange(27, 60)
        head = _new_member(index, rng, start_ord, age, family, city, line, product, "self", None, 0)
        has_spouse = size >= 2 and rng.random() < 0.7
        head.married = has_spouse
        yield head
        index += 1
        for dep in range(1, size):
            if index > members:
                return
            rng = Random(seed * 1_000_003 + index)
            if dep == 1 and has_spouse:
                rel, age_dep = "spouse", max(19, age + rng.randrange(-6, 6))
                gender_hint = "male" if head.female else "female"
            else:
                rel, age_dep = "child", rng.randrange(0, min(26, age - 18))
                gender_hint = ""
            dependent = _new_member(
                index,
                rng,
                start_ord,
                age_dep,
                family,
                city,
                line,
                product,
                rel,
                head,
                dep,
                gender_hint,
                head.phone,
            )
            dependent.married = rel == "spouse"
            yield dependent
            index += 1


def _new_member(
    index: int,
    rng: Random,
    start_ord: int,
    age: int,
    family: str,
    city: City,
    line: str,
    product: Product,
    relationship: str,
    subscriber: Member | None,
    dependent_no: int,
    gender: str = "",
    shared_phone: str = "",
) -> Member:
    gender = gender or ("female" if rng.random() < 0.51 else "male")
    pool = FEMALE_GIVEN if gender == "female" else MALE_GIVEN
    given: tuple[str, ...] = (pool[rng.randrange(len(pool))],)
    if rng.random() < 0.6:
        given += (pool[rng.randrange(len(pool))],)
    birth = start_ord - age * 365 - rng.randrange(0, 365) - age // 4
    hispanic = rng.random() < 0.19
    return Member(
        index=index,
        given=given,
        family=family,
        gender=gender,
        birth=birth,
        city=city,
        line=line,
        phone=shared_phone or phone(city.area_code, rng),
        race=rng.choices(RACES, RACE_WEIGHTS)[0],
        hispanic=hispanic,
        spanish=hispanic and rng.random() < 0.3,
        product=product,
        relationship=relationship,
        subscriber=subscriber,
        dependent_no=dependent_no,
    )


# --- resources -----------------------------------------------------------------------------------------
def _address(m: Member, start_ord: int) -> Resource:
    return {
        "use": "home",
        "type": "physical",
        "line": [m.line],
        "city": m.city.name,
        "state": m.city.state,
        "postalCode": m.city.zip,
        "country": "US",
        "period": {"start": iso(start_ord - 700)},
    }


def _name(m: Member) -> Resource:
    return {"use": "official", "text": m.name_text, "family": m.family, "given": list(m.given)}


def _telecom(m: Member, start_ord: int) -> list[Resource]:
    tel: list[Resource] = [{"system": "phone", "value": m.phone, "use": "home", "rank": 1}]
    if age_on(m.birth, start_ord) >= 18:
        mail = f"{m.given[0].lower()}.{m.family.lower()}{m.index}@example.com"
        tel.append({"system": "email", "value": mail, "use": "home", "rank": 2})
    return tel


def _marital(m: Member, start_ord: int) -> tuple[str, str]:
    if m.married:
        return "M", "Married"
    return ("S", "Never Married") if age_on(m.birth, start_ord) < 18 else ("U", "unmarried")


def patient(m: Member, start_ord: int) -> Resource:
    race_code, race_display, _ = m.race
    eth_code, eth_display = HISPANIC if m.hispanic else NOT_HISPANIC
    lang = ("es", "Spanish") if m.spanish else ("en-US", "English (United States)")
    return {
        "resourceType": "Patient",
        "id": m.id,
        "meta": meta((P_C4BB_PATIENT, USC + "us-core-patient"), instant(start_ord - 10, "04:00")),
        "extension": [
            {
                "url": USC + "us-core-race",
                "extension": [
                    {"url": "ombCategory", "valueCoding": coding(C.OMB_RACE, race_code, race_display)},
                    {"url": "text", "valueString": race_display},
                ],
            },
            {
                "url": USC + "us-core-ethnicity",
                "extension": [
                    {"url": "ombCategory", "valueCoding": coding(C.OMB_RACE, eth_code, eth_display)},
                    {"url": "text", "valueString": eth_display},
                ],
            },
            {"url": USC + "us-core-birthsex", "valueCode": "F" if m.female else "M"},
        ],
        "identifier": [
            {
                "use": "usual",
                "type": cc(V2_0203, "MB", "Member Number"),
                "system": MEMBER_ID_SYSTEM,
                "value": m.member_no,
                "assigner": ref(PAYER_REF, PAYER_NAME),
            },
            {
                "type": cc(
                    "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBIdentifierType", "um", "Unique Member ID"
                ),
                "system": UNIQUE_MEMBER_ID_SYSTEM,
                "value": f"U{m.index:011d}",
            },
        ],
        "active": True,
        "name": [_name(m)],
        "telecom": _telecom(m, start_ord),
        "gender": m.gender,
        "birthDate": iso(m.birth),
        "address": [_address(m, start_ord)],
        "maritalStatus": cc(
            "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", *_marital(m, start_ord)
        ),
        "communication": [
            {"language": cc("urn:ietf:bcp:47", lang[0], lang[1], lang[1].split(" ")[0]), "preferred": True}
        ],
    }


def related_person(m: Member, start_ord: int) -> Resource | None:
    """For a dependent: the subscriber, as a person related to the dependent patient."""
    sub = m.subscriber
    if sub is None:
        return None
    if m.relationship == "spouse":
        rel = ("SPS", "spouse")
    else:
        rel = ("MTH", "mother") if sub.female else ("FTH", "father")
    return {
        "resourceType": "RelatedPerson",
        "id": f"relatedperson-{m.num}",
        "meta": meta((P_C4BB_RELATED,), instant(start_ord - 10, "04:00")),
        "identifier": [
            {"type": cc(V2_0203, "MB", "Member Number"), "system": MEMBER_ID_SYSTEM, "value": sub.member_no}
        ],
        "active": True,
        "patient": ref(m.reference, m.name_text),
        "relationship": [cc(ROLE_CODE, *rel)],
        "name": [_name(sub)],
        "telecom": _telecom(sub, start_ord),
        "gender": sub.gender,
        "birthDate": iso(sub.birth),
        "address": [_address(sub, start_ord)],
    }


def coverage_id(m: Member, dental: bool) -> str:
    return f"coverage-{m.num}-{'dental' if dental else 'medical'}"


def coverages(m: Member, start_ord: int, dental_product: Product) -> Iterator[Resource]:
    if m.subscriber is None:
        holder = (m.reference, m.name_text)
    else:
        holder = (f"RelatedPerson/relatedperson-{m.num}", m.subscriber.name_text)
    rel = {"self": ("self", "Self"), "spouse": ("spouse", "Spouse"), "child": ("child", "Child")}[
        m.relationship
    ]
    for product in (m.product, dental_product):
        p = product
        cost: list[Resource] = []
        if p.dental:
            kind = cc("http://terminology.hl7.org/CodeSystem/v3-ActCode", "DENTPRG", "dental program")
            group = ("DENT-GRP-01", "OpenPayer Dental Group")
        else:
            kind = cc(
                "http://terminology.hl7.org/CodeSystem/v3-ActCode", "HIP", "health insurance plan policy"
            )
            group = (
                ("MA-GRP-01", "OpenPayer Medicare") if p.medicare else ("IFP-GRP-01", "Individual and Family")
            )
            copay_cs = "http://terminology.hl7.org/CodeSystem/coverage-copay-type"
            for code, display, cents in (
                ("gpvisit", "GP Office Visit", p.pcp_copay),
                ("spvisit", "Specialist Office Visit", p.specialist_copay),
                ("emergency", "Emergency", p.er_copay),
                ("deductible", "Deductible", p.deductible),
                ("maxoutofpocket", "Maximum out of pocket", p.oop_max),
            ):
                cost.append(
                    {
                        "type": cc(copay_cs, code, display),
                        "valueMoney": {"value": cents / 100, "currency": "USD"},
                    }
                )
        resource: Resource = {
            "resourceType": "Coverage",
            "id": coverage_id(m, p.dental),
            "meta": meta((P_C4BB_COVERAGE,), instant(start_ord - 10, "04:00")),
            "identifier": [
                {
                    "type": cc(V2_0203, "MB", "Member Number"),
                    "system": MEMBER_ID_SYSTEM,
                    "value": m.member_no,
                    "assigner": ref(PAYER_REF, PAYER_NAME),
                }
            ],
            "status": "active",
            "type": kind,
            "policyHolder": ref(*holder),
            "subscriber": ref(*holder),
            "subscriberId": m.subscriber_id,
            "beneficiary": ref(m.reference, m.name_text),
            "dependent": f"{m.dependent_no:02d}",
            "relationship": cc("http://terminology.hl7.org/CodeSystem/subscriber-relationship", *rel),
            "period": {"start": iso(start_ord), "end": iso(start_ord + 364)},
            "payor": [ref(PAYER_REF, PAYER_NAME)],
            "class": [
                {
                    "type": cc("http://terminology.hl7.org/CodeSystem/coverage-class", "group", "Group"),
                    "value": group[0],
                    "name": group[1],
                },
                {
                    "type": cc("http://terminology.hl7.org/CodeSystem/coverage-class", "plan", "Plan"),
                    "value": p.code,
                    "name": p.name,
                },
            ],
            "network": p.network.name,
        }
        if cost:
            resource["costToBeneficiary"] = cost
        yield resource
