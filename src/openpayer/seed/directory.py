"""A provider directory (Plan-Net) scaled to the member count.

Every provider organization and practitioner also claims the CARIN BB profile, because claims point at
them (EOB.provider, careTeam.provider, insurer).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from random import Random

from . import codes as C
from .common import (
    CITIES,
    P_C4BB_ORG,
    P_C4BB_PRACTITIONER,
    PN,
    TAX_SYSTEM,
    City,
    Resource,
    cc,
    coding,
    instant,
    iso,
    make_npi,
    meta,
    phone,
    ref,
)
from .data.names import FAMILY, FEMALE_GIVEN, MALE_GIVEN, PRACTICE_WORDS, STREETS
from .plans import (
    NETWORKS,
    PAYER_NAME,
    PAYER_REF,
    PN_CS,
    WEEKDAYS,
    Network,
    address,
    hours,
    new_patients,
    npi_identifier,
)


@dataclass(slots=True)
class Org:
    id: str
    kind: str
    name: str
    npi: str
    tin: str
    city: City
    postal_code: str
    line: str
    phone: str
    lat: float
    lon: float
    networks: tuple[Network, ...]

    @property
    def reference(self) -> str:
        return "Organization/" + self.id


@dataclass(slots=True)
class Practitioner:
    id: str
    npi: str
    given: str
    family: str
    gender: str
    credential: str
    specialty: tuple[str, str, str, str, str, int, str]  # a row of codes.SPECIALTIES
    org: Org
    roles: list[str] = field(default_factory=list)

    @property
    def reference(self) -> str:
        return "Practitioner/" + self.id

    @property
    def display(self) -> str:
        return f"{self.given} {self.family}, {self.credential}"


@dataclass(slots=True)
class Directory:
    markets: tuple[City, ...]
    orgs: list[Org]
    practitioners: list[Practitioner]
    by_kind: dict[str, list[Org]]
    by_specialty: dict[str, list[Practitioner]]
    last_updated: str
    plan_start: str
    plan_end: str

    def org_near(self, kind: str, city: City, pick: int) -> Org:
        """An organization of that kind in the member's market if any (else anywhere); ``pick`` chooses."""
        orgs = self.by_kind[kind]
        local = [o for o in orgs if o.city is city]
        return (local or orgs)[pick % len(local or orgs)]

    def practitioner(self, key: str, city: City, pick: int) -> Practitioner:
        pracs = self.by_specialty[key]
        local = [p for p in pracs if p.org.city is city]
        return (local or pracs)[pick % len(local or pracs)]


ORGS_PER_POSTAL_CODE = 8
POSTAL_CODES_PER_CITY = 50


def city_postal_code(city: City, nth_org: int) -> str:
    """A large directory spreads a city's offices over the neighbouring ZIP codes, eight to a ZIP, as a real
    one does; a small one (the sandbox) keeps every office of a city on its main ZIP."""
    step = ((nth_org - 1) // ORGS_PER_POSTAL_CODE) % POSTAL_CODES_PER_CITY
    return f"{int(city.zip) + step:05d}"


def build_directory(
    members: int, seed: int, start_ord: int, practitioner_count: int | None = None
) -> Directory:
    """Decide the directory (who, where) without building resources: deterministic for (members, seed,
    practitioners). By default one practitioner per five members; a directory benchmark asks for more."""
    rng = Random(seed * 7919 + 17)
    n_markets = max(3, min(25, members // 40))
    home = next(c for c in CITIES if c.name == "Columbus" and c.state == "OH")  # HQ and the test family
    shuffled = [c for c in CITIES if c is not home]
    rng.shuffle(shuffled)
    markets = (home, *shuffled[: n_markets - 1])
    n_prac = practitioner_count if practitioner_count is not None else max(20, members // 5)
    keys = list(C.REQUIRED_SPECIALTIES)
    spec_rows = {row[0]: row for row in C.SPECIALTIES}
    weights = [row[5] for row in C.SPECIALTIES]
    while len(keys) < n_prac:
        keys.append(rng.choices(C.SPECIALTIES, weights)[0][0])
    used_npis: set[str] = set()
    orgs: list[Org] = []
    by_kind: dict[str, list[Org]] = {k: [] for k in C.ORG_KINDS}

    per_city: dict[str, int] = {}

    def new_org(kind: str, city: City) -> Org:
        n = len(by_kind[kind]) + 1
        k = per_city[city.zip] = per_city.get(city.zip, 0) + 1
        word = PRACTICE_WORDS[rng.randrange(len(PRACTICE_WORDS))]
        name = {
            "primary": f"{word} Family Medicine of {city.name}",
            "specialist": f"{city.name} {word} Specialty Group",
            "dental": f"{word} Dental Care of {city.name}",
            "hospital": f"{city.name} {word} Medical Center",
            "pharmacy": f"{word} Pharmacy #{100 + n}",
            "lab": f"{city.name} {word} Clinical Laboratory",
        }[kind]
        nets = NETWORKS if rng.random() < 0.8 or kind in ("hospital", "pharmacy", "lab") else NETWORKS[:1]
        org = Org(
            id=f"org-{kind}-{n:03d}",
            kind=kind,
            name=name,
            npi=make_npi(rng, used_npis, "1"),
            tin=f"{rng.randrange(10, 99)}-{rng.randrange(1000000, 9999999)}",
            city=city,
            postal_code=city_postal_code(city, k),
            line=f"{rng.randrange(100, 9900)} {STREETS[rng.randrange(len(STREETS))]}",
            phone=phone(city.area_code, rng),
            lat=round(city.lat + rng.uniform(-0.04, 0.04), 5),
            lon=round(city.lon + rng.uniform(-0.04, 0.04), 5),
            networks=nets,
        )
        orgs.append(org)
        by_kind[kind].append(org)
        return org

    for i, city in enumerate(markets):  # every market has a hospital early, the first ones a pharmacy
        if i < max(2, n_prac // 40):
            new_org("hospital", city)
    for i in range(max(3, n_prac // 10)):
        new_org("pharmacy", markets[i % n_markets])
    for i in range(max(1, n_prac // 40)):
        new_org("lab", markets[i % n_markets])
    practitioners: list[Practitioner] = []
    by_specialty: dict[str, list[Practitioner]] = {row[0]: [] for row in C.SPECIALTIES}
    open_org: dict[tuple[str, str], tuple[Org, int]] = {}
    for n, key in enumerate(keys, start=1):
        row = spec_rows[key]
        kind = row[4]
        city = markets[(n - 1) % n_markets]
        if kind == "hospital":
            org = by_kind["hospital"][(n - 1) % len(by_kind["hospital"])]
        else:
            slot = open_org.get((kind, city.name))
            if slot is None or slot[1] >= 5:
                slot = (new_org(kind, city), 0)
            org = slot[0]
            open_org[(kind, city.name)] = (org, slot[1] + 1)
        female = rng.random() < 0.5
        prac = Practitioner(
            id=f"practitioner-{n:05d}",
            npi=make_npi(rng, used_npis, "1"),
            given=_pick(FEMALE_GIVEN if female else MALE_GIVEN, rng),
            family=FAMILY[rng.randrange(len(FAMILY))],
            gender="female" if female else "male",
            credential=row[6],
            specialty=row,
            org=org,
        )
        practitioners.append(prac)
        by_specialty[key].append(prac)
    return Directory(
        markets,
        orgs,
        practitioners,
        by_kind,
        by_specialty,
        instant(start_ord - 20, "06:00"),
        iso(start_ord),
        iso(start_ord + 364),
    )


# --- resources ---------------------------------------------------------------------------------------
def provider_resources(d: Directory) -> Iterator[Resource]:
    """Organizations with their endpoint, location and service, practitioners and their roles."""
    lu = d.last_updated
    for org in d.orgs:
        nucc, nucc_display, org_type, category, affil_role, service_type = C.ORG_KINDS[org.kind]
        oid = org.id
        yield {
            "resourceType": "Organization",
            "id": oid,
            "meta": meta((PN + "plannet-Organization", P_C4BB_ORG), lu),
            "identifier": [
                npi_identifier(org.npi),
                {
                    "type": cc("http://terminology.hl7.org/CodeSystem/v2-0203", "TAX"),
                    "system": TAX_SYSTEM,
                    "value": org.tin,
                },
            ],
            "active": True,
            "type": [cc(PN_CS + "OrgTypeCS", org_type)],
            "name": org.name,
            "telecom": [{"system": "phone", "value": org.phone, "use": "work", "rank": 1}],
            "address": [address(org.line, org.city, org.postal_code)],
        }
        yield {
            "resourceType": "Endpoint",
            "id": oid + "-endpoint",
            "meta": meta((PN + "plannet-Endpoint",), lu),
            "extension": [
                {
                    "url": PN + "endpoint-usecase",
                    "extension": [
                        {
                            "url": "type",
                            "valueCodeableConcept": cc(
                                "http://terminology.hl7.org/CodeSystem/v3-ActReason", "TREAT", "treatment"
                            ),
                        }
                    ],
                }
            ],
            "status": "active",
            "connectionType": coding(
                "http://terminology.hl7.org/CodeSystem/endpoint-connection-type", "hl7-fhir-rest"
            ),
            "name": f"{org.name} FHIR endpoint",
            "managingOrganization": ref(org.reference, org.name),
            "payloadType": [cc(PN_CS + "EndpointPayloadTypeCS", "NA")],
            "payloadMimeType": ["application/fhir+json"],
            "address": f"https://fhir.{oid}.example/r4",
        }
        loc_type = {"hospital": "GACH", "pharmacy": "OUTPHARM", "lab": "MBL"}.get(org.kind, "PROFF")
        yield {
            "resourceType": "Location",
            "id": oid + "-location",
            "meta": meta((PN + "plannet-Location",), lu),
            "extension": [
                new_patients(org.networks[0].id),
                {
                    "url": PN + "accessibility",
                    "valueCodeableConcept": cc(PN_CS + "AccessibilityCS", "adacomp", "ADA compliant"),
                },
            ],
            "status": "active",
            "name": org.name,
            "type": [cc("http://terminology.hl7.org/CodeSystem/v3-RoleCode", loc_type)],
            "telecom": [{"system": "phone", "value": org.phone, "use": "work"}],
            "address": address(org.line, org.city, org.postal_code),
            "position": {"longitude": org.lon, "latitude": org.lat},
            "managingOrganization": ref(org.reference, org.name),
            "hoursOfOperation": hours(),
            "endpoint": [ref(f"Endpoint/{oid}-endpoint")],
        }
        yield {
            "resourceType": "HealthcareService",
            "id": oid + "-service",
            "meta": meta((PN + "plannet-HealthcareService",), lu),
            "extension": [
                new_patients(org.networks[0].id),
                {
                    "url": PN + "delivery-method",
                    "extension": [
                        {"url": "type", "valueCodeableConcept": cc(PN_CS + "DeliveryMethodCS", "physical")}
                    ],
                },
            ],
            "active": True,
            "providedBy": ref(org.reference, org.name),
            "category": [cc(PN_CS + "HealthcareServiceCategoryCS", category)],
            "type": [cc("http://terminology.hl7.org/CodeSystem/service-type", *service_type)],
            "specialty": [cc(C.NUCC, nucc, nucc_display)],
            "location": [ref(f"Location/{oid}-location")],
            "name": f"{org.name} - {nucc_display}",
            "telecom": [{"system": "phone", "value": org.phone, "use": "work"}],
            "appointmentRequired": org.kind not in ("pharmacy", "lab", "hospital"),
            "availableTime": [
                {
                    "daysOfWeek": list(WEEKDAYS),
                    "availableStartTime": "08:00:00",
                    "availableEndTime": "17:00:00",
                }
            ],
            "endpoint": [ref(f"Endpoint/{oid}-endpoint")],
        }
        yield {
            "resourceType": "OrganizationAffiliation",
            "id": oid + "-affiliation",
            "meta": meta((PN + "plannet-OrganizationAffiliation",), lu),
            "active": True,
            "organization": ref(PAYER_REF, PAYER_NAME),
            "participatingOrganization": ref(org.reference, org.name),
            "network": [ref("Organization/" + n.id, n.name) for n in org.networks],
            "code": [cc(PN_CS + "OrganizationAffiliationRoleCS", affil_role)],
            "specialty": [cc(C.NUCC, nucc, nucc_display)],
            "location": [ref(f"Location/{oid}-location")],
            "healthcareService": [ref(f"HealthcareService/{oid}-service")],
            "endpoint": [ref(f"Endpoint/{oid}-endpoint")],
        }
    for prac in d.practitioners:
        yield from _practitioner_resources(prac, lu)


def _practitioner_resources(prac: Practitioner, lu: str) -> Iterator[Resource]:
    key, nucc, nucc_display, role_code, _kind, _w, degree = prac.specialty
    org = prac.org
    yield {
        "resourceType": "Practitioner",
        "id": prac.id,
        "meta": meta((PN + "plannet-Practitioner", P_C4BB_PRACTITIONER), lu),
        "identifier": [npi_identifier(prac.npi)],
        "active": True,
        "name": [
            {
                "use": "official",
                "text": prac.display,
                "family": prac.family,
                "given": [prac.given],
                "suffix": [prac.credential],
            }
        ],
        "telecom": [{"system": "phone", "value": org.phone, "use": "work"}],
        "address": [address(org.line, org.city, org.postal_code)],
        "gender": prac.gender,
        "qualification": [
            {
                "extension": [
                    {
                        "url": PN + "practitioner-qualification",
                        "extension": [
                            {"url": "status", "valueCode": "active"},
                            {
                                "url": "whereValid",
                                "valueCodeableConcept": cc("https://www.usps.com/", org.city.state),
                            },
                        ],
                    }
                ],
                "code": cc("http://terminology.hl7.org/CodeSystem/v2-0360", degree, text=degree),
                "issuer": {"display": f"State of {org.city.state} licensing board"},
            },
            {"code": cc(C.NUCC, nucc, nucc_display), "issuer": {"display": "Specialty board"}},
        ],
        "communication": [cc("urn:ietf:bcp:47", "en-US", "English (United States)")],
    }
    for net in org.networks:
        role_id = f"{prac.id}-role-{net.id.removeprefix('network-')}"
        prac.roles.append(role_id)
        yield {
            "resourceType": "PractitionerRole",
            "id": role_id,
            "meta": meta((PN + "plannet-PractitionerRole",), lu),
            "extension": [
                new_patients(net.id, "newpt" if key != "hosp" else "nopt"),
                {"url": PN + "network-reference", "valueReference": ref("Organization/" + net.id, net.name)},
            ],
            "active": True,
            "practitioner": ref(prac.reference, prac.display),
            "organization": ref(org.reference, org.name),
            "code": [cc(PN_CS + "ProviderRoleCS", role_code)],
            "specialty": [cc(C.NUCC, nucc, nucc_display)],
            "location": [ref(f"Location/{org.id}-location")],
            "healthcareService": [ref(f"HealthcareService/{org.id}-service")],
            "telecom": [{"system": "phone", "value": org.phone, "use": "work"}],
            "availableTime": [
                {
                    "daysOfWeek": list(WEEKDAYS),
                    "availableStartTime": "08:30:00",
                    "availableEndTime": "16:30:00",
                }
            ],
            "endpoint": [ref(f"Endpoint/{org.id}-endpoint")],
        }


def _pick(pool: list[str], rng: Random) -> str:
    return pool[rng.randrange(len(pool))]
