"""Deterministic synthetic health-plan data for the sandbox (CARIN BB, Plan-Net, US Drug Formulary, US Core).

>>> from openpayer.seed import generate_plan, write_ndjson
>>> counts = write_ndjson(generate_plan(100, seed=1), Path("out"))  # doctest: +SKIP

Everything is synthetic: names are drawn from public name-frequency lists, cities and their main ZIPs are
real (a large directory spreads offices over the ZIPs next to a city's main one), street addresses are not,
phone numbers are in the fictional 555-01xx range and e-mails use example.com. Every resource carries
``meta.tag`` ``http://openpayer.dev/fhir/CodeSystem/data-origin|synthetic`` and ``meta.security`` ``HTEST``.
"""

from .common import DATA_ORIGIN_SYSTEM, DEFAULT_START, SYNTHETIC_CODE, is_valid_npi
from .generator import (
    PlanContext,
    generate_plan,
    iter_directory,
    iter_formulary,
    iter_member,
    iter_plan_members,
    write_ndjson,
)
from .members import TEST_MEMBERS, TestMember

__all__ = [
    "DATA_ORIGIN_SYSTEM",
    "DEFAULT_START",
    "SYNTHETIC_CODE",
    "TEST_MEMBERS",
    "PlanContext",
    "TestMember",
    "generate_plan",
    "is_valid_npi",
    "iter_directory",
    "iter_formulary",
    "iter_member",
    "iter_plan_members",
    "write_ndjson",
]
