"""A rate limit that keeps its average: what paces preview taps in a training loop and preview frames.

"At most N per second, measured from the last one" loses rate to jitter: with iterations of 67 ms, a
100 ms gap is only reached every second iteration, so a 10 Hz limit gave 7.5 frames/s. This one keeps a
schedule of due times instead: a call that is due moves the schedule on by one interval, so calls land at
the limit on average, and a long pause does not earn a burst afterwards.
"""
from __future__ import annotations

import time


class RateLimit:
    """``ready()`` is true at most ``hz`` times a second on average (``hz <= 0``: always)."""

    def __init__(self, hz: float, clock=time.monotonic) -> None:
        self.interval = 1.0 / hz if hz > 0 else 0.0
        self.clock = clock
        self._due = -float("inf")

    def ready(self, now: float | None = None) -> bool:
        now = self.clock() if now is None else now
        if now < self._due:
            return False
        late = now - self._due
        self._due = self._due + self.interval if late < self.interval else now + self.interval
        return True
