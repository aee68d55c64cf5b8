"""Blocking work (database calls, argon2, file reads) run off the event loop, in one thread pool.

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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

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
