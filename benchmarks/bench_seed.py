"""Throughput of the synthetic health-plan generator, beside baselines measured in the same run.

    .venv/bin/python benchmarks/bench_seed.py --members 1000

Rows (resources per second, best of --repeat runs, single process):

* generate          ``generate_plan`` consumed as a stream (what ``write_ndjson`` iterates)
* generate+dumps    the same, each resource serialized with ``orjson.dumps`` (write_ndjson minus file I/O)
* baseline dumps    ``orjson.dumps`` alone over the same resources, already built
* baseline copy     a loop rebuilding resources from a template (``copy.deepcopy`` of one typical
                    resource of each type in the same mix): the cost of the "copy a template" approach

The target is at least 5,000 resources/s for ``generate``; ``--min-rate`` makes the run fail below it.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from collections.abc import Callable

import orjson

from openpayer.seed import generate_plan


def _best(repeat: int, fn: Callable[[], int]) -> tuple[int, float]:
    best = float("inf")
    count = 0
    for _ in range(repeat):
        start = time.perf_counter()
        count = fn()
        best = min(best, time.perf_counter() - start)
    return count, best


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=1000, help="members to generate (default 1000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="runs per row; the best is reported")
    parser.add_argument("--min-rate", type=float, default=0, help="exit 1 if `generate` is slower than this")
    args = parser.parse_args()

    def generate() -> int:
        return sum(1 for _ in generate_plan(args.members, args.seed))

    def generate_dumps() -> int:
        dumps = orjson.dumps
        return sum(1 for r in generate_plan(args.members, args.seed) if dumps(r))

    resources = list(generate_plan(args.members, args.seed))
    templates: dict[str, dict[str, object]] = {}
    for r in resources:
        templates.setdefault(r["resourceType"], r)
    mix = [templates[r["resourceType"]] for r in resources]

    def dumps_only() -> int:
        dumps = orjson.dumps
        return sum(1 for r in resources if dumps(r))

    def template_copy() -> int:
        deepcopy = copy.deepcopy
        return sum(1 for t in mix if deepcopy(t))

    rows = [
        ("generate", *_best(args.repeat, generate)),
        ("generate+dumps", *_best(args.repeat, generate_dumps)),
        ("baseline dumps", *_best(args.repeat, dumps_only)),
        ("baseline copy", *_best(args.repeat, template_copy)),
    ]
    rate = {name: count / seconds for name, count, seconds in rows}
    print(f"members={args.members} seed={args.seed} resources={len(resources)} "
          f"({len(resources) / max(args.members, 1):.1f} per member)")  # fmt: skip
    print(f"{'row':<16} {'resources':>10} {'seconds':>9} {'resources/s':>12} {'vs generate':>12}")
    for name, count, seconds in rows:
        ratio = rate[name] / rate["generate"]
        print(f"{name:<16} {count:>10} {seconds:>9.3f} {rate[name]:>12,.0f} {ratio:>11.2f}x")
    if args.min_rate and rate["generate"] < args.min_rate:
        print(f"FAIL: generate {rate['generate']:,.0f}/s < {args.min_rate:,.0f}/s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
