"""Why a subscription is at risk: the seeds' three reasons."""

from __future__ import annotations

from enum import StrEnum


class RiskReason(StrEnum):
    MALICIOUS_ACTIVITY = "malicious_activity"  # brute force, spraying, stuffing, secret guessing...
    INACTIVITY = "inactivity"  # the inactivity policy (openpayer.policy) keeps this state itself
    BREACH_ALERT = "breach_alert"  # a third-party risk monitor reported a breach at the organization
