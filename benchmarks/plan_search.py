"""What PostgreSQL spends planning and running the directory's searches, statement by statement.

Runs `bench_search`'s drawn searches (the same draws, `bench_search.draw_queries`) through the application in
process, captures the SQL each one sends (as the driver receives it, parameters included), then times every
statement with `EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON)`: the best of `--rounds` runs, then the median,
p95 and total over the statements, for planning and for execution. With `--variant SQL` (a setting for the
measuring session, e.g. `SET enable_mergejoin = off`) each round measures the default session and then the
variant, one after the other, so that the comparison is made in the same minutes; the rows each variant
returns are checked against the default's.

    .venv/bin/python -m benchmarks.plan_search --members 10000 --practitioners 50000 \\
        --database-url postgresql://postgres@127.0.0.1:5432/openpayer_search_bench \\
        --variant "SET enable_mergejoin = off"

The store is `bench_search`'s (run it first with the same `--members`/`--practitioners`; it is loaded here
too when missing). PostgreSQL only. Reads only: nothing in the database is changed.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from benchmarks.bench_search import draw_queries, populate
from benchmarks.common import prepare_database
from openpayer.app import create_app
from openpayer.bootstrap import build_services
from openpayer.config import Settings

Statement = tuple[str, Any]
_PLANNING = re.compile(r"Planning Time: ([\d.]+) ms")
_EXECUTION = re.compile(r"Execution Time: ([\d.]+) ms")


@contextmanager
def driver_statements() -> Iterator[list[Statement]]:
    """Every statement a psycopg connection executes meanwhile (the search's page statements run on the
    driver's connection, not through SQLAlchemy's events)."""
    seen: list[Statement] = []
    original = psycopg.Connection.execute

    def execute(self: Any, query: Any, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        seen.append((query, params))
        return original(self, query, params, *args, **kwargs)

    psycopg.Connection.execute = execute  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        psycopg.Connection.execute = original  # type: ignore[method-assign]


def capture(url: str, paths: list[str]) -> list[Statement]:
    """The search statements (those reading the index tables) the application sends for `paths`."""
    services = build_services(Settings(database_url=url, auth_enforce=False, secret_key="bench"))
    out: list[Statement] = []
    with TestClient(create_app(services=services)) as client, driver_statements() as seen:
        for path in paths:
            seen.clear()
            response = client.get(path)
            if response.status_code != 200:
                raise SystemExit(f"{path}: {response.status_code}")
            out.extend((query, params) for query, params in seen if "fhir_idx" in str(query))
    services.engine.dispose()
    return out


def timings(
    conn: psycopg.Connection[Any], statements: list[Statement], rounds: int
) -> list[tuple[float, float]]:
    """(planning, execution) in ms per statement, each the best of `rounds`."""
    out = []
    for query, params in statements:
        best_plan = best_run = float("inf")
        for _ in range(rounds):
            lines = conn.execute(f"EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON) {query}", params).fetchall()
            text = "\n".join(line[0] for line in lines)
            planned, ran = _PLANNING.search(text), _EXECUTION.search(text)
            if planned is None or ran is None:
                raise SystemExit(f"no planning or execution time in:\n{text}")
            best_plan, best_run = min(best_plan, float(planned.group(1))), min(best_run, float(ran.group(1)))
        out.append((best_plan, best_run))
    return out


def rows(conn: psycopg.Connection[Any], statements: list[Statement]) -> list[list[Any]]:
    return [conn.execute(query, params).fetchall() for query, params in statements]


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"median {statistics.median(ordered):5.2f}  p95 {p95:5.2f}  total {sum(ordered):7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", required=True, help="bench_search's PostgreSQL database")
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--practitioners", type=int, default=None)
    parser.add_argument("--samples", type=int, default=200, help="searches of each kind")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each statement; the best counts")
    parser.add_argument("--repeat", type=int, default=2, help="alternations of default and variants")
    parser.add_argument("--variant", action="append", default=[], help="SQL run first in a variant's session")
    args = parser.parse_args()
    if not args.database_url.startswith("postgresql"):
        raise SystemExit("plan_search measures PostgreSQL's planner: give a postgresql:// URL")

    workdir = Path(tempfile.mkdtemp(prefix="openpayer-plan-search-"))
    try:
        prepare_database(args.database_url, reuse=True)
        folder = populate(args.database_url, args.members, workdir, args.practitioners)
        _, roles, names = draw_queries(folder, args.samples)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    kinds = {
        "PractitionerRole?specialty&chain&_include": capture(
            args.database_url, [f"/sandbox/directory/{q}" for q in roles]
        ),
        "Practitioner?name=<prefix>": capture(args.database_url, [f"/sandbox/directory/{q}" for q in names]),
    }
    sessions = {"default": psycopg.connect(args.database_url, autocommit=True, prepare_threshold=None)}
    for sql in args.variant:
        session = psycopg.connect(args.database_url, autocommit=True, prepare_threshold=None)
        session.execute(sql)
        sessions[sql] = session
    for label, statements in kinds.items():
        expected = rows(sessions["default"], statements)
        for name, session in sessions.items():
            if name != "default" and rows(session, statements) != expected:
                raise SystemExit(f"{label}: {name} returns other rows than the default session")
        print(f"{label}: {len(statements)} statements, best of {args.rounds} runs each (all rows the same)")
        for repeat in range(args.repeat):
            for name, session in sessions.items():
                measured = timings(session, statements, args.rounds)
                print(f"  {repeat + 1}. {name:32s} planning {summary([p for p, _ in measured])}")
                print(f"     {'':32s} execution {summary([e for _, e in measured])}")
    for session in sessions.values():
        session.close()


if __name__ == "__main__":
    main()
