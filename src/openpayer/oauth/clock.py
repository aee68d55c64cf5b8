"""The authorization server's clock: seconds since the epoch, with an offset tests move to expire things."""

from __future__ import annotations

import time


class Clock:
    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def now(self) -> int:
        return int(time.time() + self.offset)

    def advance(self, seconds: float) -> None:
        self.offset += seconds
