"""`openpayer seed`, once the plan's first slice is being written: migrate, load slice after slice, logins.

`openpayer.cli.seed` parses the command line and forks the first slice's generator before it imports this
module, whose imports (the loader, the database, the FHIR engine) are most of the command's start-up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from openpayer.bootstrap import Store, build_store
from openpayer.cli.progress import PlanProgress
from openpayer.cli.seed_slices import GeneratingFailed, PendingSlice, start_slice
from openpayer.config import Settings
from openpayer.fhir.loading import Loader, LoadReport
from openpayer.fhir.preparing import Rejection
from openpayer.fhir.storage.tables import fhir_resource
from openpayer.members.models import member_account
from openpayer.members.sandbox import SANDBOX_MEMBERS, ensure_sandbox_members
from openpayer.seed import PlanContext

SHOWN_REJECTIONS = 20
# seconds of each phase of the command (the --json summary's "phases"; benchmarks/bench_seed.py). "generate"
# is the time the command waited for the plan's generator: the first slice is written while it starts up.
PHASES = ("migrate", "services", "generate", "load", "logins")


@dataclass
class _Outcome:
    counts: dict[str, int] = field(default_factory=dict)
    report: LoadReport = field(default_factory=LoadReport)
    phases: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))


class SeedRun:
    def __init__(
        self,
        settings: Settings,
        env: str,
        ctx: PlanContext,
        progress: PlanProgress,
        started: float,
        workers: int | None,
        batch_size: int | None,
        fork: bool,
    ) -> None:
        self.settings, self.env, self.ctx, self.progress = settings, env, ctx, progress
        self.started = started
        self.workers, self.batch_size, self.fork = workers, batch_size, fork

    def run(
        self,
        slices: list[list[int | None]],
        first: PendingSlice,
        if_empty: bool,
        logins: bool,
        migrate: bool,
        as_json: bool,
    ) -> None:
        env, progress = self.env, self.progress
        services: Store | None = None
        skipped = False
        outcome = _Outcome()
        created: list[str] = []
        phases = outcome.phases
        try:
            mark = time.perf_counter()
            if migrate:
                from openpayer.migrate import upgrade  # Alembic: not imported by `--no-migrate` (`make run`)

                upgrade(self.settings)
            phases["migrate"] = time.perf_counter() - mark
            mark = time.perf_counter()
            services = build_store(self.settings)
            engine = services.engine
            phases["services"] = time.perf_counter() - mark
            if if_empty and _has_resources(engine, env):
                skipped = True
            else:
                self._seed(services, slices, first, outcome)
            mark = time.perf_counter()
            if logins and not outcome.report.rejected and _test_patients_exist(engine, env):
                created = _ensure_logins(services, env)
            existing = _existing_logins(engine, env)
            phases["logins"] = time.perf_counter() - mark
        except SQLAlchemyError as exc:
            progress.stop()
            _fail(f"[red]Database error:[/red] {str(getattr(exc, 'orig', None) or exc).splitlines()[0]}")
        except GeneratingFailed as exc:
            progress.stop()
            _fail(f"[red]Cannot write the plan into a temporary folder:[/red] {exc}")
        finally:
            first.discard()  # skipped, or a failure before its load: the child is stopped, the folder removed
            progress.stop()
            if services is not None:
                services.close()

        seconds = time.perf_counter() - self.started
        report = outcome.report
        if as_json:
            _echo_json(
                {
                    "env": env,
                    "members": self.ctx.members,
                    "seed": self.ctx.seed,
                    "skipped": skipped,
                    "counts": outcome.counts,
                    "load": report.to_json(),
                    "logins": [
                        {"username": u, "password": p, "patient": f"Patient/{pid}", "created": u in created}
                        for u, p, pid in SANDBOX_MEMBERS
                        if u in existing
                    ],
                    "seconds": round(seconds, 3),
                    "phases": {k: round(v, 3) for k, v in phases.items()},
                }
            )
        else:
            out = Console()
            if skipped:
                out.print(f"{env} already holds resources: not seeded.", highlight=False)
            else:
                _print_summary(out, env, self.ctx, report, seconds)
            if existing:
                _print_logins(out, self.settings, env, existing)
        raise typer.Exit(1 if report.rejected else 0)

    def _seed(
        self, services: Store, slices: list[list[int | None]], first: PendingSlice, outcome: _Outcome
    ) -> None:
        total = outcome.report
        total.timings = dict.fromkeys(("parse", "validate", "index", "write"), 0.0)
        started = time.perf_counter()
        progress = self.progress
        pending: PendingSlice | None = first
        for number, units in enumerate(slices, start=1):
            progress.start_slice(len(units))
            if pending is None:
                services.engine.dispose()  # no pooled connection crosses the fork
                pending = start_slice(self.ctx, units, self.fork)
            try:
                mark = time.perf_counter()
                written = pending.wait(progress.generated)
                outcome.phases["generate"] += time.perf_counter() - mark
                mark = time.perf_counter()
                for rtype, count in written.counts.items():
                    outcome.counts[rtype] = outcome.counts.get(rtype, 0) + count

                def report_progress(done: int, total_bytes: int, resources: int) -> None:
                    progress.loading(done / total_bytes if total_bytes else 1.0, resources)

                options: dict[str, Any] = {} if self.batch_size is None else {"batch_size": self.batch_size}
                loader = Loader(
                    services.engine,
                    self.env,
                    matcher=services.search,
                    workers=self.workers,
                    progress=report_progress,
                    vacuum=number == len(slices),
                    **options,
                )
                report = loader.run([pending.folder])
                outcome.phases["load"] += time.perf_counter() - mark
            finally:
                pending.discard()
            _add(total, report, pending.folder)
            progress.end_slice(report.written + report.unchanged)
            pending = None
        total.seconds = time.perf_counter() - started


def _fail(message: str) -> None:
    Console(stderr=True).print(message)
    raise typer.Exit(1) from None


def _add(total: LoadReport, report: LoadReport, folder: Path) -> None:
    total.files = max(total.files, report.files)
    total.records += report.records
    total.created += report.created
    total.updated += report.updated
    total.unchanged += report.unchanged
    prefix = str(folder) + "/"
    total.rejected.extend(
        Rejection(r.file.removeprefix(prefix), r.line, r.resource_type, r.id, r.reason, r.issues)
        for r in report.rejected
    )
    total.skipped.extend(report.skipped)
    for key, value in report.timings.items():
        total.timings[key] = total.timings.get(key, 0.0) + value


# ---- the environment ------------------------------------------------------------------------------
def _has_resources(engine: Engine, env: str) -> bool:
    query = select(fhir_resource.c.rid).where(fhir_resource.c.env == env, ~fhir_resource.c.deleted).limit(1)
    with engine.connect() as conn:
        return conn.execute(query).first() is not None


def _test_patients_exist(engine: Engine, env: str) -> bool:
    ids = {patient for _, _, patient in SANDBOX_MEMBERS}
    query = select(fhir_resource.c.id).where(
        fhir_resource.c.env == env,
        fhir_resource.c.type == "Patient",
        fhir_resource.c.id.in_(sorted(ids)),
        ~fhir_resource.c.deleted,
    )
    with engine.connect() as conn:
        return {row[0] for row in conn.execute(query)} == ids


def _ensure_logins(services: Store, env: str) -> list[str]:
    missing = {u for u, _, _ in SANDBOX_MEMBERS} - _existing_logins(services.engine, env)
    if not missing:
        return []
    return ensure_sandbox_members(services.members, env)


def _existing_logins(engine: Engine, env: str) -> set[str]:
    names = [u for u, _, _ in SANDBOX_MEMBERS]
    query = select(member_account.c.username).where(
        member_account.c.env == env, member_account.c.username.in_(names)
    )
    with engine.connect() as conn:
        return {row[0] for row in conn.execute(query)}


# ---- output ---------------------------------------------------------------------------------------
def _echo_json(value: dict[str, Any]) -> None:
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def _print_summary(console: Console, env: str, ctx: PlanContext, report: LoadReport, seconds: float) -> None:
    if report.rejected:
        table = Table(title=f"Rejected records ({len(report.rejected)})", title_justify="left")
        for column in ("File", "Line", "Resource", "Reason"):
            table.add_column(column, overflow="fold")
        for item in report.rejected[:SHOWN_REJECTIONS]:
            resource = "/".join(part for part in (item.resource_type, item.id) if part) or "-"
            table.add_row(item.file, item.line, resource, item.reason)
        console.print(table, highlight=False)
        if len(report.rejected) > SHOWN_REJECTIONS:
            console.print(f"… and {len(report.rejected) - SHOWN_REJECTIONS:,} more", highlight=False)
    rate = (report.written + report.unchanged) / seconds if seconds > 0 else 0.0
    console.print(
        f"Seeded {env} with {ctx.members:,} members (seed {ctx.seed}): {report.written:,} resources written "
        f"(created {report.created:,}, updated {report.updated:,}), {report.unchanged:,} unchanged, "
        f"{len(report.rejected):,} rejected, in {seconds:.1f} s ({rate:,.0f} resources/s).",
        style="red" if report.rejected else "green",
        highlight=False,
    )


def _print_logins(console: Console, settings: Settings, env: str, existing: set[str]) -> None:
    base = (settings.public_base_url or f"http://{settings.host}:{settings.port}").rstrip("/")
    table = Table(title=f"Test member logins ({env})", title_justify="left")
    for column in ("username", "password", "patient"):
        table.add_column(column, no_wrap=True)
    for username, password, patient in SANDBOX_MEMBERS:
        if username in existing:
            table.add_row(username, password, f"Patient/{patient}")
    console.print(table, highlight=False)
    console.print(f"FHIR base:       {base}/{env}/fhir", highlight=False, soft_wrap=True)
    console.print(f"Directory:       {base}/{env}/directory", highlight=False, soft_wrap=True)
    console.print(
        f"SMART discovery: {base}/{env}/fhir/.well-known/smart-configuration", highlight=False, soft_wrap=True
    )
    console.print(f"Docs, console:   {base}/docs/", highlight=False, soft_wrap=True)
