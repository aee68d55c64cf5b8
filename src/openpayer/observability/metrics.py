"""Prometheus metrics (prometheus-client, its default registry) and the `GET /metrics` endpoint.

Every metric of the platform is registered on `prometheus_client.REGISTRY`, so a domain adds its own by
declaring a `Counter`/`Histogram` in its module (the job runner and email do); `/metrics` exposes them all.
Labels are bounded: a route is its template (`/{env}/fhir/{type}/{id}`), never a path, and unknown
methods are counted as `other`, so a scanner cannot grow the series without limit.

Metrics are per process. With several worker processes, set `PROMETHEUS_MULTIPROC_DIR` (an empty folder,
cleared at each start) and `/metrics` aggregates the counters and histograms of every worker
(prometheus-client's multiprocess mode); the pool gauges are then the answering process's own.
"""

from __future__ import annotations

import hmac
import os
import weakref
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import Engine
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

HTTP_REQUESTS = Counter(
    "openpayer_http_requests",
    "HTTP requests served, by route template, method and status.",
    ["route", "method", "status"],
)
HTTP_DURATION = Histogram(
    "openpayer_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response, by route template, method and status.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
SIGN_IN_FAILURES = Counter(
    "openpayer_signin_failures",
    "Member sign-in attempts refused (wrong password or code, unknown account, throttled), by env.",
    ["env"],
)

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    labels = (route, method if method in KNOWN_METHODS else "other", str(status))
    HTTP_REQUESTS.labels(*labels).inc()
    HTTP_DURATION.labels(*labels).observe(seconds)


class PoolCollector(Collector):
    """The database connection pool of this process, read when scraped (SQLAlchemy's QueuePool counts)."""

    def __init__(self) -> None:
        self._engine: weakref.ref[Engine] | None = None

    def watch(self, engine: Engine) -> None:
        """The engine whose pool is reported: the application's (one per process)."""
        self._engine = weakref.ref(engine)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        engine = self._engine() if self._engine is not None else None
        pool: Any = engine.pool if engine is not None else None
        if pool is None or not hasattr(pool, "checkedout"):
            return  # not a QueuePool (e.g. NullPool): nothing to report
        stats = {
            "size": ("Connections the pool keeps open (its configured size).", pool.size()),
            "checked_out": ("Connections in use by a request now.", pool.checkedout()),
            "idle": ("Open connections waiting in the pool.", pool.checkedin()),
            "overflow": ("Connections open beyond the pool size.", max(0, pool.overflow())),
        }
        for name, (doc, value) in stats.items():
            yield GaugeMetricFamily(f"openpayer_db_pool_{name}", doc, value=value)


POOL = PoolCollector()
REGISTRY.register(POOL)
# Collectors that read their values when scraped (the pool; a domain's counts read from the database):
# multiprocess mode reports them from the answering process, beside the workers' aggregated counters.
SCRAPED: list[Collector] = [POOL]


def exposition() -> bytes:
    """The text exposition of every metric of this process (or of all workers in multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        for collector in SCRAPED:
            registry.register(collector)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def metrics_endpoint(token: str | None) -> Callable[[Request], Awaitable[Response]]:
    """`GET /metrics`; when `token` is set, only with `Authorization: Bearer <token>` (compared in constant
    time), else 401."""

    async def metrics(request: Request) -> Response:
        if token is not None:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
                return PlainTextResponse(
                    "A bearer token is required for /metrics\n",
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                )
        return Response(exposition(), media_type=CONTENT_TYPE_LATEST)

    return metrics
