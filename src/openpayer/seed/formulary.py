"""Drug formularies per the US Drug Formulary IG 2.0.1 (PayerInsurancePlan, Formulary, FormularyItem,
FormularyDrug, InsurancePlanLocation) built from the vendored drug table, which pharmacy claims use too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from . import codes as C
from .common import (
    DRUGS,
    PLAN_ID_SYSTEM,
    USDF,
    Drug,
    Resource,
    cc,
    coding,
    meta,
    ref,
)
from .plans import PAYER_NAME, PAYER_REF, PRODUCTS, SERVICE_AREA_ID, Product

CS = "http://hl7.org/fhir/us/davinci-drug-formulary/CodeSystem/"
TIER_CS = CS + "usdf-DrugTierCS-TEMPORARY-TRIAL-USE"
BENEFIT_TYPE_CS = CS + "usdf-PharmacyBenefitTypeCS-TEMPORARY-TRIAL-USE"
COST_TYPE_CS = CS + "usdf-BenefitCostTypeCS-TEMPORARY-TRIAL-USE"
COST_SHARE_CS = CS + "usdf-CostShareOptionCS-TEMPORARY-TRIAL-USE"
DRUG_PLAN_TYPE = ("http://terminology.hl7.org/CodeSystem/insurance-plan-type", "drug", "Drug")
TIERS = {
    "generic": "Generic",
    "preferred-brand": "Preferred Brand",
    "non-preferred-brand": "Non-preferred Brand",
    "specialty": "Specialty",
}
BENEFIT_TYPES = {
    "1-month-in-retail": "1 month in network retail",
    "3-month-in-mail": "3 month in network mail order",
}


@dataclass(frozen=True, slots=True)
class Formulary:
    id: str
    name: str
    medicare: bool
    copays: dict[str, int]  # tier -> copay in cents for a 1-month retail fill (0 when coinsurance applies)
    coinsurance: dict[str, int]  # tier -> percent

    def tier(self, drug: Drug) -> str:
        if not drug.brand:
            return "generic"
        if "PA" in drug.flags and drug.unit_cost * drug.units_30 >= 60000:
            return "specialty"
        return "non-preferred-brand" if drug.generic_available else "preferred-brand"

    def cost_share(self, drug: Drug, allowed: int, mail_90: bool) -> tuple[int, int]:
        """(copay, coinsurance) in cents the member pays for a fill with that allowed amount."""
        tier = self.tier(drug)
        percent = self.coinsurance.get(tier, 0)
        if percent:
            return 0, min(allowed, allowed * percent // 100)
        copay = self.copays[tier] * (2 if mail_90 else 1)
        return min(allowed, copay), 0


FORMULARIES = {
    "formulary-commercial": Formulary(
        "formulary-commercial",
        "OpenPayer Commercial Formulary",
        False,
        {"generic": 1000, "preferred-brand": 4000, "non-preferred-brand": 8000, "specialty": 0},
        {"specialty": 25},
    ),
    "formulary-medicare": Formulary(
        "formulary-medicare",
        "OpenPayer Medicare Part D Formulary",
        True,
        {"generic": 500, "preferred-brand": 4700, "non-preferred-brand": 10000, "specialty": 0},
        {"specialty": 25},
    ),
}


def drug_id(drug: Drug) -> str:
    return "formularydrug-" + drug.rxcui


def _drug(d: Drug, lu: str) -> Resource:
    return {
        "resourceType": "MedicationKnowledge",
        "id": drug_id(d),
        "meta": meta((USDF + "usdf-FormularyDrug",), lu),
        "code": {
            "coding": [coding(C.RXNORM, d.rxcui, d.name), coding(C.NDC, d.ndc, d.label)],
            "text": d.name,
        },
        "status": "active",
        "synonym": [d.label],
    }


def _item(f: Formulary, d: Drug, lu: str, plan_start: str, plan_end: str) -> Resource:
    tier = f.tier(d)
    ext: list[Resource] = [
        {
            "url": USDF + "usdf-FormularyReference-extension",
            "valueReference": ref("InsurancePlan/" + f.id, f.name),
        },
        {"url": USDF + "usdf-AvailabilityStatus-extension", "valueCode": "active"},
        {
            "url": USDF + "usdf-AvailabilityPeriod-extension",
            "valuePeriod": {"start": plan_start, "end": plan_end},
        },
        {"url": USDF + "usdf-DrugTierID-extension", "valueCodeableConcept": cc(TIER_CS, tier, TIERS[tier])},
        {
            "url": USDF + "usdf-PharmacyBenefitType-extension",
            "valueCodeableConcept": cc(
                BENEFIT_TYPE_CS, "1-month-in-retail", BENEFIT_TYPES["1-month-in-retail"]
            ),
        },
    ]
    if d.chronic:
        ext.append(
            {
                "url": USDF + "usdf-PharmacyBenefitType-extension",
                "valueCodeableConcept": cc(
                    BENEFIT_TYPE_CS, "3-month-in-mail", BENEFIT_TYPES["3-month-in-mail"]
                ),
            }
        )
    ext.append({"url": USDF + "usdf-PriorAuthorization-extension", "valueBoolean": "PA" in d.flags})
    ext.append({"url": USDF + "usdf-StepTherapyLimit-extension", "valueBoolean": "ST" in d.flags})
    ext.append({"url": USDF + "usdf-QuantityLimit-extension", "valueBoolean": "QL" in d.flags})
    return {
        "resourceType": "Basic",
        "id": f"formularyitem-{f.id.removeprefix('formulary-')}-{d.rxcui}",
        "meta": meta((USDF + "usdf-FormularyItem",), lu),
        "extension": ext,
        "code": cc(CS + "usdf-InsuranceItemTypeCS", "formulary-item", "Formulary Item"),
        "subject": ref("MedicationKnowledge/" + drug_id(d), d.name),
    }


def _cost(f: Formulary, tier: str, mail: bool) -> list[Resource]:
    percent = f.coinsurance.get(tier, 0)
    copay = f.copays[tier] * (2 if mail else 1)
    copay_option = "copay-not-applicable" if percent else ("no-charge" if copay == 0 else "charge")
    return [
        {
            "type": cc(COST_TYPE_CS, "copay", "Copay"),
            "qualifiers": [cc(COST_SHARE_CS, copay_option)],
            "value": {"value": copay / 100, "unit": "$", "system": "urn:iso:std:iso:4217", "code": "USD"},
        },
        {
            "type": cc(COST_TYPE_CS, "coinsurance", "Coinsurance"),
            "qualifiers": [cc(COST_SHARE_CS, "charge" if percent else "coinsurance-not-applicable")],
            "value": {"value": percent, "system": "http://unitsofmeasure.org", "code": "%"},
        },
    ]


def _payer_plan(p: Product, f: Formulary, lu: str, plan_start: str, plan_end: str) -> Resource:
    specific = []
    for code, display in BENEFIT_TYPES.items():
        mail = code.startswith("3-month")
        benefits = [{"type": cc(TIER_CS, tier, TIERS[tier]), "cost": _cost(f, tier, mail)} for tier in TIERS]
        specific.append({"category": cc(BENEFIT_TYPE_CS, code, display), "benefit": benefits})
    return {
        "resourceType": "InsurancePlan",
        "id": p.id + "-drug",
        "meta": meta((USDF + "usdf-PayerInsurancePlan",), lu),
        "identifier": [{"system": PLAN_ID_SYSTEM, "value": p.code + "-RX"}],
        "status": "active",
        "type": [
            cc(
                "http://hl7.org/fhir/us/davinci-pdex-plan-net/CodeSystem/InsuranceProductTypeCS",
                *p.product_type,
            )
        ],
        "name": f"{p.name} prescription drug benefit",
        "period": {"start": plan_start, "end": plan_end},
        "ownedBy": ref(PAYER_REF, PAYER_NAME),
        "administeredBy": ref(PAYER_REF, PAYER_NAME),
        "coverageArea": [ref("Location/" + SERVICE_AREA_ID)],
        "contact": [
            {
                "purpose": cc("http://terminology.hl7.org/CodeSystem/contactentity-type", "PATINF"),
                "telecom": [{"system": "phone", "value": "(614) 555-0102"}],
            },
            {
                "purpose": cc(CS + "usdf-PlanContactTypeCS-TEMPORARY-TRIAL-USE", "FORMULARY"),
                "name": {"text": f"{f.name} website"},
                "telecom": [{"system": "url", "value": f"https://www.openpayer.example/formulary/{f.id}"}],
            },
        ],
        "coverage": [
            {
                "extension": [
                    {
                        "url": USDF + "usdf-FormularyReference-extension",
                        "valueReference": ref("InsurancePlan/" + f.id, f.name),
                    }
                ],
                "type": cc("http://terminology.hl7.org/CodeSystem/v3-ActCode", "DRUGPOL"),
                "benefit": [{"type": cc(*DRUG_PLAN_TYPE)}],
            },
        ],
        "plan": [{"type": cc(*DRUG_PLAN_TYPE), "specificCost": specific}],
    }


def formulary_resources(lu: str, plan_start: str, plan_end: str) -> Iterator[Resource]:
    """Formularies, the drugs (MedicationKnowledge), the formulary items and the drug benefit plans."""
    for f in FORMULARIES.values():
        yield {
            "resourceType": "InsurancePlan",
            "id": f.id,
            "meta": meta((USDF + "usdf-Formulary",), lu),
            "identifier": [{"system": PLAN_ID_SYSTEM, "value": f.id.upper()}],
            "status": "active",
            "type": [cc("http://terminology.hl7.org/CodeSystem/v3-ActCode", "DRUGPOL")],
            "name": f.name,
            "period": {"start": plan_start, "end": plan_end},
        }
    for d in DRUGS:
        yield _drug(d, lu)
    for f in FORMULARIES.values():
        for d in DRUGS:
            yield _item(f, d, lu, plan_start, plan_end)
    for p in PRODUCTS:
        if p.formulary_id:
            yield _payer_plan(p, FORMULARIES[p.formulary_id], lu, plan_start, plan_end)
