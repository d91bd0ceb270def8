"""The soak criteria, chart and chaos plan as plain functions (no processes)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from sqlalchemy import delete

from emugen.db.bulk import bulk_insert
from emugen.db.models import BatchRow, SilverEvent
from emugen.db.session import write_session
from emugen.fleet.control import record_skip
from emugen.lab import verdict as v
from emugen.lab.chaos import Chaos
from emugen.lab.chart import soak_svg
from emugen.lab.procfs import child_pids, proc_state, rss_mb
from emugen.pipeline.runner import run_pipeline
from tests.conftest import make_settings


def _by_name(checks: list[v.Check]) -> dict[str, v.Check]:
    return {c.name: c for c in checks}


def test_a_clean_store_passes_every_store_criterion(engine):
    run_pipeline(engine, make_settings(), 3)
    checks = [*v.batch_checks(engine), v.reconciliation_check(engine), v.gold_check(engine)]
    assert v.verdict(checks), [c.line() for c in checks]


def test_a_gap_in_seq_and_an_unfinished_batch_are_lost_batches(engine):
    run_pipeline(engine, make_settings(), 3)
    with write_session(engine) as session:
        session.execute(delete(BatchRow).where(BatchRow.batch_id == "events-000000002"))
        session.get(BatchRow, "companies-000000003").status = "silver"
    lost = _by_name(v.batch_checks(engine))["no lost batch"]
    assert lost.passed is False
    assert "events seqs not 1..3 (2 kept, 0 pruned)" in lost.detail
    assert "companies-3 silver" in lost.detail


def test_an_extra_silver_row_is_a_duplicate(engine):
    run_pipeline(engine, make_settings(), 2)
    with write_session(engine) as session:
        row = session.query(SilverEvent).first()
        bulk_insert(
            session,
            SilverEvent.__table__,
            (
                "event_id",
                "company_id",
                "driver_id",
                "truck_id",
                "event_type",
                "event_timestamp",
                "event_ms",
                "lat",
                "lon",
                "batch_id",
                "row_no",
            ),
            [
                (
                    "00000000-0000-0000-0000-000000000000",
                    row.company_id,
                    row.driver_id,
                    row.truck_id,
                    row.event_type,
                    row.event_timestamp,
                    row.event_ms,
                    None,
                    None,
                    row.batch_id,
                    999,
                )
            ],
        )
    duplicate = _by_name(v.batch_checks(engine))["no duplicate row"]
    assert duplicate.passed is False and "silver_events" in duplicate.detail


def test_ticks_are_accounted_from_beat_log_and_skip_rows(engine):
    from datetime import UTC, datetime

    run_pipeline(engine, make_settings(), 2)  # 4 batches
    with write_session(engine) as session:
        record_skip(session, "events", datetime.now(UTC), "expired", "waited")  # at a worker
        record_skip(session, "events", datetime.now(UTC), "in_flight", "x")  # at beat
        record_skip(session, "events", datetime.now(UTC), "paused", "the fleet is paused")
    log = "\n".join(
        ["Scheduler: Sending due task generate-events (emugen.generate_batch)"] * 5
        + [
            "Scheduler: Sending due task reap (emugen.reap)",
            "tick skipped: events 9 batches are generated",
        ]
    )
    check = v.tick_check(engine, log, judged=True)
    assert check.passed is True and "0 unaccounted" in check.detail
    check = v.tick_check(engine, log + "\nSending due task generate-companies", judged=True)
    assert check.passed is False and "1 unaccounted" in check.detail
    assert v.tick_check(engine, "", judged=False).passed is None


def test_rss_growth_compares_the_second_tenth_with_the_last():
    samples = [
        {"t": t, "rss_w_mb": 100.0 if t < 90 else 115.0, "rss_r_mb": 10.0} for t in range(100)
    ]
    checks = _by_name(v.rss_checks(samples, ["w", "r"], 100, judged=True))
    assert checks["RSS growth w <= 10%"].passed is False
    assert "+15.0%" in checks["RSS growth w <= 10%"].detail
    assert checks["RSS growth r <= 10%"].passed is True
    # the first tenth is warm-up: a process that grows only while starting passes
    warm = [{"t": t, "rss_w_mb": 50.0 if t < 10 else 100.0} for t in range(100)]
    assert v.rss_checks(warm, ["w"], 100, judged=True)[0].passed is True
    assert v.rss_checks(samples, ["w"], 100, judged=False)[0].passed is None


def test_latency_compares_the_last_tenth_with_the_first_after_warm_up():
    steady = [(t / 2, 50.0) for t in range(200)]  # 20 batches per tenth
    assert v.latency_check(steady, 100, 10, judged=True).passed is True
    slower = [(t, ms * (2 if t >= 90 else 1)) for t, ms in steady]
    check = v.latency_check(slower, 100, 10, judged=True)
    assert check.passed is False and "2.00x" in check.detail
    cold = [(t, 900.0 if t < 5 else 50.0) for t, _ in steady]  # a slow start is warm-up
    assert v.latency_check(cold, 100, 10, judged=True).passed is True


def test_the_noise_allowance_shrinks_with_the_number_of_batches_in_a_tenth():
    assert v.noise_allowance_ms(36) == 20.0 and round(v.noise_allowance_ms(720), 1) == 4.5
    few = [(t / 3.6, 50.0 if t < 324 else 75.0) for t in range(360)]  # 36 per tenth, +25 ms
    assert v.latency_check(few, 100, 0, judged=True).passed is True  # 75 <= 60 + 20
    many = [(t / 72, 50.0 if t < 6480 else 75.0) for t in range(7200)]  # 720 per tenth
    assert v.latency_check(many, 100, 0, judged=True).passed is False  # 75 > 60 + 4.5


def test_the_chart_is_well_formed_svg_with_both_panels_and_marks():
    samples = [
        {"t": t, "rss_worker1_mb": 100 + t / 10, "p95_ms": 40.0, "p50_ms": 20.0} for t in range(60)
    ]
    svg = soak_svg(samples, ["worker1"], "soak <test>", [(30, "kill -9 worker1")])
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert len(root.findall(f"{ns}polyline")) == 3  # RSS, p95, p50
    texts = " ".join(t.text or "" for t in root.iter(f"{ns}text"))
    assert "worker1" in texts and "p95 tick->gold" in texts and "soak <test>" in texts
    assert svg.count("kill -9 worker1") == 2  # marked on both panels


def test_the_chaos_plan_is_seeded_and_keeps_kills_clear_of_the_redis_restart_and_lock():
    plan = Chaos(90, ["worker1", "worker2"], seed=3).plan
    again = Chaos(90, ["worker1", "worker2"], seed=3).plan
    assert plan == again
    kinds = [a.kind for a in plan]
    assert kinds.count("redis") == 1 and kinds.count("lock") == 1 and kinds.count("kill") >= 5
    special = [a.at for a in plan if a.kind != "kill"]
    assert all(abs(a.at - s) > 3 for a in plan if a.kind == "kill" for s in special)
    assert all(9 <= a.at < 0.85 * 90 for a in plan if a.kind == "kill")


def test_proc_readers_see_this_process_and_its_children():
    import os
    import subprocess
    import sys

    assert rss_mb(os.getpid()) > 10 and proc_state(os.getpid()) in ("R", "S")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        assert child.pid in child_pids(os.getpid())
    finally:
        child.kill()
        child.wait()
    assert rss_mb(child.pid) is None


def test_soak_exits_1_on_fail_and_0_on_pass(monkeypatch, tmp_path):
    from click.testing import CliRunner

    import emugen.lab.soak
    from emugen.cli import main

    def fake(passed):
        def run(options, disturbance=None, progress=print):
            check = v.Check("no lost batch", passed, "x")
            summary = {
                "title": "soak",
                "duration_s": options.duration,
                "interval_s": options.interval,
                "workers": options.workers,
                "wall_s": 1.0,
                "drain_s": 0.0,
                "batches": 2,
                "samples": 2,
                "p50_ms": 1.0,
                "p95_ms": 1.0,
                "p99_ms": 1.0,
                "skipped_ticks": {},
                "sse_events": None,
                "disturbances": [],
            }
            return emugen.lab.soak.SoakResult(passed, [check], summary, options.out)

        return run

    for passed, code in ((False, 1), (True, 0)):
        monkeypatch.setattr(emugen.lab.soak, "run_soak", fake(passed))
        result = CliRunner().invoke(
            main, ["soak", "--duration", "3m", "--interval", "0.5", "--out", str(tmp_path)]
        )
        assert result.exit_code == code, result.output
        assert f"VERDICT: {'PASS' if passed else 'FAIL'}" in result.output
    assert CliRunner().invoke(main, ["soak", "--duration", "0"]).exit_code == 2


def test_strict_judges_the_latency_trend_without_the_noise_allowance():
    few = [(t, 60.0) for t in range(0, 10)] + [(t, 71.0) for t in range(90, 100)]
    assert v.latency_check(few, 100, 0, judged=True).passed is True  # 71 <= 72 + 37.9
    strict = v.latency_check(few, 100, 0, judged=True, strict=True)
    assert strict.passed is True and "strict" in strict.name and "+" not in strict.detail
    slower = [(t, 60.0) for t in range(0, 10)] + [(t, 73.0) for t in range(90, 100)]
    assert v.latency_check(slower, 100, 0, judged=True).passed is True  # 73 <= 72 + 37.9
    assert v.latency_check(slower, 100, 0, judged=True, strict=True).passed is False  # 73 > 72


def test_a_60_s_warm_up_leaves_the_first_minute_out_of_the_first_tenth():
    # 600 s run: a slow first minute, then steady; the first tenth after warm-up is 60..120 s
    series = [(float(t), 90.0 if t < 60 else 50.0) for t in range(600)]
    series += [(float(t), 58.0) for t in range(540, 600)]
    cold = v.latency_check(series, 600, 0, judged=True, strict=True)
    warm = v.latency_check(series, 600, 60, judged=True, strict=True)
    assert cold.passed is True and "90.0 ms" in cold.detail  # the cold start flatters the run
    assert warm.passed is True and "50.0 ms (60 batches after 60 s warm-up)" in warm.detail
    worse = series + [(float(t), 61.0) for t in range(540, 600)] * 3
    assert v.latency_check(worse, 600, 60, judged=True, strict=True).passed is False


def test_soak_options_take_the_given_warm_up_or_the_old_default():
    from emugen.lab.soak import SoakOptions

    assert SoakOptions(duration=3600, interval=0.1).warmup_s == 10.0
    assert SoakOptions(duration=180, interval=1).warmup_s == 10.0
    assert SoakOptions(duration=3600, interval=0.1, warmup=60).warmup_s == 60.0


def test_after_pruning_the_store_criteria_count_the_pruned_batches_from_the_tally(engine):
    from datetime import UTC, datetime, timedelta

    from emugen.pipeline.retention import prune, tally

    run_pipeline(engine, make_settings(), 4)  # 8 batches
    with write_session(engine) as session:
        record_skip(session, "events", datetime.now(UTC), "expired", "waited")
    result = prune(engine, timedelta(days=1), now=datetime.now(UTC) + timedelta(days=2))
    assert result.batches == 6  # the newest batch of each stream stays
    with write_session(engine) as session:
        pruned = tally(session)
    assert pruned["events"]["batches"] == 3 and pruned["companies"]["batches"] == 3
    assert pruned["skipped_ticks"] == 1 and pruned["events_max_ms"] is not None

    checks = _by_name(
        [*v.batch_checks(engine), v.reconciliation_check(engine), v.gold_check(engine)]
    )
    assert all(c.passed for c in checks.values()), [c.line() for c in checks.values()]
    assert "events 1..4 (3 pruned)" in checks["no lost batch"].detail
    assert (
        "earlier windows hold pruned events"
        in checks["gold equals a recomputation from silver"].detail
    )
    log = "\n".join(
        ["Sending due task generate-events"] * 5 + ["Sending due task generate-companies"] * 4
    )
    assert v.tick_check(engine, log, judged=True).passed is True  # 8 batches + 1 expired


def test_a_batch_lost_before_pruning_is_still_found_by_the_tally_count(engine):
    from datetime import UTC, datetime, timedelta

    from emugen.pipeline.retention import prune

    run_pipeline(engine, make_settings(), 4)
    with write_session(engine) as session:  # seq 2 vanishes: never in gold, never pruned
        session.execute(delete(BatchRow).where(BatchRow.batch_id == "events-000000002"))
    prune(engine, timedelta(days=1), now=datetime.now(UTC) + timedelta(days=2))
    lost = _by_name(v.batch_checks(engine))["no lost batch"]
    assert lost.passed is False and "events seqs not 1..4 (1 kept, 2 pruned)" in lost.detail


def test_latencies_keep_the_batches_seen_in_gold_before_retention_pruned_them(engine):
    from datetime import UTC, datetime, timedelta

    t0 = datetime.now(UTC) - timedelta(minutes=1)
    run_pipeline(engine, make_settings(), 2)  # 4 batches in the store
    early = (t0 + timedelta(seconds=1), t0 + timedelta(seconds=1, milliseconds=40))
    series = v.latencies(engine, t0, {"events-000000001": early, "gone-1": early})
    assert len(series) == 5  # the store's 4 (events-1 from the store) plus the pruned one
    assert series[0] == (1.0, 40.0)
