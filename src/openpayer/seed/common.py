"""Shared helpers of the seed generator: meta/profiles, the synthetic-data tag, dates, money, NPIs, tables.

Performance notes: resources are built from dict literals (no deepcopy of templates); every resource gets
fresh containers, so callers may mutate what they receive. Dates are handled as proleptic ordinals
(``date.toordinal()``) and formatted through a small cache, so no date parsing happens in the loops.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass
from random import Random
from typing import Any

from .data.cities import CITIES_CSV
from .data.drugs import DRUGS_PSV

Resource = dict[str, Any]

# --- the synthetic-data markers (on every resource) ------------------------------------------------
DATA_ORIGIN_SYSTEM = "http://openpayer.dev/fhir/CodeSystem/data-origin"
SYNTHETIC_CODE = "synthetic"
HTEST_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActReason"

# Identifier systems of the synthetic plan.
SID = "http://openpayer.dev/fhir/sid/"
MEMBER_ID_SYSTEM = SID + "member-id"
UNIQUE_MEMBER_ID_SYSTEM = SID + "unique-member-id"
CLAIM_ID_SYSTEM = SID + "claim-id"
ENCOUNTER_ID_SYSTEM = SID + "encounter-id"
PLAN_ID_SYSTEM = SID + "plan-id"
PAYER_ID_SYSTEM = SID + "payer-id"
TAX_SYSTEM = "urn:oid:2.16.840.1.113883.4.4"

# --- profiles (canonical URLs; CARIN BB requires the |2.0.x version) --------------------------------
C4BB = "http://hl7.org/fhir/us/carin-bb/StructureDefinition/"
PN = "http://hl7.org/fhir/us/davinci-pdex-plan-net/StructureDefinition/"
USDF = "http://hl7.org/fhir/us/davinci-drug-formulary/StructureDefinition/"
USC = "http://hl7.org/fhir/us/core/StructureDefinition/"

P_C4BB_ORG = C4BB + "C4BB-Organization|2.0.0"
P_C4BB_PRACTITIONER = C4BB + "C4BB-Practitioner|2.0.0"
P_C4BB_PATIENT = C4BB + "C4BB-Patient|2.0.0"
P_C4BB_COVERAGE = C4BB + "C4BB-Coverage|2.0.0"
P_C4BB_RELATED = C4BB + "C4BB-RelatedPerson|2.0.0"
P_EOB_INPATIENT = C4BB + "C4BB-ExplanationOfBenefit-Inpatient-Institutional|2.0.0"
P_EOB_OUTPATIENT = C4BB + "C4BB-ExplanationOfBenefit-Outpatient-Institutional|2.0.0"
P_EOB_PROFESSIONAL = C4BB + "C4BB-ExplanationOfBenefit-Professional-NonClinician|2.0.0"
P_EOB_PHARMACY = C4BB + "C4BB-ExplanationOfBenefit-Pharmacy|2.0.0"
P_EOB_ORAL = C4BB + "C4BB-ExplanationOfBenefit-Oral|2.0.0"


def iso(ordinal: int, _cache: dict[int, str] = {}) -> str:  # noqa: B006 - deliberate memo
    """``YYYY-MM-DD`` for a proleptic ordinal, memoised (the generator formats the same days repeatedly)."""
    text = _cache.get(ordinal)
    if text is None:
        text = _cache[ordinal] = dt.date.fromordinal(ordinal).isoformat()
    return text


def instant(ordinal: int, hhmm: str = "12:00") -> str:
    """A FHIR instant on that day (UTC)."""
    return f"{iso(ordinal)}T{hhmm}:00Z"


def meta(profiles: Sequence[str], last_updated: str) -> Resource:
    """``meta`` with profiles, lastUpdated and the synthetic markers (a data-origin tag and HTEST)."""
    return {
        "lastUpdated": last_updated,
        "profile": list(profiles),
        "security": [{"system": HTEST_SYSTEM, "code": "HTEST", "display": "test health data"}],
        "tag": [{"system": DATA_ORIGIN_SYSTEM, "code": SYNTHETIC_CODE, "display": "Synthetic data"}],
    }


def coding(system: str, code: str, display: str | None = None) -> Resource:
    if display is None:
        return {"system": system, "code": code}
    return {"system": system, "code": code, "display": display}


def cc(system: str, code: str, display: str | None = None, text: str | None = None) -> Resource:
    """A CodeableConcept with one coding."""
    if text is None:
        return {"coding": [coding(system, code, display)]}
    return {"coding": [coding(system, code, display)], "text": text}


def ref(target: str, display: str | None = None) -> Resource:
    if display is None:
        return {"reference": target}
    return {"reference": target, "display": display}


def money(cents: int) -> Resource:
    return {"value": cents / 100, "currency": "USD"}


# --- NPI (10 digits; Luhn check digit computed over the 80840 prefix + the first 9 digits) ----------
def npi_check_digit(first9: str) -> str:
    total = 24  # the Luhn contribution of the constant prefix 80840 (CMS NPI standard)
    for position, char in enumerate(reversed(first9)):
        digit = ord(char) - 48
        if position % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def is_valid_npi(npi: str) -> bool:
    """True for a 10-digit NPI whose check digit is right (Luhn over ``80840`` + the NPI)."""
    if len(npi) != 10 or not npi.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed("80840" + npi)):
        digit = ord(char) - 48
        if position % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def make_npi(rng: Random, used: set[str], first: str = "1") -> str:
    while True:
        first9 = first + "".join(str(rng.randrange(10)) for _ in range(8))
        npi = first9 + npi_check_digit(first9)
        if npi not in used:
            used.add(npi)
            return npi


# --- vendored tables ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class City:
    name: str
    state: str
    zip: str
    lat: float
    lon: float
    area_code: str


@dataclass(frozen=True, slots=True)
class Drug:
    key: str
    rxcui: str
    tty: str
    name: str
    ndc: str
    label: str
    brand: bool
    generic_available: bool
    unit: str
    units_30: int
    unit_cost: int  # cents
    sig: str
    chronic: bool
    flags: frozenset[str]
    indications: tuple[str, ...]


def _load_cities() -> tuple[City, ...]:
    rows = csv.DictReader(io.StringIO(CITIES_CSV))
    return tuple(
        City(r["city"], r["state"], r["zip"], float(r["lat"]), float(r["lon"]), r["area_code"]) for r in rows
    )


def _load_drugs() -> tuple[Drug, ...]:
    drugs = []
    for line in DRUGS_PSV.strip().splitlines():
        f = line.split("|")
        drugs.append(
            Drug(
                key=f[0],
                rxcui=f[1],
                tty=f[2],
                name=f[3],
                ndc=f[4],
                label=f[5],
                brand=f[6] == "B",
                generic_available=f[7] == "Y",
                unit=f[8],
                units_30=int(f[9]),
                unit_cost=int(f[10]),
                sig=f[11],
                chronic=f[12] == "chronic",
                flags=frozenset(f[13].split()),
                indications=tuple(f[14].split()),
            )
        )
    return tuple(drugs)


CITIES: tuple[City, ...] = _load_cities()
DRUGS: tuple[Drug, ...] = _load_drugs()
DRUGS_BY_KEY: dict[str, Drug] = {d.key: d for d in DRUGS}


def phone(area_code: str, rng: Random) -> str:
    """A fictional number: the 555-0100..555-0199 range is reserved for fiction in the NANP."""
    return f"({area_code}) 555-01{rng.randrange(100):02d}"


def age_on(birth_ordinal: int, on_ordinal: int) -> int:
    return (on_ordinal - birth_ordinal) * 100 // 36525


DEFAULT_START = dt.date(2025, 1, 1)
