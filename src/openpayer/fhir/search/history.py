"""History queries over the change log (FHIR R4 §3.1.0.9 `history`): instance, type and system level.

Entries come newest first. Paging is keyset on `seq` (the change log's order), so a page never shifts
while other clients write: new versions get higher `seq` and fall before the first page, not into it.

An outside `Restriction` (a SMART patient compartment, the granted types) is applied inside the SQL: the
change log is joined to the resource's current row and only versions of resources the restriction admits
now are listed (a deleted resource leaves the compartment's index, so a patient's token no longer sees its
versions). An older version is listed only when the restriction also admits its own content
(`admits_older_version`): a resource moved from one member's compartment to another's shows the new member
only the versions that were theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, FromClause, Row, and_, exists, literal, select

from openpayer.fhir.search.sql import Restriction, admits_older_version, restriction_clause
from openpayer.fhir.storage import codec
from openpayer.fhir.storage.repository import StoredVersion
from openpayer.fhir.storage.tables import fhir_history, fhir_resource


@dataclass(frozen=True, slots=True)
class HistoryPage:
    versions: list[StoredVersion]
    resume_before: int | None = None  # the `seq` the next page starts before (None: no next page)


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
    current_version = literal(None).label("current_version")
    if restriction is not None:
        current = fhir_resource.alias("current")
        source = h.join(
            current, and_(current.c.env == h.c.env, current.c.type == h.c.type, current.c.id == h.c.id)
        )
        conditions.append(restriction_clause(restriction, current, (rtype,) if rtype is not None else None))
        current_version = current.c.version.label("current_version")
    if rtype is not None:
        conditions.append(h.c.type == rtype)
    if rid is not None:
        conditions.append(h.c.id == rid)
    if since is not None:
        conditions.append(h.c.last_updated >= since)
    if at is not None:
        # `_at`: the versions that were current at that instant: written at or before it, and not yet
        # superseded by then.
        later = h.alias()
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
    query = (
        select(
            h.c.seq,
            h.c.type,
            h.c.id,
            h.c.version,
            h.c.last_updated,
            h.c.method,
            h.c.deleted,
            h.c.content,
            current_version,
        )
        .select_from(source)
        .where(*conditions)
        .order_by(h.c.seq.desc())
        .limit(count + 1)
    )
    kept: list[Row[Any]] = []
    examined = before_seq
    exhausted = False
    for _ in range(_FILL_ROUNDS):
        rows = conn.execute(query.where(h.c.seq < examined) if examined is not None else query).all()
        kept.extend(row for row in rows if restriction is None or _admitted(restriction, row))
        if len(rows) <= count:
            exhausted = True
            break
        if len(kept) > count:
            break
        examined = rows[-1].seq  # still short of a page: read on past what was not admitted
    resume: int | None = None
    if len(kept) > count:
        kept = kept[:count]
        resume = kept[-1].seq
    elif not exhausted:  # a page left short by older versions the restriction does not admit
        resume = examined
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
        for row in kept
    ]
    return HistoryPage(versions, resume)


_FILL_ROUNDS = 8  # pages of older versions to read past before answering a short page


def _admitted(restriction: Restriction, row: Row[Any]) -> bool:
    """The restriction's SQL admitted the resource as it is now; an older version must be admitted on its
    own content (a deletion carries none, and says no more than that the current resource existed)."""
    if row.version == row.current_version or row.content is None:
        return True
    return admits_older_version(restriction, orjson.loads(codec.decode(row.content)))


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
