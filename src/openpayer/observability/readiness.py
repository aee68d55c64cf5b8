"""`GET /readyz`: is this process able to serve? Named checks, registered by the composition root.

A check returns None when its part works, or a short reason for the operator when it does not; an
exception counts as a failure named by its type (its message could carry a connection string). The
endpoint answers 200 `{"status": "ok", "checks": {...}}` when every check passes, else 503 with the same
shape, so a load balancer takes the host out of rotation and a person can see why.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

Check = Callable[[], str | None]

log = logging.getLogger("openpayer.readiness")


@dataclass
class Readiness:
    checks: dict[str, Check] = field(default_factory=dict)

    def add(self, name: str, check: Check) -> None:
        self.checks[name] = check

    def run(self) -> dict[str, str]:
        """Every check's outcome: `ok` or the reason it failed."""
        results: dict[str, str] = {}
        for name, check in self.checks.items():
            try:
                problem = check()
            except Exception as exc:  # any failure of the part makes the host not ready
                problem = f"failed ({type(exc).__name__})"
            results[name] = problem or "ok"
            if problem:
                log.warning("readiness check failed", extra={"fields": {"check": name, "reason": problem}})
        return results

    def endpoint(self) -> Callable[[Request], Awaitable[Response]]:
        async def readyz(request: Request) -> Response:
            results = await run_in_threadpool(self.run)
            ready = all(outcome == "ok" for outcome in results.values())
            return JSONResponse(
                {"status": "ok" if ready else "unavailable", "checks": results},
                status_code=200 if ready else 503,
                headers={"Cache-Control": "no-store"},
            )

        return readyz
