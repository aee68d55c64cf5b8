"""Profile validation of one CARIN BB ExplanationOfBenefit, beside structural validation of the same resource.

Structural validation (R4 StructureDefinitions) runs on every write; profile validation
(`$validate?profile=`, `openpayer load --profile-check`) adds the guides' slicing, bindings and invariants
on top of it. The ratio says what the profile check costs relative to the check every write already pays,
measured in the same run. (It replaces a timed assertion that used to sit in the test suite.)

    .venv/bin/python -m benchmarks.bench_profiles [--rounds 200]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from openpayer.fhir.profiles import validate_against_profiles
from openpayer.fhir.validation import validate_resource

EXAMPLE = (
    Path(__file__).resolve().parents[1]
    / ".."
    / "shared"
    / "ig"
    / "carin-bb-2.0.0"
    / "example"
    / "ExplanationOfBenefit-EOBInpatient1.json"
)


def _per_call_ms(
    check: Callable[[dict[str, Any]], object], resource: dict[str, Any], rounds: int
) -> list[float]:
    check(resource)  # compile and warm caches outside the measurement
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        check(resource)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    if not EXAMPLE.exists():
        raise SystemExit(f"{EXAMPLE} is missing: the benchmark needs ../shared beside the repository")
    eob = orjson.loads(EXAMPLE.read_bytes())
    for _ in range(3):  # alternate, so that a noisy neighbour weighs on both figures alike
        structural = _per_call_ms(validate_resource, eob, args.rounds)
        profiles = _per_call_ms(validate_against_profiles, eob, args.rounds)
        s50, p50 = statistics.median(structural), statistics.median(profiles)
        print(
            f"structural validation p50 {s50:.3f} ms | profile validation p50 {p50:.3f} ms "
            f"| ratio {p50 / s50:.1f}x"
        )


if __name__ == "__main__":
    main()
