"""The dashboard's build schedule (emugen.web.pacing), driven by a fake clock: no timings."""

from __future__ import annotations

import pytest

from emugen.web.pacing import BUILD_SHARE, BURST_S, Pacer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _build(pacer: Pacer, clock: Clock, took: float, built: bool = True) -> None:
    """A build that took `took` s on an idle machine: its CPU time is its wall time."""
    pacer.start()
    clock.advance(took)
    pacer.finish(took if built else None)


def test_a_change_after_a_quiet_spell_is_built_at_once():
    clock = Clock()
    pacer = Pacer(clock)
    assert pacer.delay() is None  # nothing to build
    pacer.wake()
    assert pacer.delay() == 0.0
    _build(pacer, clock, 0.02)
    clock.advance(5)  # quiet
    pacer.wake()
    assert pacer.delay() == 0.0


def test_a_burst_of_changes_during_a_build_makes_exactly_one_build_after_it():
    clock = Clock()
    pacer = Pacer(clock)
    pacer.wake()
    pacer.start()
    for _ in range(50):  # fifty commits while the snapshot is built
        clock.advance(0.0004)
        pacer.wake()
        assert pacer.delay() is None  # decided when the build ends, not now
    pacer.finish(0.02)
    assert pacer.delay() == 0.0  # the trailing build, at once
    _build(pacer, clock, 0.02)
    assert pacer.delay() is None  # it carried all fifty: nothing more to build


def test_gold_announced_during_silvers_build_is_built_right_after_it_with_no_gap():
    clock = Clock()
    pacer = Pacer(clock)
    pacer.wake()  # bronze: the leading build
    pacer.start()
    clock.advance(0.004)
    pacer.wake()  # silver commits while bronze's snapshot is built
    clock.advance(0.016)
    pacer.finish(0.02)
    assert pacer.delay() == 0.0
    pacer.start()  # silver's snapshot
    clock.advance(0.005)
    pacer.wake()  # gold commits meanwhile
    clock.advance(0.015)
    pacer.finish(0.02)
    assert pacer.delay() == 0.0  # no pacing gap behind silver


def test_what_is_not_built_is_not_charged():
    clock = Clock()
    pacer = Pacer(clock, burst_s=0.05)
    for _ in range(100):  # timed polls that found nothing new, back to back
        pacer.wake()
        assert pacer.delay() == 0.0
        _build(pacer, clock, 0.01, built=False)


def test_a_build_slowed_by_a_busy_machine_is_charged_its_cpu_time_not_its_wall_time():
    clock = Clock()
    pacer = Pacer(clock)
    for _ in range(20):  # 20 builds back to back, each 0.2 s waiting for the CPU, 5 ms using it
        pacer.wake()
        assert pacer.delay() == 0.0
        pacer.start()
        clock.advance(0.2)
        pacer.finish(0.005)
    pacer.wake()
    assert pacer.delay() == 0.0


def test_sustained_load_is_paced_to_the_builds_share_of_the_time():
    clock = Clock()
    pacer = Pacer(clock)
    took, started, building, builds = 0.02, clock.now, 0.0, 0
    while clock.now - started < 60:  # a fleet announcing a commit every 5 ms for a minute
        pacer.wake()
        delay = pacer.delay()
        if delay == 0.0:
            _build(pacer, clock, took)
            building, builds = building + took, builds + 1
        else:
            clock.advance(0.005)
    elapsed = clock.now - started
    assert building <= BUILD_SHARE * elapsed + BURST_S + took
    assert building >= 0.9 * BUILD_SHARE * elapsed  # paced, not starved
    assert builds < elapsed / 0.005 / 10  # far fewer builds than commits


def test_in_steady_load_a_build_is_followed_by_four_times_its_cost():
    clock = Clock()
    pacer = Pacer(clock, share=0.2, burst_s=0.0)
    gaps = []
    for _ in range(5):  # a change always waiting: each build as soon as the pacer allows
        pacer.wake()
        gaps.append(pacer.delay())
        clock.advance(gaps[-1] or 0.0)
        _build(pacer, clock, 0.02)
    assert gaps[0] == 0.0 and gaps[-1] == pytest.approx(0.08)


def test_once_the_load_stops_the_credit_comes_back_and_a_lone_change_goes_at_once():
    clock = Clock()
    pacer = Pacer(clock)
    for _ in range(40):  # spend the credit: 40 back-to-back builds of 20 ms
        pacer.wake()
        clock.advance(pacer.delay() or 0.0)
        _build(pacer, clock, 0.02)
    pacer.wake()
    owed = pacer.delay()
    assert owed is not None and owed > 0  # still paying for the load
    clock.advance(owed)
    assert pacer.delay() == 0.0
    _build(pacer, clock, 0.02)
    clock.advance(BURST_S / BUILD_SHARE)  # quiet long enough to refill the whole burst
    for _ in range(3):  # one commit's bronze, silver and gold: none paced
        pacer.wake()
        assert pacer.delay() == 0.0
        _build(pacer, clock, 0.02)


@pytest.mark.parametrize("share,burst", [(0, 0.1), (1.5, 0.1), (0.2, -1)])
def test_a_share_outside_zero_to_one_or_a_negative_burst_is_refused(share, burst):
    with pytest.raises(ValueError, match="share must be in"):
        Pacer(Clock(), share=share, burst_s=burst)
