"""The target rid of reference index rows (`fhir_idx_reference.target_rid`), kept by every writer.

A reference row carries the rid of its local target, the (env, target_type, target_id) row of
`fhir_resource`, deleted or not: resource rows are never removed, so a rid once found stays right. Chains
and forward includes join by it. While no such resource exists the rid is NULL, and the write that creates
the resource fills it on the rows already stored (`adopt`).

Two writers must not miss each other: one writing a reference to X while another creates X, each unable
to see the other's uncommitted rows, would leave the reference NULL for good. On PostgreSQL every FHIR write
(`ResourceRepository.put`/`delete`/`reindex`, a conditional interaction's match, a bulk batch) first takes
a transaction-scoped advisory lock of its environment (`lock`), so such writes follow one another; taken
before any row lock, it cannot deadlock with them. SQLite already serialises its writers (BEGIN IMMEDIATE).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from sqlalchemy import Connection, bindparam, select, text, update

from openpayer.fhir.storage.tables import fhir_resource, idx_reference

Target = tuple[str, str]  # (resource type, id)
# In a reference row's `target_rid` place, before the write: the row has a local target whose rid the
# writer looks up (`resolve`). A string, so that it cannot be taken for a rid.
TARGET = "\x02"
_CHUNK = 500  # ids per statement: well under SQLite's and PostgreSQL's parameter limits


def _lock_key(env: str) -> int:
    digest = hashlib.blake2b(f"fhir-references|{env}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock(conn: Connection, env: str) -> None:
    """Serialise this transaction's index writes with the environment's other writers (PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(env)})


# PostgreSQL: the ids as one array parameter, where an expanded IN list cost the loader's main process
# 7 ms of CPU per batch for 800 targets.
_RESOLVE_POSTGRESQL = text(
    "SELECT id, rid FROM fhir_resource WHERE env = :env AND type = :type AND id = ANY(:ids)"
)
_WAITING_POSTGRESQL = text(
    "SELECT rid, target_type, target_id FROM fhir_idx_reference "
    "WHERE target_rid IS NULL AND target_id = ANY(:ids)"
)


def resolve(
    conn: Connection, env: str, wanted: Iterable[Target], known: Mapping[Target, int]
) -> dict[Target, int]:
    """The rids of `wanted` targets: those in `known` (written in this transaction), else looked up."""
    found = {target: known[target] for target in wanted if target in known}
    by_type: dict[str, list[str]] = {}
    for rtype, rid in {target for target in wanted if target not in found}:
        by_type.setdefault(rtype, []).append(rid)
    c = fhir_resource.c
    for rtype, ids in by_type.items():
        ids.sort()
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            if conn.dialect.name == "postgresql":  # one array parameter, not hundreds to expand
                rows = conn.execute(_RESOLVE_POSTGRESQL, {"env": env, "type": rtype, "ids": chunk})
            else:
                rows = conn.execute(select(c.id, c.rid).where(c.env == env, c.type == rtype, c.id.in_(chunk)))
            for tid, rid in rows:
                found[(rtype, tid)] = rid
    return found


def adopt(conn: Connection, env: str, created: Mapping[Target, int]) -> None:
    """Point the stored reference rows that were waiting for the just-created resources `created` at them.

    Call it after `lock` and after the new resource rows are inserted. Three statements a planner cannot
    get wrong, whatever its statistics say (a three-table UPDATE joined the waiting rows by scanning every
    resource of the environment while a load's first batches left the statistics behind: 10 s a batch):
    the waiting rows with one of the ids, their referrers in this environment, then the rows themselves."""
    ids = sorted({tid for _, tid in created})
    ref, res = idx_reference.c, fhir_resource.c
    waiting: list[tuple[int, str, str]] = []
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        if conn.dialect.name == "postgresql":
            rows = conn.execute(_WAITING_POSTGRESQL, {"ids": chunk})
        else:
            rows = conn.execute(
                select(ref.rid, ref.target_type, ref.target_id).where(
                    ref.target_rid.is_(None), ref.target_id.in_(chunk)
                )
            )
        for rid, rtype, tid in rows:
            if (rtype, tid) in created:
                waiting.append((rid, rtype, tid))
    if not waiting:
        return
    referrers = sorted({rid for rid, _, _ in waiting})
    here: set[int] = set()
    for start in range(0, len(referrers), _CHUNK):
        query = select(res.rid).where(res.rid.in_(referrers[start : start + _CHUNK]), res.env == env)
        here.update(conn.execute(query).scalars())
    changes = [
        {"b_rid": rid, "b_type": rtype, "b_id": tid, "b_target": created[(rtype, tid)]}
        for rid, rtype, tid in sorted(set(waiting))
        if rid in here
    ]
    if changes:
        conn.execute(
            update(idx_reference)
            .where(
                ref.rid == bindparam("b_rid"),
                ref.target_type == bindparam("b_type"),
                ref.target_id == bindparam("b_id"),
                ref.target_rid.is_(None),
            )
            .values(target_rid=bindparam("b_target")),
            changes,
        )
