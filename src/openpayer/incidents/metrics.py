"""Incident response's metrics: flags raised and breach-alert deliveries (counters), and the subscriptions at
risk now by reason (a gauge read from the database when scraped, so every host reports the same)."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import REGISTRY, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from openpayer.incidents.reasons import RiskReason
from openpayer.observability.metrics import SCRAPED

log = logging.getLogger(__name__)

RISK_FLAGS_RAISED = Counter(
    "openpayer_risk_flags_raised", "At-risk flags raised on subscriptions, by reason.", ["reason"]
)
BREACH_DELIVERIES = Counter(
    "openpayer_breach_alert_deliveries",
    "Breach-alert webhook deliveries, by outcome (accepted, duplicate, rejected).",
    ["outcome"],
)


class AtRiskCollector(Collector):
    """`openpayer_subscriptions_at_risk{reason}`: raised flags by reason, and inactivity from the policy."""

    def __init__(self) -> None:
        self._count: weakref.WeakMethod[Callable[[], Mapping[str, int]]] | None = None

    def watch(self, count: Callable[[], Mapping[str, int]]) -> None:
        self._count = weakref.WeakMethod(count)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        count = self._count() if self._count is not None else None
        if count is None:
            return
        try:
            counts = count()
        except Exception:  # the database is away: /readyz says so; /metrics still answers
            log.warning("metrics: the at-risk counts could not be read", exc_info=True)
            return
        family = GaugeMetricFamily(
            "openpayer_subscriptions_at_risk",
            "Subscriptions flagged at risk now, by reason (inactivity: in the policy's outreach).",
            labels=["reason"],
        )
        for reason in RiskReason:
            family.add_metric([reason.value], counts.get(reason.value, 0))
        yield family


AT_RISK = AtRiskCollector()
REGISTRY.register(AT_RISK)
SCRAPED.append(AT_RISK)  # also in multiprocess mode (several `openpayer serve` workers)
