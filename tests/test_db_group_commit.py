"""`db.GroupCommit`: the calls waiting at once on an event loop share one transaction, each with its own
rows, committed before any of them returns; a statement that fails fails its batch and nothing of it stays.
PostgreSQL only (the token endpoint's group commit); SQLite grants write in a transaction of their own."""

from __future__ import annotations

import asyncio
import operator
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    func,
    insert,
    select,
    text,
)
from tests.loops import run_in_thread
from tests.statements import statement_log

from openpayer.db import DriverStatement, GroupCommit, make_engine
from openpayer.web.threads import run_cooperative


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    if not database_url.startswith("postgresql"):
        pytest.skip("group commit is PostgreSQL's")
    engine = make_engine(database_url)
    with engine.connect():
        pass  # the dialect is set up on the first connection, before calls may run cooperatively
    yield engine
    engine.dispose()


def _together(engine: Engine, commit: GroupCommit, params_each: list[dict[str, Any]]) -> list[Any]:
    """Each call in a cooperative greenlet of its own, all started at once on one loop; what each returned
    or raised, in order."""

    async def main() -> list[Any]:
        calls = (run_cooperative(commit.rows, engine, params) for params in params_each)
        return await asyncio.gather(*calls, return_exceptions=True)

    return run_in_thread(main())


_NUMBERED = DriverStatement(
    select((bindparam("n", type_=BigInteger()) * 10).label("tens"), func.txid_current().label("tx")),
    prepared=True,
)


def test_calls_made_together_share_one_committed_transaction_and_get_their_own_rows(engine: Engine) -> None:
    commit = GroupCommit(_NUMBERED, order=operator.itemgetter("n"))
    answers = _together(engine, commit, [{"n": n} for n in (3, 1, 2, 5, 4)])
    assert [[row[0] for row in rows] for rows in answers] == [[30], [10], [20], [50], [40]]
    [transaction] = {rows[0][1] for rows in answers}
    with engine.connect() as conn:
        status = conn.execute(text("SELECT txid_status(:tx)"), {"tx": transaction}).scalar_one()
    assert status == "committed"


def test_a_call_made_alone_waits_for_nobody(engine: Engine) -> None:
    commit = GroupCommit(_NUMBERED)
    first = _together(engine, commit, [{"n": 1}])
    second = _together(engine, commit, [{"n": 2}])
    assert first[0][0][0] == 10
    assert second[0][0][0] == 20
    assert first[0][0][1] != second[0][0][1]
    # Outside a greenlet (a thread, the CLI): the statement alone, in a transaction of its own.
    assert commit.rows(engine, {"n": 3})[0][0] == 30


def test_batches_are_one_pipeline_and_one_commit(engine: Engine) -> None:
    commit = GroupCommit(_NUMBERED)
    with statement_log(engine) as log:
        _together(engine, commit, [{"n": n} for n in range(4)])
    batch = [statements for statements in log.transactions if any("txid_current" in s for s in statements)]
    assert [len(statements) for statements in batch] == [4]


def test_a_statement_that_fails_fails_its_batch_and_writes_nothing(engine: Engine) -> None:
    table = Table(
        "test_group_commit",
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("word", String(16), nullable=False),
        Column("share", BigInteger, nullable=False),
    )
    statement = DriverStatement(
        insert(table)
        .values(
            word=bindparam("word", type_=String()),
            share=100 // bindparam("parts", type_=BigInteger()),
        )
        .returning(table.c.id),
        prepared=True,
    )
    commit = GroupCommit(statement)
    table.metadata.create_all(engine)
    try:
        answers = _together(
            engine, commit, [{"word": w, "parts": p} for w, p in (("a", 1), ("b", 0), ("c", 2))]
        )
        assert all(isinstance(answer, psycopg.errors.DivisionByZero) for answer in answers)
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 0
        # The pool's connection came back usable, and the statement is prepared again on it.
        answers = _together(engine, commit, [{"word": w, "parts": 4} for w in ("d", "e")])
        assert all(isinstance(answer, list) and len(answer) == 1 for answer in answers)
        with engine.connect() as conn:
            words = conn.execute(select(table.c.word, table.c.share).order_by(table.c.word)).all()
        assert [tuple(row) for row in words] == [("d", 25), ("e", 25)]
    finally:
        table.metadata.drop_all(engine)
