"""History queries over the change log (FHIR R4 §3.1.0.9 `history`): instance, type and system level.

Entries come newest first. Paging is keyset on `seq` (the change log's order), so a page never shifts
while other clients write: new versions get higher `seq` and fall before the first page, not into it.

An outside `Restriction` (a SMART patient compartment, the granted types) is applied inside the SQL: the
change log is joined to the resource's current row and only versions of resources the restriction admits
now are listed (a deleted resource leaves the compartment's index, so a patient's token no longer sees its
versions).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, FromClause, and_, exists, select
from sqlalchemy.orm import aliased

from openpayer.fhir.search.sql import Restriction, restriction_clause
from openpayer.fhir.storage import codec
from openpayer.fhir.storage.repository import StoredVersion
from openpayer.fhir.storage.tables import fhir_history, fhir_resource


@dataclass(frozen=True, slots=True)
class HistoryPage:
    versions: list[StoredVersion]
    seqs: list[int]
    has_more: bool


def history_page(
    conn: Connection,
    env: str,
    *,
    rtype: str | None = None,
    rid: str | None = None,
    since: int | None = None,
    at: int | None = None,
    before_seq: int | None = None,
    count: int = 50,
    restriction: Restriction | None = None,
) -> HistoryPage:
    h = fhir_history
    conditions = [h.c.env == env]
    source: FromClause = h
    if restriction is not None:
        current = fhir_resource.alias("current")
        source = h.join(
            current, and_(current.c.env == h.c.env, current.c.type == h.c.type, current.c.id == h.c.id)
        )
        conditions.append(restriction_clause(restriction, current, (rtype,) if rtype is not None else None))
    if rtype is not None:
        conditions.append(h.c.type == rtype)
    if rid is not None:
        conditions.append(h.c.id == rid)
    if since is not None:
        conditions.append(h.c.last_updated >= since)
    if at is not None:
        # `_at`: the versions that were current at that instant: written at or before it, and not yet
        # superseded by then.
        later = aliased(h)
        conditions.append(h.c.last_updated <= at)
        conditions.append(
            ~exists().where(
                and_(
                    later.c.env == h.c.env,
                    later.c.type == h.c.type,
                    later.c.id == h.c.id,
                    later.c.version > h.c.version,
                    later.c.last_updated <= at,
                )
            )
        )
    if before_seq is not None:
        conditions.append(h.c.seq < before_seq)
    rows = conn.execute(
        select(
            h.c.seq,
            h.c.type,
            h.c.id,
            h.c.version,
            h.c.last_updated,
            h.c.method,
            h.c.deleted,
            h.c.content,
        )
        .select_from(source)
        .where(*conditions)
        .order_by(h.c.seq.desc())
        .limit(count + 1)
    ).all()
    has_more = len(rows) > count
    rows = rows[:count]
    versions = [
        StoredVersion(
            row.type,
            row.id,
            row.version,
            row.last_updated,
            row.deleted,
            codec.decode(row.content) if row.content is not None else None,
            row.method,
        )
        for row in rows
    ]
    return HistoryPage(versions, [row.seq for row in rows], has_more)


def count_history(
    conn: Connection, env: str, *, rtype: str | None = None, rid: str | None = None, since: int | None = None
) -> int:
    from sqlalchemy import func

    h = fhir_history
    conditions = [h.c.env == env]
    if rtype is not None:
        conditions.append(h.c.type == rtype)
    if rid is not None:
        conditions.append(h.c.id == rid)
    if since is not None:
        conditions.append(h.c.last_updated >= since)
    return int(conn.execute(select(func.count()).select_from(h).where(*conditions)).scalar_one())
