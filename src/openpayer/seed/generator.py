"""Top-level entry points: :func:`generate_plan` and :func:`write_ndjson`, plus the building blocks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from pathlib import Path
from random import Random
from typing import BinaryIO

import orjson

from .claims import ClaimWriter
from .clinical import ClinicalWriter
from .common import DEFAULT_START, Resource
from .directory import Directory, build_directory, provider_resources
from .formulary import formulary_resources
from .members import Member, coverages, iter_members, patient, related_person
from .plans import PRODUCTS_BY_ID, payer_resources
from .story import Planner


class PlanContext:
    """Everything shared by all members of one generated plan: the window and the directory."""

    def __init__(
        self,
        members: int,
        seed: int = 1,
        start_date: dt.date | None = None,
        practitioners: int | None = None,
    ) -> None:
        if members < 0:
            raise ValueError("members must be >= 0")
        if practitioners is not None and practitioners < 20:
            raise ValueError("practitioners must be >= 20")
        self.members = members
        self.seed = seed
        self.start = (start_date or DEFAULT_START).toordinal()
        self.directory: Directory = build_directory(members, seed, self.start, practitioners)
        self.planner = Planner(self.directory, self.start)
        self.dental = PRODUCTS_BY_ID["plan-dental"]


def iter_directory(ctx: PlanContext) -> Iterator[Resource]:
    """Payer organization, endpoint, service area, networks, products, then the provider directory."""
    d = ctx.directory
    yield from payer_resources(d.last_updated, d.plan_start, d.plan_end)
    yield from provider_resources(d)


def iter_formulary(ctx: PlanContext) -> Iterator[Resource]:
    d = ctx.directory
    yield from formulary_resources(d.last_updated, d.plan_start, d.plan_end)


def iter_member(ctx: PlanContext, member: Member) -> Iterator[Resource]:
    """One member's resources: Patient, RelatedPerson, Coverage, EOBs (in adjudication order), clinical."""
    rng = Random(ctx.seed * 7_777_777 + member.index)
    yield patient(member, ctx.start)
    rp = related_person(member, ctx.start)
    if rp is not None:
        yield rp
    yield from coverages(member, ctx.start, ctx.dental)
    story = ctx.planner.plan(member, rng)
    yield from ClaimWriter(story, ctx.start, ctx.dental, rng).eobs()
    yield from ClinicalWriter(story, ctx.start, rng).resources()


def iter_plan_members(ctx: PlanContext) -> Iterator[Member]:
    return iter_members(ctx.members, ctx.seed, ctx.start, ctx.directory.markets)


def generate_plan(
    members: int, seed: int = 1, *, start_date: dt.date | None = None, practitioners: int | None = None
) -> Iterator[Resource]:
    """Yield a synthetic health plan as FHIR R4 resources (dicts), in dependency order.

    Deterministic for a given (members, seed, start_date): same ids, same content, same order. The plan
    year runs from ``start_date`` (default 2025-01-01) for 365 days; every date is relative to it.
    """
    ctx = PlanContext(members, seed, start_date, practitioners)
    yield from iter_directory(ctx)
    yield from iter_formulary(ctx)
    for member in iter_plan_members(ctx):
        yield from iter_member(ctx, member)


def write_ndjson(resources: Iterable[Resource], out_dir: Path) -> dict[str, int]:
    """Write one ``<ResourceType>.ndjson`` per type (bulk-data style); return the count per type."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, BinaryIO] = {}
    counts: dict[str, int] = {}
    dumps = orjson.dumps
    try:
        for resource in resources:
            rtype = resource["resourceType"]
            handle = files.get(rtype)
            if handle is None:
                handle = files[rtype] = (out_dir / f"{rtype}.ndjson").open("wb")
                counts[rtype] = 0
            handle.write(dumps(resource) + b"\n")
            counts[rtype] += 1
    finally:
        for handle in files.values():
            handle.close()
    return dict(sorted(counts.items()))
