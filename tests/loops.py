"""`asyncio.run` for tests, in a thread of its own: the browser tests' Playwright (its sync API) keeps an
event loop running in the main thread of a test process that ran them, where `asyncio.run` refuses to
start."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run_in_thread(main: Coroutine[Any, Any, T]) -> T:
    with ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(asyncio.run, main).result()
