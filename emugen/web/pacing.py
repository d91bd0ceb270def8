"""When the dashboard builds its next snapshot: at once, unless building has used its share.

The rule (docs/DECISIONS.md, "Snapshots are pushed at once and paced only under load"):

- **Leading edge.** A change that arrives while no build runs is built at once.
- **Trailing build.** Changes that arrive while a build runs are coalesced: when that build
  ends, exactly one more build follows, and it reads the store as it is then, so it carries all
  of them. A gold commit announced while silver's snapshot is being built is therefore built
  right after it, with no gap in between.
- **CPU guard.** Building may use at most `share` of a core, measured as a credit of CPU
  seconds: it refills at `share` seconds per second, up to `burst_s`, and every build that
  produced a snapshot spends the CPU time it used. Only when the credit is spent, which takes
  sustained back-to-back builds (a fleet at 0.1 s announces ~80 commits a second), does the
  next build wait for it to come back to zero. In that steady state a build using t of CPU is
  followed by a gap of t * (1 - share) / share (4t at a fifth): builds use about a fifth of a
  core, where one build per commit cost 65 %. One commit's chain (bronze, silver, gold, each a
  build of a few ms) never comes near `burst_s`, so on its own it is never paced.

No asyncio and no threads here: the clock is injected, so the logic is tested with a fake one
(tests/test_push_pacing.py), and emugen.web.stream's broadcaster does the waiting.
"""

from __future__ import annotations

from collections.abc import Callable

BUILD_SHARE = 0.2  # under sustained load, builds use at most this share of a core
BURST_S = 0.25  # seconds of building allowed back to back before the share applies


class Pacer:
    """The broadcaster's schedule. Call `wake()` for each change (or a timed poll falling due),
    `delay()` to learn when to build, and `start()` / `finish()` around each build."""

    def __init__(
        self, clock: Callable[[], float], share: float = BUILD_SHARE, burst_s: float = BURST_S
    ) -> None:
        if not 0 < share <= 1 or burst_s < 0:
            raise ValueError(f"share must be in (0, 1] and burst_s >= 0, not {share}, {burst_s}")
        self._clock, self.share, self.burst_s = clock, share, burst_s
        self.pending = False  # a change is waiting for a build that has not started yet
        self.building = False
        self._credit = burst_s  # seconds of building allowed now (negative: owed)
        self._credit_at = clock()

    def wake(self) -> None:
        """Something changed: the next build must come after this moment."""
        self.pending = True

    def delay(self) -> float | None:
        """Seconds until the next build may start: 0.0 means now. None while a build runs (what
        follows it is decided when it ends) or when nothing is pending."""
        if self.building or not self.pending:
            return None
        credit = self._refill()
        return 0.0 if credit >= 0 else -credit / self.share

    def start(self) -> None:
        """A build begins: it carries every change pending until now."""
        self.pending, self.building = False, True
        self._refill()

    def finish(self, spent: float | None) -> None:
        """The build ended. `spent` is the CPU time it used, charged to the credit (CPU, not
        wall time: on a busy machine a build waits for the CPU far longer than it uses it);
        None when it produced no snapshot: a check that found nothing new is one indexed read."""
        self.building = False
        now = self._clock()
        accrued = (now - self._credit_at) * self.share  # what accrued during the build
        self._credit = min(self.burst_s, self._credit + accrued - (spent or 0.0))
        self._credit_at = now

    def _refill(self) -> float:
        now = self._clock()
        self._credit = min(self.burst_s, self._credit + (now - self._credit_at) * self.share)
        self._credit_at = now
        return self._credit
