"""Blocking work (database calls, argon2, file reads) run off the event loop, in one thread pool; and the
token endpoint's grants run on the loop, cooperatively (`run_cooperative`).

Starlette's `run_in_threadpool` goes through anyio (a capacity limiter, a cancel scope and anyio's own
worker hand-off on every call); `loop.run_in_executor` on a plain `ThreadPoolExecutor` does the same job
with less work per call, which a token endpoint pays on every grant (docs/performance.md). The work runs in
a copy of the caller's context, so context variables set by the request (log annotations, the client's
address for security events) are seen in the thread, as with Starlette's helper.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from sqlalchemy.util.concurrency import await_, greenlet_spawn, in_greenlet

# As many threads as anyio's default limiter: enough to keep a database pool busy, bounded so that a burst
# of slow requests queues instead of starting a thread each.
MAX_THREADS = 40

_P = ParamSpec("_P")
_T = TypeVar("_T")

_executor = ThreadPoolExecutor(max_workers=MAX_THREADS, thread_name_prefix="openpayer-blocking")


async def run_blocking(func: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """`func(*args, **kwargs)` in the pool, awaited. Cancelling the await does not stop the call."""
    context = contextvars.copy_context()
    call = functools.partial(context.run, func, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_executor, call)


# Cooperative calls at once per event loop. Each holds at most two pooled connections at a time, and a call
# that finds the pool empty waits for one with the loop's thread: fewer than the pool's 30 connections
# (db.make_engine), so the connections it waits for are held by threads, which return them.
COOPERATIVE_LIMIT = 8
_limits: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


async def run_cooperative(func: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """`func(*args, **kwargs)` on the event loop, in a greenlet whose PostgreSQL waits
    (`db.CooperativeConnection`) let the loop serve other requests: no hand-off to a thread and back. For
    work that is CPU and database only; anything else that blocks goes through `off_loop`. The caller's
    context variables are seen, as with `run_blocking`."""
    loop = asyncio.get_running_loop()
    limit = _limits.get(loop)
    if limit is None:
        limit = _limits.setdefault(loop, asyncio.Semaphore(COOPERATIVE_LIMIT))
    async with limit:
        call = functools.partial(func, *args, **kwargs)
        return await greenlet_spawn(contextvars.copy_context().run, call)


def off_loop(func: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """Blocking work that is not a PostgreSQL wait (an HTTP fetch, a lock held across a query): under
    `run_cooperative` it runs in the thread pool while the loop goes on; elsewhere it is simply called."""
    if in_greenlet():
        return await_(run_blocking(func, *args, **kwargs))
    return func(*args, **kwargs)
