"""`openpayer seed ENV --members N`: generate the synthetic health plan and load it into an environment.

The plan comes from `openpayer.seed.generate_plan` (deterministic for `--members`, `--seed`,
`--start-date`). It is written as NDJSON into a temporary folder, one slice of members at a time, and each
slice is loaded with the same `Loader` as `openpayer load` (same validation, ids and search index), so
seeding twice with the same arguments finds every resource unchanged and writes no new version.

- `--ndjson DIR` writes the NDJSON files (one `<Type>.ndjson` per resource type) and loads nothing.
- `--if-empty` does nothing when the environment already holds resources (what `make run` uses).
- The published test logins (`openpayer.members.sandbox`) are created in `sandbox` after loading; never in
  `production`. Seeding `production` is refused unless `--allow-production` is given, and even then no
  login is created there.

Exit codes: 0 done (or skipped), 1 when a record was rejected or the database failed, 2 for a usage error.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.console import Console
from rich.progress import TaskID
from rich.table import Table
from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from openpayer.accounts.passwords import hash_password
from openpayer.bootstrap import Store, build_store
from openpayer.cli.progress import resource_progress
from openpayer.config import Settings, get_settings
from openpayer.fhir.loading import BATCH_SIZE, Loader, LoadReport
from openpayer.fhir.preparing import Rejection
from openpayer.fhir.storage.tables import fhir_resource
from openpayer.members.models import member_account
from openpayer.members.sandbox import SANDBOX_MEMBERS
from openpayer.migrate import upgrade
from openpayer.seed import (
    DEFAULT_START,
    PlanContext,
    iter_directory,
    iter_formulary,
    iter_member,
    iter_plan_members,
    write_ndjson,
)
from openpayer.seed.common import Resource

PRODUCTION = "production"
SLICE_MEMBERS = 1_000  # members generated (then loaded) per temporary NDJSON folder: bounds the disk used
SHOWN_REJECTIONS = 20


class _Progress:
    """One bar over the whole plan, slice after slice: each slice is generated (the first tenth of its share
    of the bar), then loaded. The payer, directory and formulary weigh as much as one member."""

    def __init__(self, console: Console, members: int, enabled: bool, load: bool = True) -> None:
        self.enabled = enabled
        self.load = load  # False: --ndjson, generating is all there is (and counts the resources)
        self.share = 0.1 if load else 1.0
        self.progress = resource_progress(console, "[bold]{task.description:<10}")
        self.total = members + 1
        self.task_id: TaskID | None = None
        self.loaded = 0  # resources loaded by earlier slices
        self.base = 0  # units (members, and the directory) of earlier slices
        self.size = 0  # units of this slice

    def start_slice(self, size: int) -> None:
        self.size = size

    def end_slice(self, resources: int) -> None:
        self.base += self.size
        self.loaded += resources
        self.size = 0

    def generated(self, units: int, resources: int) -> None:
        shown = self.loaded if self.load else resources
        self._show("generating", self.base + self.share * units, shown)

    def loading(self, fraction: float, resources: int) -> None:
        share = self.share + (1 - self.share) * min(fraction, 1.0)
        self._show("loading", self.base + share * self.size, self.loaded + resources)

    def _show(self, phase: str, completed: float, resources: int) -> None:
        if not self.enabled:
            return
        if self.task_id is None:
            self.progress.start()
            self.task_id = self.progress.add_task(phase, total=self.total, resources=0)
        completed = min(completed, self.total - 1e-6)  # done only when stopped: keeps the clock running
        self.progress.update(self.task_id, description=phase, completed=completed, resources=resources)

    def stop(self) -> None:
        if self.task_id is not None:
            self.progress.update(self.task_id, completed=self.total)
            self.progress.stop()
            self.task_id = None


PHASES = ("migrate", "services", "generate", "load", "logins")


@dataclass
class _Outcome:
    counts: dict[str, int] = field(default_factory=dict)
    report: LoadReport = field(default_factory=LoadReport)
    # seconds of each phase of the command (the --json summary's "phases"; benchmarks/bench_seed.py)
    phases: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))


def _members_callback(value: int) -> int:
    if value < 0:
        raise typer.BadParameter("must be 0 or more")
    return value


def seed(
    env: str = typer.Argument(..., help="Environment to seed (e.g. sandbox)."),
    members: int = typer.Option(
        200, "--members", "-n", callback=_members_callback, help="Members to generate (0: directory only)."
    ),
    seed_value: int = typer.Option(1, "--seed", "-s", help="Random seed: same seed, same plan."),
    start_date: dt.datetime = typer.Option(
        dt.datetime.combine(DEFAULT_START, dt.time()),
        "--start-date",
        formats=["%Y-%m-%d"],
        show_default=DEFAULT_START.isoformat(),
        help="First day of the plan year.",
    ),
    ndjson: Path | None = typer.Option(
        None, "--ndjson", help="Write <Type>.ndjson files into this folder and load nothing."
    ),
    if_empty: bool = typer.Option(
        False, "--if-empty", help="Do nothing when the environment already holds resources."
    ),
    allow_production: bool = typer.Option(
        False, "--allow-production", help="Allow loading synthetic data into production (no logins)."
    ),
    test_logins: bool | None = typer.Option(
        None,
        "--test-logins/--no-test-logins",
        help="Create the published test member logins (default: only in sandbox; never in production).",
    ),
    workers: int = typer.Option(
        None, "--workers", "-w", min=0, help="Loader worker processes (default: CPU count; 0 = in process)."
    ),
    batch_size: int = typer.Option(
        BATCH_SIZE, "--batch-size", min=1, help="Resources per write transaction."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
    migrate: bool = typer.Option(True, help="Apply pending migrations before loading."),
) -> None:
    """Generate a deterministic synthetic health plan and load it (or write it as NDJSON).

    Same --members, --seed and --start-date: same ids and content; seeding again changes nothing.

    In sandbox the published test member logins are created (see the README).

    Production is refused without --allow-production, and never gets the test logins.
    """
    err = Console(stderr=True)
    out = Console()
    settings = get_settings()
    if env not in settings.environments:
        known = ", ".join(settings.environments) or "none"
        err.print(f"[red]Unknown environment {env!r}.[/red] Configured environments: {known}.")
        raise typer.Exit(2)
    logins = env == "sandbox" if test_logins is None else test_logins
    if env == PRODUCTION and ndjson is None:
        if logins:
            err.print("[red]The published test logins are never created in production.[/red]")
            raise typer.Exit(2)
        if not allow_production:
            err.print(
                "[red]Refusing to load synthetic data into production.[/red] "
                "Pass --allow-production if you really mean it (no test login is created there)."
            )
            raise typer.Exit(2)
    if ndjson is not None and ndjson.exists() and not ndjson.is_dir():
        err.print(f"[red]Not a folder:[/red] {ndjson}")
        raise typer.Exit(2)

    progress = _Progress(err, members, enabled=not quiet and not as_json, load=ndjson is None)
    started = time.perf_counter()

    if ndjson is not None:
        try:
            ctx = PlanContext(members, seed_value, start_date.date())
            counts = _generate(ctx, [None, *range(members)], ndjson, progress)
        except OSError as exc:
            progress.stop()
            err.print(f"[red]Cannot write {ndjson}:[/red] {exc}")
            raise typer.Exit(1) from None
        finally:
            progress.stop()
        seconds = time.perf_counter() - started
        total = sum(counts.values())
        if as_json:
            _echo_json({"env": env, "members": members, "seed": seed_value, "ndjson": str(ndjson),
                        "counts": counts, "resources": total, "seconds": round(seconds, 3)})  # fmt: skip
        else:
            out.print(
                f"Wrote {total:,} resources for {members:,} members into {ndjson} ({len(counts)} files) "
                f"in {seconds:.1f} s; nothing was loaded.",
                style="green",
                highlight=False,
            )
        raise typer.Exit(0)

    services: Store | None = None
    skipped = False
    outcome = _Outcome()
    created: list[str] = []
    hashing: _HashAhead | None = None
    phases = outcome.phases
    try:
        mark = time.perf_counter()
        if migrate:
            upgrade(settings)
        phases["migrate"] = time.perf_counter() - mark
        mark = time.perf_counter()
        services = build_store(settings)
        engine = services.engine
        phases["services"] = time.perf_counter() - mark
        if if_empty and _has_resources(engine, env):
            skipped = True
        else:
            if logins:
                hashing = _hash_ahead(engine, env)
            ctx = PlanContext(members, seed_value, start_date.date())
            # the hashing thread has ended before the loader forks its workers: no fork with a thread running
            wait = hashing.wait if hashing is not None else None
            outcome = _seed(ctx, env, services, progress, workers, batch_size, wait)
            outcome.phases = phases | {k: outcome.phases[k] for k in ("generate", "load")}
        mark = time.perf_counter()
        if logins and not outcome.report.rejected and _test_patients_exist(engine, env):
            created = _ensure_logins(services, env, hashing.wait() if hashing is not None else None)
        existing = _existing_logins(engine, env)
        outcome.phases["logins"] = time.perf_counter() - mark
    except SQLAlchemyError as exc:
        progress.stop()
        err.print(f"[red]Database error:[/red] {str(getattr(exc, 'orig', None) or exc).splitlines()[0]}")
        raise typer.Exit(1) from None
    finally:
        progress.stop()
        if services is not None:
            services.close()

    seconds = time.perf_counter() - started
    report = outcome.report
    if as_json:
        _echo_json(
            {
                "env": env,
                "members": members,
                "seed": seed_value,
                "skipped": skipped,
                "counts": outcome.counts,
                "load": report.to_json(),
                "logins": [
                    {"username": u, "password": p, "patient": f"Patient/{pid}", "created": u in created}
                    for u, p, pid in SANDBOX_MEMBERS
                    if u in existing
                ],
                "seconds": round(seconds, 3),
                "phases": {k: round(v, 3) for k, v in outcome.phases.items()},
            }
        )
    else:
        if skipped:
            out.print(f"{env} already holds resources: not seeded.", highlight=False)
        else:
            _print_summary(out, env, members, seed_value, report, seconds)
        if existing:
            _print_logins(out, settings, env, existing)
    raise typer.Exit(1 if report.rejected else 0)


# ---- generating and loading ------------------------------------------------------------------------
def _generate(ctx: PlanContext, units: list[int | None], folder: Path, progress: _Progress) -> dict[str, int]:
    """Write the resources of `units` (None: payer, directory and formulary; k: the k-th member)."""
    wanted = {k for k in units if k is not None}

    def stream() -> Iterator[Resource]:
        done = count = 0
        if None in units:
            for resource in chain(iter_directory(ctx), iter_formulary(ctx)):
                count += 1
                yield resource
            done += 1
            progress.generated(done, count)
        if not wanted:
            return
        first, last = min(wanted), max(wanted)
        for index, member in enumerate(iter_plan_members(ctx)):
            if index > last:
                break
            if index < first:
                continue  # identities are drawn in order: pass over the members of earlier slices
            for resource in iter_member(ctx, member):
                count += 1
                yield resource
            done += 1
            if done % 10 == 0 or index == last:
                progress.generated(done, count)

    return write_ndjson(stream(), folder)


def _seed(
    ctx: PlanContext,
    env: str,
    services: Store,
    progress: _Progress,
    workers: int | None,
    batch_size: int,
    before_load: Callable[[], object] | None = None,
) -> _Outcome:
    outcome = _Outcome()
    total = outcome.report
    total.timings = dict.fromkeys(("parse", "validate", "index", "write"), 0.0)
    started = time.perf_counter()
    slices: list[list[int | None]] = []
    for start in range(0, max(ctx.members, 1), SLICE_MEMBERS):
        part: list[int | None] = list(range(start, min(start + SLICE_MEMBERS, ctx.members)))
        slices.append([None, *part] if start == 0 else part)
    for number, units in enumerate(slices, start=1):
        progress.start_slice(len(units))
        folder = Path(tempfile.mkdtemp(prefix="openpayer-seed-"))
        try:
            mark = time.perf_counter()
            counts = _generate(ctx, units, folder, progress)
            outcome.phases["generate"] += time.perf_counter() - mark
            mark = time.perf_counter()
            if before_load is not None:
                before_load()
            for rtype, count in counts.items():
                outcome.counts[rtype] = outcome.counts.get(rtype, 0) + count

            def report_progress(done: int, total_bytes: int, resources: int) -> None:
                progress.loading(done / total_bytes if total_bytes else 1.0, resources)

            loader = Loader(
                services.engine,
                env,
                matcher=services.search,
                workers=workers,
                batch_size=batch_size,
                progress=report_progress,
                vacuum=number == len(slices),
            )
            report = loader.run([folder])
            outcome.phases["load"] += time.perf_counter() - mark
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        _add(total, report, folder)
        progress.end_slice(report.written + report.unchanged)
    total.seconds = time.perf_counter() - started
    return outcome


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


class _HashAhead:
    """The argon2 hashes of the test logins still missing, made in a thread while the plan is generated.

    Each hash is ~0.2 s of CPU on several threads, outside the GIL; generating is one process on one core, so
    the hashes take the idle one. `wait` joins the thread: the loader calls it before it forks its workers
    (no fork while a thread runs), and the logins are created after the load, once the test Patients are
    there, as before."""

    def __init__(self, missing: list[tuple[str, str]]) -> None:
        self.hashes: dict[str, str] = {}
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(missing,), name="seed-logins", daemon=True)
        self.thread.start()

    def _run(self, missing: list[tuple[str, str]]) -> None:
        try:
            self.hashes = {username: hash_password(password) for username, password in missing}
        except BaseException as exc:  # handed to the caller by `wait`
            self.error = exc

    def wait(self) -> dict[str, str]:
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.hashes


def _hash_ahead(engine: Engine, env: str) -> _HashAhead | None:
    existing = _existing_logins(engine, env)
    missing = [(username, password) for username, password, _ in SANDBOX_MEMBERS if username not in existing]
    return _HashAhead(missing) if missing else None


def _ensure_logins(services: Store, env: str, hashes: dict[str, str] | None = None) -> list[str]:
    from openpayer.members.sandbox import ensure_sandbox_members

    missing = {u for u, _, _ in SANDBOX_MEMBERS} - _existing_logins(services.engine, env)
    if not missing:
        return []  # no argon2 work when every login is there
    return ensure_sandbox_members(services.members, env, hashes)


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


def _print_summary(
    console: Console, env: str, members: int, seed_value: int, report: LoadReport, seconds: float
) -> None:
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
        f"Seeded {env} with {members:,} members (seed {seed_value}): {report.written:,} resources written "
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
