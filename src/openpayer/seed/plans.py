"""The payer, its networks and its products (Plan-Net Organization / Network / InsurancePlan)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .common import (
    CITIES,
    P_C4BB_ORG,
    PAYER_ID_SYSTEM,
    PLAN_ID_SYSTEM,
    PN,
    TAX_SYSTEM,
    USDF,
    City,
    Resource,
    cc,
    coding,
    meta,
    npi_check_digit,
    ref,
)

PAYER_ID = "payer"
PAYER_NAME = "OpenPayer Health Plan"
PAYER_REF = "Organization/" + PAYER_ID
PAYER_NPI = "132647011" + npi_check_digit("132647011")
SERVICE_AREA_ID = "service-area-us"
PAYER_ENDPOINT_ID = "payer-fhir-endpoint"
PN_CS = "http://hl7.org/fhir/us/davinci-pdex-plan-net/CodeSystem/"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")


@dataclass(frozen=True, slots=True)
class Network:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Product:
    """A medical or dental product (Plan-Net InsurancePlan) and its cost sharing (cents / percent)."""

    id: str
    name: str
    product_type: tuple[str, str]  # InsuranceProductTypeCS code, display
    plan_type: tuple[str, str]  # InsurancePlanTypeCS code, display
    network: Network
    code: str  # Coverage.class plan value
    medicare: bool
    dental: bool = False
    deductible: int = 0
    oop_max: int = 0
    coinsurance: int = 0  # percent after deductible
    pcp_copay: int = 0
    specialist_copay: int = 0
    er_copay: int = 0
    inpatient_copay: int = 0  # per stay
    formulary_id: str = ""


NETWORKS = (
    Network("network-standard", "OpenPayer Standard Network"),
    Network("network-medicare", "OpenPayer Medicare Advantage Network"),
)
PRODUCTS = (
    Product(
        "plan-silver-hmo",
        "OpenPayer Silver HMO",
        ("qhp", "Qualified Health Plan"),
        ("silver", "Silver-QHP"),
        NETWORKS[0],
        "QHP-SLV-HMO",
        False,
        deductible=300000,
        oop_max=850000,
        coinsurance=30,
        pcp_copay=3000,
        specialist_copay=6000,
        er_copay=35000,
        inpatient_copay=0,
        formulary_id="formulary-commercial",
    ),
    Product(
        "plan-gold-ppo",
        "OpenPayer Gold PPO",
        ("qhp", "Qualified Health Plan"),
        ("gold", "Gold-QHP"),
        NETWORKS[0],
        "QHP-GLD-PPO",
        False,
        deductible=100000,
        oop_max=600000,
        coinsurance=20,
        pcp_copay=2000,
        specialist_copay=4000,
        er_copay=25000,
        inpatient_copay=0,
        formulary_id="formulary-commercial",
    ),
    Product(
        "plan-ma-hmo",
        "OpenPayer Medicare Advantage HMO",
        ("mediadvhmo", "Medicare Advantage HMO"),
        ("lowdeductible", "Low Deductible"),
        NETWORKS[1],
        "MA-HMO-001",
        True,
        deductible=0,
        oop_max=490000,
        coinsurance=20,
        pcp_copay=0,
        specialist_copay=3500,
        er_copay=11000,
        inpatient_copay=150000,
        formulary_id="formulary-medicare",
    ),
    Product(
        "plan-dental",
        "OpenPayer Dental Plus",
        ("dent", "Dental PPO"),
        ("lowdeductible", "Low Deductible"),
        NETWORKS[0],
        "DENTAL-PLUS",
        False,
        dental=True,
        deductible=5000,
        coinsurance=20,
    ),
)
PRODUCTS_BY_ID = {p.id: p for p in PRODUCTS}


def address(line: str, city: City, postal_code: str | None = None) -> Resource:
    return {
        "use": "work",
        "type": "both",
        "line": [line],
        "city": city.name,
        "state": city.state,
        "postalCode": postal_code or city.zip,
        "country": "US",
    }


def npi_identifier(npi: str) -> Resource:
    return {
        "use": "official",
        "type": cc("http://terminology.hl7.org/CodeSystem/v2-0203", "NPI"),
        "system": "http://hl7.org/fhir/sid/us-npi",
        "value": npi,
    }


def hours() -> list[Resource]:
    return [{"daysOfWeek": list(WEEKDAYS), "openingTime": "08:00:00", "closingTime": "17:00:00"}]


def new_patients(network_id: str, accepting: str = "newpt") -> Resource:
    return {
        "url": PN + "newpatients",
        "extension": [
            {
                "url": "acceptingPatients",
                "valueCodeableConcept": cc(PN_CS + "AcceptingPatientsCS", accepting),
            },
            {"url": "fromNetwork", "valueReference": ref("Organization/" + network_id)},
        ],
    }


def payer_resources(last_updated: str, plan_start: str, plan_end: str) -> Iterator[Resource]:
    """Payer organization, its endpoint, the service area, the networks and the Plan-Net products."""
    lu = last_updated
    hq = next(c for c in CITIES if c.name == "Columbus" and c.state == "OH")
    yield {
        "resourceType": "Organization",
        "id": PAYER_ID,
        "meta": meta((P_C4BB_ORG, PN + "plannet-Organization"), lu),
        "extension": [
            {
                "url": PN + "org-description",
                "valueString": "Synthetic health plan for the OpenPayer sandbox; no real members.",
            }
        ],
        "identifier": [
            npi_identifier(PAYER_NPI),
            {
                "type": cc("http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBIdentifierType", "payerid"),
                "system": PAYER_ID_SYSTEM,
                "value": "OPH01",
            },
            {
                "type": cc("http://terminology.hl7.org/CodeSystem/v2-0203", "TAX"),
                "system": TAX_SYSTEM,
                "value": "31-0000001",
            },
        ],
        "active": True,
        "type": [cc(PN_CS + "OrgTypeCS", "payer", "Payer")],
        "name": PAYER_NAME,
        "telecom": [
            {"system": "phone", "value": "(614) 555-0100", "use": "work", "rank": 1},
            {"system": "url", "value": "https://www.openpayer.example", "rank": 2},
        ],
        "address": [address("100 Plan Way", hq)],
    }
    yield {
        "resourceType": "Endpoint",
        "id": PAYER_ENDPOINT_ID,
        "meta": meta((PN + "plannet-Endpoint",), lu),
        "extension": [
            {
                "url": PN + "endpoint-usecase",
                "extension": [
                    {
                        "url": "type",
                        "valueCodeableConcept": cc(
                            "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                            "PATRQT",
                            "patient requested",
                        ),
                    }
                ],
            }
        ],
        "status": "active",
        "connectionType": coding(
            "http://terminology.hl7.org/CodeSystem/endpoint-connection-type", "hl7-fhir-rest"
        ),
        "name": f"{PAYER_NAME} Patient Access and Provider Directory API",
        "managingOrganization": ref(PAYER_REF, PAYER_NAME),
        "payloadType": [cc(PN_CS + "EndpointPayloadTypeCS", "NA")],
        "payloadMimeType": ["application/fhir+json"],
        "address": "https://fhir.openpayer.example/r4",
    }
    yield {
        "resourceType": "Location",
        "id": SERVICE_AREA_ID,
        "meta": meta((PN + "plannet-Location", USDF + "usdf-InsurancePlanLocation"), lu),
        "status": "active",
        "name": "United States service area",
        "description": "Service area of the OpenPayer products (all 50 states and DC).",
        "address": {"country": "US"},
    }
    for net in NETWORKS:
        yield {
            "resourceType": "Organization",
            "id": net.id,
            "meta": meta((PN + "plannet-Network",), lu),
            "active": True,
            "type": [cc(PN_CS + "OrgTypeCS", "ntwk", "Network")],
            "name": net.name,
            "partOf": ref(PAYER_REF, PAYER_NAME),
            "contact": [
                {
                    "purpose": cc("http://terminology.hl7.org/CodeSystem/contactentity-type", "ADMIN"),
                    "name": {"text": "Network Management"},
                    "telecom": [{"system": "phone", "value": "(614) 555-0101", "use": "work"}],
                }
            ],
        }
    year_start, year_end = plan_start, plan_end
    for p in PRODUCTS:
        yield {
            "resourceType": "InsurancePlan",
            "id": p.id,
            "meta": meta((PN + "plannet-InsurancePlan",), lu),
            "identifier": [{"system": PLAN_ID_SYSTEM, "value": p.code}],
            "status": "active",
            "type": [cc(PN_CS + "InsuranceProductTypeCS", *p.product_type)],
            "name": p.name,
            "period": {"start": year_start, "end": year_end},
            "ownedBy": ref(PAYER_REF, PAYER_NAME),
            "administeredBy": ref(PAYER_REF, PAYER_NAME),
            "coverageArea": [ref("Location/" + SERVICE_AREA_ID)],
            "endpoint": [ref("Endpoint/" + PAYER_ENDPOINT_ID)],
            "network": [ref("Organization/" + p.network.id, p.network.name)],
            "plan": [{"type": cc(PN_CS + "InsurancePlanTypeCS", *p.plan_type)}],
        }
