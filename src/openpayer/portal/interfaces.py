"""The seams the portal depends on, as Protocols, so that tests and other domains can pass their own."""

from __future__ import annotations

from typing import Protocol


class Clock(Protocol):
    """Seconds since the epoch; the authorization server's clock satisfies it (tests move it forward)."""

    def now(self) -> int: ...
