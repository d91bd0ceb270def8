"""The fleet for real: its own redis-server, `celery worker` and `celery beat` processes, SQLite.

Issue 4's acceptance, one fleet per test. Cadence is judged on `scheduled_at` (beat's tick
time) gaps between consecutive batches of a stream, never on wall-clock slots.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import time
from collections.abc import Iterable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from emugen.db.models import SilverCompany, SilverEvent
from emugen.db.session import read_session
from emugen.fleet.backpressure import priority_keys
from emugen.fleet.names import PIPELINE_QUEUE
from emugen.pipeline.reconcile import reconcile
from emugen.vocabulary import WINDOW_SECONDS, Mode
from tests.integration.conftest import Batch, Fleet, now, wait_for
from tests.store_helpers import gold_from_scratch, gold_tables

pytestmark = [pytest.mark.integration, pytest.mark.redis, pytest.mark.slow]

STREAMS = ("companies", "events")
QUICK_RECOVERY = {"stuck_after": 3, "reaper_interval": 1}
STAGE_BEFORE = {"emugen.to_silver": "bronze", "emugen.to_gold": "silver"}


# -- helpers -------------------------------------------------------------------------------


def by_stream(batches: Iterable[Batch]) -> dict[str, list[Batch]]:
    out: dict[str, list[Batch]] = {s: [] for s in STREAMS}
    for b in batches:
        out[b.stream].append(b)
    for found in out.values():
        found.sort(key=lambda b: b.seq)
    return out


def gaps(
    batches: list[Batch], after: datetime | None = None, until: datetime | None = None
) -> list[float]:
    """Seconds between consecutive ticks; only pairs whose later tick is in (after, until]."""
    pairs = zip(batches, batches[1:], strict=False)
    return [
        (b.scheduled_at - a.scheduled_at).total_seconds()
        for a, b in pairs
        if (after is None or b.scheduled_at > after) and (until is None or b.scheduled_at <= until)
    ]


def assert_cadence(found: list[float], expected: float, tolerance: float, at_least: int) -> None:
    assert len(found) >= at_least, f"only {len(found)} intervals to judge: {found}"
    off = [g for g in found if abs(g - expected) > tolerance]
    assert not off, f"intervals {found} stray more than {tolerance} s from {expected} s: {off}"


def assert_contiguous_seqs(batches: list[Batch]) -> None:
    for stream, found in by_stream(batches).items():
        seqs = [b.seq for b in found]
        assert seqs == list(range(1, len(seqs) + 1)), f"{stream} seqs have a gap or repeat: {seqs}"


def count_after(fleet: Fleet, at: datetime, n: int, status: str | None = None) -> bool:
    """At least `n` batches of each stream ticked after `at` (and in `status`, if given)."""
    streams = by_stream(fleet.batches())
    return all(
        sum(1 for b in found if b.scheduled_at > at and (status is None or b.status == status)) >= n
        for found in streams.values()
    )


def assert_all_gold(batches: list[Batch]) -> None:
    stuck = [(b.batch_id, b.status) for b in batches if b.status != "gold"]
    assert not stuck, f"batches not in gold: {stuck}"


def pipeline_depth(fleet: Fleet) -> int:
    client = fleet.redis.client()
    return sum(int(client.llen(key)) for key in priority_keys(PIPELINE_QUEUE))


def pause_until(deadline: datetime) -> None:
    """Watch for a short, bounded stretch (absence can only be seen by waiting)."""
    left = (deadline - now()).total_seconds()
    if left > 0:
        time.sleep(left)


# -- cadence and hot reload ----------------------------------------------------------------


def test_emulated_batches_every_two_seconds_all_reach_gold_on_cadence(fleet):
    fleet.write(interval=2)
    _, beat = fleet.start()
    wait_for(
        lambda: all(len(f) >= 4 for f in by_stream(fleet.batches()).values()),
        30,
        "4 batches of each stream",
    )
    fleet.stop(beat)
    batches = fleet.settle()

    assert_all_gold(batches)
    assert_contiguous_seqs(batches)
    assert {b.mode for b in batches} == {"emulated"}
    for found in by_stream(batches).values():
        assert_cadence(gaps(found), 2.0, 1.0, at_least=3)


def test_editing_the_interval_to_one_second_changes_the_cadence_without_a_restart(fleet):
    fleet.write(interval=2)
    worker, beat = fleet.start()
    wait_for(
        lambda: all(len(f) >= 3 for f in by_stream(fleet.batches()).values()),
        30,
        "3 batches of each stream at 2 s",
    )
    edited = now()
    fleet.write(interval=1)
    wait_for(
        lambda: count_after(fleet, edited + timedelta(seconds=2), 4),
        20,
        "4 batches of each stream after the edit",
    )
    assert worker.alive() and beat.alive(), "nothing may restart"
    fleet.stop(beat)
    batches = fleet.settle()

    assert_all_gold(batches)
    assert_contiguous_seqs(batches)
    for found in by_stream(batches).values():
        assert_cadence(gaps(found, until=edited), 2.0, 0.4, at_least=2)
        # within 2 s of the edit, every interval is the new one
        assert_cadence(gaps(found, after=edited + timedelta(seconds=2)), 1.0, 0.4, at_least=3)
    reloads = fleet.reloads()
    assert [r.accepted for r in reloads] == [True, True], reloads
    assert reloads[0].fingerprint != reloads[1].fingerprint
    assert reloads[1].at - edited < timedelta(seconds=2)


def test_an_invalid_config_file_is_rejected_and_the_cadence_stays(fleet):
    fleet.write(interval=1)
    worker, beat = fleet.start()
    wait_for(
        lambda: all(len(f) >= 3 for f in by_stream(fleet.batches()).values()),
        30,
        "3 batches of each stream at 1 s",
    )
    broken = now()
    fleet.write_raw(lambda data: data["events"]["emulated"].update(interval=0.05))
    rejected = wait_for(
        lambda: [r for r in fleet.reloads() if not r.accepted], 5, "the rejection to be recorded"
    )
    wait_for(
        lambda: count_after(fleet, broken, 4), 20, "4 batches of each stream after the broken edit"
    )
    assert worker.alive() and beat.alive()
    fleet.stop(beat)
    batches = fleet.settle()

    assert_all_gold(batches)
    for found in by_stream(batches).values():
        assert_cadence(gaps(found), 1.0, 0.4, at_least=5)
    assert len(rejected) == 1
    problems = json.loads(rejected[0].problems)
    assert any("events.emulated.interval" in p and "0.05" in p for p in problems), problems
    assert rejected[0].at - broken < timedelta(seconds=2)
    assert [r.accepted for r in fleet.reloads()] == [True, False]  # nothing else applied
    assert "config rejected" in beat.text()


def test_switching_to_production_mode_stops_the_fast_ticks(fleet):
    fleet.write(interval=1)
    _, beat = fleet.start()
    wait_for(
        lambda: all(len(f) >= 2 for f in by_stream(fleet.batches()).values()),
        30,
        "2 batches of each stream at 1 s",
    )
    out = fleet.emugen("mode", "production")
    switched = now()
    assert "emulated -> production" in out
    applied = wait_for(
        lambda: [r for r in fleet.reloads() if r.mode == "production"],
        3,
        "beat to apply the production config",
    )[0]
    assert applied.at - switched < timedelta(seconds=2)
    pause_until(applied.at + timedelta(seconds=3))  # three emulated intervals
    batches = fleet.batches()

    late = [b.batch_id for b in batches if b.scheduled_at > applied.at]
    assert not late, f"ticks after production mode was applied: {late}"
    assert beat.alive()
    fleet.stop(beat)
    batches = fleet.settle()
    assert_all_gold(batches)
    # the in-flight batches finished under the spec (mode) they started with
    assert {b.mode for b in batches} == {Mode.emulated.value}


# -- backpressure ----------------------------------------------------------------------------


def test_an_unconsumed_pipeline_queue_makes_beat_skip_ticks_and_never_overfills(fleet):
    # a quick reaper: its ticks go to the pipeline queue too, and must not pile up past the limit
    fleet.write(interval=1, fleet={"max_queue_depth": 3, "reaper_interval": 1})
    fleet.start(queues="generate")  # nobody consumes "pipeline"
    deepest = 0

    def skipped_enough() -> bool:
        nonlocal deepest
        deepest = max(deepest, pipeline_depth(fleet))
        return sum(s.reason == "queue_depth" for s in fleet.skips()) >= 12

    wait_for(skipped_enough, 30, "12 ticks skipped for queue depth", every=0.02)

    assert deepest <= 4, f"the pipeline queue held {deepest} messages (limit 3, plus one)"
    skips = [s for s in fleet.skips() if s.reason == "queue_depth"]
    assert all("fleet.max_queue_depth=3" in s.detail for s in skips)
    assert {s.stream for s in skips} == set(STREAMS)
    batches = fleet.batches()
    assert_contiguous_seqs(batches)  # a skipped tick consumes no seq
    assert {b.status for b in batches} == {"bronze"}
    client = fleet.redis.client()
    queued = [
        json.loads(raw)["headers"]["task"]
        for key in priority_keys(PIPELINE_QUEUE)
        for raw in client.lrange(key, 0, -1)
    ]
    assert queued.count("emugen.to_silver") == len(batches), queued  # each batch still queued


# -- crash safety --------------------------------------------------------------------------


def held_stage(fleet: Fleet) -> tuple[str, str] | None:
    """(stage task, batch id) of a pipeline message a worker has taken and not yet acked."""
    for raw in fleet.redis.client().hvals("unacked"):
        message = json.loads(raw)[0]
        task = message["headers"].get("task")
        if task in STAGE_BEFORE:
            args = json.loads(base64.b64decode(message["body"]))[0]
            return task, args[0]
    return None


def status_of(fleet: Fleet, batch_id: str) -> str | None:
    return {b.batch_id: b.status for b in fleet.batches()}.get(batch_id)


def stage_running(fleet: Fleet) -> tuple[str, str] | None:
    """A held stage whose batch has not advanced yet: the worker is in the middle of it."""
    held = held_stage(fleet)
    if held is None:
        return None
    return held if status_of(fleet, held[1]) == STAGE_BEFORE[held[0]] else None


@pytest.mark.parametrize("victims", ["main", "main+child"])
def test_a_worker_killed_with_sigkill_mid_run_loses_no_batch_and_duplicates_nothing(fleet, victims):
    # big event batches: a stage takes long enough to be caught in the middle of it
    fleet.write(interval=1, size=(800, 1500), fleet=QUICK_RECOVERY)
    worker, beat = fleet.start()
    wait_for(
        lambda: all(
            sum(b.status == "gold" for b in f) >= 2 for f in by_stream(fleet.batches()).values()
        ),
        30,
        "2 gold batches of each stream",
    )
    children = fleet.children(worker)
    held = wait_for(
        lambda: stage_running(fleet), 15, "a worker in the middle of a stage", every=0.002
    )
    os.kill(worker.pid, signal.SIGKILL)  # the main process: it holds the unacked message
    if victims == "main+child":
        for pid in children:  # as an OOM killer or a lost machine would: the task dies too
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    killed = now()
    worker.process.wait(5)
    replacement = fleet.start_worker("worker2")
    fleet.wait_ready(replacement, "ready.")
    # well inside the broker's 30 s visibility timeout: the reaper (a beat entry, so beat keeps
    # running meanwhile), not redelivery, brings back the batch the dead worker held
    wait_for(lambda: status_of(fleet, held[1]) == "gold", 20, f"{held[1]} to reach gold")
    wait_for(
        lambda: count_after(fleet, killed, 2, status="gold"),
        30,
        "2 batches of each stream after the kill to reach gold",
    )
    fleet.stop(beat)
    batches = fleet.settle(timeout=15)

    assert_all_gold(batches)
    assert_contiguous_seqs(batches)
    engine = fleet.engine()
    with read_session(engine) as session:
        events = session.scalar(select(func.count()).select_from(SilverEvent))
        companies = session.scalar(select(func.count()).select_from(SilverCompany))
        result = reconcile(session)
    streams = by_stream(batches)
    assert events == sum(b.valid_count or 0 for b in streams["events"])
    assert companies == sum(b.valid_count or 0 for b in streams["companies"])
    assert gold_tables(engine) == gold_from_scratch(engine, WINDOW_SECONDS[Mode.emulated])
    assert result.ok and result.caught_pct == 100.0, result.as_dict()


def test_a_restarted_redis_server_is_rejoined_by_worker_and_beat_on_their_own(fleet):
    fleet.write(interval=1, fleet=QUICK_RECOVERY)
    worker, beat = fleet.start()
    wait_for(
        lambda: all(
            sum(b.status == "gold" for b in f) >= 2 for f in by_stream(fleet.batches()).values()
        ),
        30,
        "2 gold batches of each stream",
    )
    fleet.redis.shutdown()
    pause_until(now() + timedelta(seconds=2))  # two ticks fall while the broker is down
    fleet.redis.start()
    restarted = now()
    wait_for(
        lambda: count_after(fleet, restarted, 3, status="gold"),
        40,
        "3 batches of each stream after the restart to reach gold",
    )
    assert worker.alive() and beat.alive(), "nothing may restart but redis-server"
    fleet.stop(beat)
    batches = fleet.settle(timeout=30)

    assert_all_gold(batches)  # even those whose queued message died with the broker
    assert_contiguous_seqs(batches)


def test_a_second_beat_on_the_same_broker_is_refused_and_a_successor_starts_at_once(fleet):
    fleet.write(interval=1)
    _, beat = fleet.start()
    wait_for(lambda: "beat lease taken" in beat.text(), 10, "the first beat's lease")
    second = fleet.start_beat("beat2")
    second.process.wait(30)  # it waits out one lease TTL (5 s), then gives up

    assert second.process.returncode != 0
    assert "another emugen beat is already scheduling" in second.text()
    assert "Sending due task" not in second.text()
    assert beat.alive(), "the running beat keeps the schedule"
    fleet.stop(beat)  # a clean stop releases the lease
    successor = fleet.start_beat("beat3")
    wait_for(lambda: "beat lease taken" in successor.text(), 15, "the successor's lease")
    assert "after waiting 0.0 s" in successor.text(), "a released lease needs no TTL wait"
    fleet.stop(successor)
    assert_contiguous_seqs(fleet.settle())


# -- pause / resume ------------------------------------------------------------------------


def test_pause_stops_new_batches_within_an_interval_and_resume_continues_the_seq(fleet):
    fleet.write(interval=1)
    _, beat = fleet.start()
    wait_for(
        lambda: all(len(f) >= 2 for f in by_stream(fleet.batches()).values()),
        30,
        "2 batches of each stream",
    )
    assert fleet.emugen("pause").strip() == "paused"
    paused = now()

    def paused_skips() -> dict[str, int]:
        found = [s.stream for s in fleet.skips() if s.reason == "paused"]
        return {s: found.count(s) for s in STREAMS}

    wait_for(lambda: min(paused_skips().values()) >= 3, 10, "3 paused ticks of each stream")
    resuming = now()  # the flag flips somewhere inside the CLI's run: between these two
    assert fleet.emugen("resume").strip() == "resumed"
    resumed = now()
    wait_for(lambda: count_after(fleet, resumed, 2), 10, "2 batches of each stream on resume")
    fleet.stop(beat)
    batches = fleet.settle()

    assert_all_gold(batches)
    assert_contiguous_seqs(batches)  # no gap, no repeat across the pause
    one_interval = paused + timedelta(seconds=1)
    during = [b.batch_id for b in batches if one_interval < b.generated_at < resuming]
    assert not during, f"batches generated while paused: {during}"
    for found in by_stream(batches).values():
        first_back = next(b for b in found if b.scheduled_at > resuming)
        assert first_back.scheduled_at - resumed < timedelta(seconds=1.5)
