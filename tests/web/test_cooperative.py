"""`run_cooperative`: code run on the event loop whose PostgreSQL waits let the loop go on (the token
endpoint's grants), against the engine the application uses."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text
from tests.loops import run_in_thread

from openpayer.db import make_engine, read_connection, runs_cooperatively
from openpayer.web import threads
from openpayer.web.threads import COOPERATIVE_LIMIT, off_loop, run_blocking, run_cooperative

request_name: contextvars.ContextVar[str] = contextvars.ContextVar("request_name", default="none")


@pytest.fixture
def pg_engine(database_url: str) -> Iterator[Engine]:
    if not database_url.startswith("postgresql"):
        pytest.skip("cooperative waits are PostgreSQL's (SQLite's calls run in threads)")
    engine = make_engine(database_url)
    assert not runs_cooperatively(engine)  # SQLAlchemy sets the dialect up on the first connection
    with engine.connect():
        pass
    assert runs_cooperatively(engine)
    yield engine
    engine.dispose()


def _sleep_then(engine: Engine, events: list[str], name: str, seconds: float = 0.3) -> str:
    with read_connection(engine) as conn:
        conn.execute(text("SELECT pg_sleep(:s)"), {"s": seconds})
    events.append(f"{name} done")
    return name


def test_the_loop_serves_other_work_while_a_cooperative_call_waits_on_postgresql(pg_engine: Engine) -> None:
    events: list[str] = []

    async def other() -> None:
        await asyncio.sleep(0.05)  # starts after the call's query was sent
        events.append("other ran")

    async def main() -> str:
        result, _ = await asyncio.gather(run_cooperative(_sleep_then, pg_engine, events, "call"), other())
        return result

    assert run_in_thread(main()) == "call"
    assert events == ["other ran", "call done"]


def test_the_same_call_made_directly_on_the_loop_blocks_it(pg_engine: Engine) -> None:
    """The control: outside `run_cooperative` the connection waits as psycopg does."""
    events: list[str] = []

    async def blocking() -> None:
        _sleep_then(pg_engine, events, "call")

    async def other() -> None:
        await asyncio.sleep(0.05)
        events.append("other ran")

    async def main() -> None:
        await asyncio.gather(blocking(), other())

    run_in_thread(main())
    assert events == ["call done", "other ran"]


def test_a_cooperative_call_sees_the_callers_context_variables(pg_engine: Engine) -> None:
    def read() -> str:
        with read_connection(pg_engine) as conn:
            conn.execute(text("SELECT 1"))
        return request_name.get()

    async def main() -> str:
        request_name.set("token request")
        return await run_cooperative(read)

    assert run_in_thread(main()) == "token request"


def test_off_loop_work_runs_in_a_thread_only_under_run_cooperative() -> None:
    loop_thread: list[int] = []

    def where() -> int:
        return off_loop(threading.get_ident)

    async def main() -> tuple[int, int, int]:
        loop_thread.append(threading.get_ident())
        return await run_cooperative(where), where(), await run_blocking(threading.get_ident)

    cooperative, direct, pooled = run_in_thread(main())
    assert direct == loop_thread[0]
    assert cooperative != loop_thread[0]  # the HTTP fetch, the locked key load: not on the loop's thread
    assert pooled != loop_thread[0]


def test_at_most_the_limit_of_cooperative_calls_hold_connections_at_once(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More calls than the limit wait their turn on the loop; each finishes (none waits on the pool with
    the loop's thread while the connections it waits for are held by greenlets of the same loop)."""
    monkeypatch.setattr(threads, "_limits", type(threads._limits)())
    running = [0]
    most = [0]

    def call(n: int) -> int:
        running[0] += 1
        most[0] = max(most[0], running[0])
        try:
            with read_connection(pg_engine) as conn:
                conn.execute(text("SELECT pg_sleep(0.05)"))
        finally:
            running[0] -= 1
        return n

    async def main() -> list[int]:
        return await asyncio.gather(*(run_cooperative(call, n) for n in range(3 * COOPERATIVE_LIMIT)))

    assert run_in_thread(main()) == list(range(3 * COOPERATIVE_LIMIT))
    assert most[0] == COOPERATIVE_LIMIT


def test_sqlite_calls_never_run_cooperatively(database_url: str) -> None:
    """sqlite3 has no waits to hand to the loop: the token endpoint keeps running its grants in threads."""
    if not database_url.startswith("sqlite"):
        pytest.skip("an SQLite setting")
    engine = make_engine(database_url)
    try:
        with engine.connect():
            pass
        assert not runs_cooperatively(engine)
    finally:
        engine.dispose()


def test_only_a_wait_for_the_server_goes_through_the_loop(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Switching to autocommit and back, and the pool's rollback of an idle connection, need no answer from
    the server: they finish without a round trip through the event loop; the query's wait takes one."""
    import openpayer.db

    through_loop: list[str] = []
    real_await = openpayer.db.await_

    def counted(awaitable: Any) -> Any:
        through_loop.append("wait")
        return real_await(awaitable)

    monkeypatch.setattr(openpayer.db, "await_", counted)

    def grant_like() -> int:
        with read_connection(pg_engine) as conn:  # autocommit on, then off and rolled back at its end
            return int(conn.execute(text("SELECT 41 + 1")).scalar_one())

    assert run_in_thread(run_cooperative(grant_like)) == 42
    assert through_loop == ["wait"]
