"""The seam between detection and response: a detector that attributes attack traffic to an app calls
`RiskSink.flag`, and the response side (`openpayer.incidents`, above the portal) marks that app's
subscription in that environment at risk, mails its organization's security contact and the security
analysts, and shows it in the console and the portal.

The detectors live below `oauth` and know only an environment and a client id; which subscription,
application and organization that is, and who to tell, is the portal's, so the implementation is wired in
the composition root (`bootstrap.py`). `flag` is synchronous (it writes to the database): call it from a
thread or a job, not from the event loop. It is idempotent per (environment, client, reason) while that
flag is raised: flagging again adds the evidence to the raised flag and sends no second mail.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


class RiskReason(StrEnum):
    """Why a subscription is at risk (the seeds' three reasons)."""

    MALICIOUS_ACTIVITY = "malicious_activity"  # brute force, spraying, stuffing, secret guessing...
    INACTIVITY = "inactivity"  # the inactivity policy (openpayer.policy) keeps this state itself
    BREACH_ALERT = "breach_alert"  # a third-party risk monitor reported a breach at the organization


class RiskSink(Protocol):
    def flag(self, env: str, client_id: str, reason: str, evidence: Mapping[str, Any]) -> None:
        """Mark the subscription of `client_id` in `env` at risk for `reason` (a `RiskReason` value).
        `evidence` is JSON-serialisable: e.g. `{"detector": "credential_stuffing", "event_ids": [...],
        "count": 412, "window_seconds": 300}`. An unknown client is recorded and ignored, never an error."""
        ...


@dataclass
class RecordingRiskSink:
    """The in-memory twin: keeps every flag (tests, and a process built without the response side)."""

    flags: list[tuple[str, str, str, dict[str, Any]]] = field(default_factory=list)

    def flag(self, env: str, client_id: str, reason: str, evidence: Mapping[str, Any]) -> None:
        self.flags.append((env, client_id, str(reason), dict(evidence)))
