"""A rate limit that keeps its average: what paces preview taps in a training loop and preview frames.

"At most N per second, measured from the last one" loses rate to jitter: with iterations of 67 ms, a
100 ms gap is only reached every second iteration, so a 10 Hz limit gave 7.5 frames/s. This one keeps a
schedule of due times instead: a call that is due moves the schedule on by one interval, so calls land at
the limit on average, and a long pause does not earn a burst afterwards.
"""
from __future__ import annotations


class RateLimit:
    """``ready(now)`` is true at most ``hz`` times a second on average (``hz <= 0``: always).

    ``slack`` (a fraction of the interval) lets a call that comes that much early pass: a limit that checks
    calls another limit has already paced (on another clock) should not drop them for a few microseconds.
    """

    def __init__(self, hz: float, slack: float = 0.0) -> None:
        self.interval = 1.0 / hz if hz > 0 else 0.0
        self.slack = slack * self.interval
        self._due = -float("inf")

    def ready(self, now: float) -> bool:
        """Whether a call at time ``now`` (seconds, on any clock the caller keeps to) may go ahead."""
        if now < self._due - self.slack:
            return False
        late = now - self._due
        self._due = self._due + self.interval if late < self.interval else now + self.interval
        return True
