"""Backfill: the plan follows the clock, ticks in any order make the store a live run makes."""

from __future__ import annotations

import contextlib
import io
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select

from emugen.backfill.plan import Plan, plan_backfill
from emugen.backfill.progress import Progress
from emugen.backfill.tick import CLAIM, TickMessage, run_tick
from emugen.cli import main
from emugen.db.models import BatchRow, ControlState, SilverCompany
from emugen.db.session import init_db, make_engine, read_session, write_session
from emugen.errors import BackfillConflict, BackfillInputError, BackfillNotReady
from emugen.fleet.backfill import Backfill
from emugen.pipeline.bronze import generate_and_land
from emugen.pipeline.runner import refine_and_build
from emugen.settings import Settings
from emugen.vocabulary import Mode, Stream
from tests.conftest import make_settings
from tests.store_helpers import digests, gold_from_scratch, gold_tables

START = datetime(2026, 1, 1, tzinfo=UTC)
BOTH = (Stream.companies, Stream.events)


def small_settings(**overrides: object) -> Settings:
    """Production cadence at a tenth of the volume, so hours of ticks run in seconds."""
    return make_settings(
        mode="production",
        companies={
            "production": {"interval": "PT1H", "min_batch_size": 8, "max_batch_size": 12},
            "quality": {"rate": 0.2},
        },
        events={
            "production": {"interval": "PT15M", "events_per_driver": 0.5},
            "quality": {"rate": 0.1},
        },
        **overrides,
    )


def live_in_order(engine: Engine, settings: Settings, plan: Plan) -> None:
    """What beat and the workers do, one tick after another: seq and watermark from the store."""
    for tick in plan.ticks:
        landed = generate_and_land(
            engine, settings, tick.stream, tick.scheduled_at, mode=Mode.production
        )
        assert landed.seq == tick.spec.seq
        refine_and_build(engine, landed.batch_id)


def backfill_shuffled(engine: Engine, plan: Plan, seed: int) -> None:
    """Every tick through run_tick in a random order; an event tick whose companies are not
    settled yet goes to the back, as the worker's retry would."""
    queue = [TickMessage.parse(t.message(plan.settings.fingerprint())) for t in plan.ticks]
    random.Random(seed).shuffle(queue)
    while queue:
        tick = queue.pop(0)
        try:
            assert run_tick(engine, plan.settings.landing, tick, worker="test") == "gold"
        except BackfillNotReady:
            queue.append(tick)


@pytest.fixture
def second_engine(database_url, tmp_path):
    """Another empty store on the same backend as `engine`."""
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'second.db'}"
        engine = make_engine(url)
        init_db(engine)
        yield engine
        engine.dispose()
        return
    from emugen.lab import private_database
    from tests.conftest import PG_URL

    with private_database(PG_URL, tmp_path, "second") as url:
        engine = make_engine(url)
        init_db(engine)
        yield engine
        engine.dispose()


def test_a_backfill_finishing_in_any_order_equals_live_generation_in_order(engine, second_engine):
    settings = small_settings()
    plan = plan_backfill(settings, START, START + timedelta(hours=5), BOTH)
    assert plan.counts[Stream.events][1] > 500  # the range has real events in it
    live_in_order(engine, settings, plan)
    backfill_shuffled(second_engine, plan, seed=7)
    live, backfilled = digests(engine), digests(second_engine)
    assert live == backfilled
    assert gold_tables(second_engine) == gold_from_scratch(second_engine, 3600)
    with read_session(engine) as session:
        quarantined = session.scalar(
            select(BatchRow.corrupted_count).where(
                BatchRow.stream == "companies", BatchRow.seq == 2
            )
        )
    assert quarantined, "the companies stream must reject some records for the test to bite"


def test_an_event_ticks_watermark_counts_the_companies_scheduled_strictly_before_it():
    plan = plan_backfill(small_settings(), START, START + timedelta(hours=3), BOTH)
    companies = {t.spec.seq: t for t in plan.ticks if t.stream is Stream.companies}
    for tick in plan.ticks:
        if tick.stream is Stream.events:
            before = [c for c in companies.values() if c.scheduled_at < tick.scheduled_at]
            assert tick.companies_before == len(before)
    at_one = [t for t in plan.ticks if t.scheduled_at == START + timedelta(hours=1)]
    assert [t.stream for t in at_one] == [Stream.events, Stream.companies]
    assert at_one[0].spec.watermark == 0 and at_one[0].records == 0


def test_the_ticks_of_a_range_are_the_batches_whose_interval_ends_inside_it():
    plan = plan_backfill(
        small_settings(), START + timedelta(minutes=10), START + timedelta(hours=2), BOTH
    )
    events = [t.spec.seq for t in plan.ticks if t.stream is Stream.events]
    companies = [t.spec.seq for t in plan.ticks if t.stream is Stream.companies]
    assert events == list(range(1, 9)) and companies == [1, 2]
    assert all(t.spec.interval_end == t.scheduled_at for t in plan.ticks)


@pytest.mark.parametrize(
    ("start", "end", "streams", "says"),
    [
        ("2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z", "companies,events", "--to"),
        ("2026-01-01T00:00:00", "2026-01-02T00:00:00Z", "companies,events", "no timezone"),
        ("2026-01-01T00:00:00Z", "9999-12-31T00:00:00Z", "companies,events", "at most 1,000,000"),
        (
            "2026-01-01T00:00:00Z",
            "2026-01-02T00:00:00Z",
            "companies,trucks",
            "--streams 'companies,",
        ),
        ("2025-12-31T00:00:00Z", "2026-01-02T00:00:00Z", "events", "before the simulated clock"),
        ("last week", "2026-01-02T00:00:00Z", "events", "not an ISO-8601 time"),
    ],
)
def test_bad_backfill_input_is_one_line_naming_the_option_with_exit_2(
    tmp_path, start, end, streams, says
):
    config = tmp_path / "emugen.yaml"
    config.write_text("clock: {kind: simulated, start: 2026-01-01T00:00:00Z}\n")
    result = CliRunner().invoke(
        main,
        [
            "backfill",
            "--from",
            start,
            "--to",
            end,
            "--streams",
            streams,
            "--config",
            str(config),
            "--dry-run",
        ],
    )
    assert result.exit_code == 2, result.output
    message = result.output.strip()
    assert says in message and "\n" not in message and "Traceback" not in message


def test_a_dry_run_prints_the_ticks_and_records_of_each_stream_and_touches_no_store(tmp_path):
    config = tmp_path / "emugen.yaml"
    database = tmp_path / "never.db"
    config.write_text(f"database_url: sqlite:///{database}\nbroker_url: redis://127.0.0.1:1/0\n")
    result = CliRunner().invoke(
        main,
        [
            "backfill",
            "--from",
            "2026-01-01T00:00:00Z",
            "--to",
            "2026-01-01T06:00:00Z",
            "--config",
            str(config),
            "--dry-run",
        ],
    )
    assert result.exit_code == 0, result.output
    plan = plan_backfill(make_settings(), START, START + timedelta(hours=6), BOTH, Mode.production)
    assert "companies         6 ticks (seq 1..6)" in result.output
    assert f"{plan.counts[Stream.events][1]:,} records expected" in result.output
    assert not database.exists()


def test_a_tick_run_twice_or_after_its_bronze_alone_leaves_one_identical_batch(engine, tmp_path):
    settings = small_settings()
    plan = plan_backfill(settings, START, START + timedelta(hours=2), BOTH)
    ticks = [TickMessage.parse(t.message("fp")) for t in plan.ticks]
    companies = [t for t in ticks if t.spec.stream is Stream.companies]
    from emugen.backfill.tick import ensure_bronze

    ensure_bronze(engine, companies[0], None)  # as if killed after bronze
    before = digests(engine)
    for tick in ticks + ticks:
        with contextlib.suppress(BackfillNotReady):
            run_tick(engine, settings.landing, tick)
    after = digests(engine)
    assert before != after
    for tick in ticks:
        run_tick(engine, settings.landing, tick)
    assert digests(engine) == after
    with read_session(engine) as session:
        assert session.scalar(select(SilverCompany.company_id).limit(1)) is not None
        statuses = set(session.scalars(select(BatchRow.status)))
    assert statuses == {"gold"}


def test_a_tick_whose_seq_holds_another_spec_is_refused(engine):
    settings = small_settings()
    plan = plan_backfill(settings, START, START + timedelta(hours=1), (Stream.companies,))
    run_tick(engine, settings.landing, TickMessage.parse(plan.ticks[0].message("fp")))
    other = plan_backfill(
        small_settings(seed=43), START, START + timedelta(hours=1), (Stream.companies,)
    )
    with pytest.raises(BackfillConflict, match="another spec"):
        run_tick(engine, settings.landing, TickMessage.parse(other.ticks[0].message("fp")))


class InProcessFleet:
    """A fleet that runs each sent tick at once in this process, and remembers the peak of
    ticks sent but not yet in gold."""

    def __init__(self, engine: Engine, plan: Plan, hold: int = 0) -> None:
        self.engine, self.plan = engine, plan
        self.held: list[dict] = []
        self.hold = hold  # keep this many messages queued before running the oldest
        self.messages = 0

    def send(self, message: dict) -> None:
        self.messages += 1
        self.held.append(message)
        while len(self.held) > self.hold:
            run_tick(self.engine, self.plan.settings.landing, TickMessage.parse(self.held.pop(0)))

    def depth(self) -> int:
        return len(self.held)


def test_the_dispatcher_stops_at_the_queue_limit_and_finishes_every_tick_in_gold(engine):
    # stuck_after sets the stall limit (10x): the first run gives up 2 s after its last gold
    settings = small_settings(
        fleet={"max_queue_depth": 3, "max_in_flight": 100, "stuck_after": 0.2}
    )
    plan = plan_backfill(settings, START, START + timedelta(hours=3), BOTH)
    fleet = InProcessFleet(engine, plan, hold=3)
    out = io.StringIO()
    backfill = Backfill(engine, plan, fleet, settings.fleet, Progress(out, tty=False), poll_s=0.0)
    outcome = backfill.run()
    assert not outcome.complete and outcome.stalled_s is not None
    assert fleet.depth() == 3
    while fleet.held:  # the queued three reach a worker after all
        run_tick(engine, settings.landing, TickMessage.parse(fleet.held.pop(0)))
    fleet.hold = 0
    outcome = Backfill(
        engine, plan, fleet, settings.fleet, Progress(out, tty=False), poll_s=0.0
    ).run()
    assert outcome.complete and outcome.gold == len(plan.ticks)
    assert outcome.sent == len(plan.ticks) - 3  # the three in gold are not sent again
    again = Backfill(engine, plan, fleet, settings.fleet, poll_s=0.0).run()
    assert again.complete and again.sent == 0
    assert f"{len(plan.ticks)}/{len(plan.ticks)} ticks 100 %" in out.getvalue()


def test_a_tick_waiting_in_the_queue_is_not_sent_again_however_long_it_waits(engine):
    settings = small_settings(
        fleet={"max_queue_depth": 10, "max_in_flight": 100, "stuck_after": 0.1}
    )
    plan = plan_backfill(settings, START, START + timedelta(hours=3), BOTH)
    fleet = InProcessFleet(engine, plan, hold=3)  # the last three wait for a worker forever
    outcome = Backfill(engine, plan, fleet, settings.fleet, poll_s=0.0).run()
    assert outcome.stalled_s is not None and fleet.depth() == 3
    assert fleet.messages == outcome.sent  # each tick sent once: no copies of queued ones


def test_a_tick_in_gold_whose_landing_failed_is_sent_again_until_its_file_lands(engine, tmp_path):
    from emugen.sinks import audit, lander

    blocked = tmp_path / "zone"
    blocked.write_text("a file where the landing root should be")  # every write fails
    settings = small_settings(
        fleet={"stuck_after": 0.1}, landing={"enabled": True, "root": str(blocked)}
    )
    plan = plan_backfill(settings, START, START + timedelta(hours=2), (Stream.companies,))
    fleet = InProcessFleet(engine, plan)
    first = Backfill(engine, plan, fleet, settings.fleet, poll_s=0.0).run()
    assert not first.complete and first.gold == 0
    assert len(first.unlanded) == len(plan.ticks) and fleet.messages > len(plan.ticks)
    with read_session(engine) as session:
        assert {b.status for b in session.scalars(select(BatchRow))} == {"gold"}

    blocked.unlink()  # the zone is back
    lander._failed_at.clear()  # no cool-down left over from the failures above
    fleet.messages = 0
    second = Backfill(engine, plan, fleet, settings.fleet, poll_s=0.0).run()
    assert second.complete and second.unlanded == []
    assert fleet.messages == len(plan.ticks)  # each resent once: it only lands the file
    assert audit.verify(engine, settings.landing).ok


def test_event_ticks_without_their_companies_in_store_or_range_are_refused(engine):
    settings = small_settings()
    plan = plan_backfill(
        settings, START + timedelta(hours=2), START + timedelta(hours=3), (Stream.events,)
    )
    with pytest.raises(BackfillInputError, match="--streams companies,events"):
        Backfill(engine, plan, InProcessFleet(engine, plan), settings.fleet).run()


def test_a_half_done_tick_is_finished_by_a_rerun(engine):
    settings = small_settings()
    plan = plan_backfill(settings, START, START + timedelta(hours=1), (Stream.companies,))
    tick = TickMessage.parse(plan.ticks[0].message("fp"))
    from emugen.backfill.tick import ensure_bronze

    ensure_bronze(engine, tick, None)
    with write_session(engine) as session:
        assert session.get(BatchRow, tick.batch_id).status == "bronze"
    outcome = Backfill(engine, plan, InProcessFleet(engine, plan), settings.fleet, poll_s=0.0).run()
    assert outcome.complete and outcome.sent == 1


def test_the_progress_line_gives_rates_and_an_eta(tmp_path: Path):
    from emugen.backfill.progress import Snapshot, line

    text = line(
        Snapshot(
            batches=10,
            total=40,
            records=1000,
            expected=4000,
            fresh_batches=10,
            fresh_records=1000,
            fresh_events=900,
            seconds=2.0,
        )
    )
    assert "10/40 ticks" in text and "5.0 batches/s" in text and "450 events/s" in text
    assert "ETA 0:00:06" in text


def test_on_a_terminal_the_progress_line_is_rewritten_in_place_and_ends_with_a_newline():
    from emugen.backfill.progress import Snapshot

    out, moments = io.StringIO(), iter([0.0, 0.05, 1.0, 1.1])
    progress = Progress(out, tty=True, now=lambda: next(moments))
    snap = Snapshot(1, 4, 10, 40, 1, 10, 10, 1.0)
    progress.show(snap)
    progress.show(snap)  # 50 ms later: not redrawn
    progress.show(snap)
    progress.show(snap, final=True)
    text = out.getvalue()
    assert text.count("\r") == 3 and text.endswith("\n") and text.count("\n") == 1


def test_a_backfill_with_no_broker_to_send_to_exits_1_saying_so(tmp_path):
    import subprocess
    import sys

    config = tmp_path / "emugen.yaml"
    config.write_text(
        f"database_url: sqlite:///{tmp_path / 's.db'}\nbroker_url: redis://127.0.0.1:1/0\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "emugen",
            "backfill",
            "--from",
            "2026-01-01T00:00:00Z",
            "--to",
            "2026-01-01T01:00:00Z",
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == done.stderr.strip().splitlines()[-1]
    assert "no broker answers at redis://127.0.0.1:1/0" in done.stderr


class TakenFleet:
    """A fleet whose workers take every message at once (the queue stays empty) and never
    finish: `on_send` says what a worker leaves in the store when it takes one."""

    def __init__(self, on_send) -> None:
        self.on_send = on_send
        self.sent: list[str] = []

    def send(self, message: dict) -> None:
        tick = TickMessage.parse(message)
        self.sent.append(tick.batch_id)
        self.on_send(tick)

    def depth(self) -> int:
        return 0


class FakeClock:
    """Monotonic seconds that move 20 s each time they are read."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 20.0
        return self.t


def _companies_plan(hours: int = 2) -> tuple[Settings, Plan]:
    settings = small_settings(fleet={"stuck_after": 60})
    return settings, plan_backfill(
        settings, START, START + timedelta(hours=hours), (Stream.companies,)
    )


def test_a_tick_a_worker_has_started_is_not_sent_again_while_its_claim_is_fresh(engine):
    from emugen.backfill.tick import claim

    settings, plan = _companies_plan()
    fleet = TakenFleet(lambda tick: claim(engine, tick.batch_id, "w1"))
    outcome = Backfill(engine, plan, fleet, settings.fleet, poll_s=0.0, now=FakeClock()).run()
    assert outcome.stalled_s is not None  # nothing reached gold: the workers never finish
    assert sorted(fleet.sent) == sorted(t.batch_id for t in plan.ticks)  # each sent once


def test_a_tick_whose_bronze_landed_moments_ago_is_not_sent_again(engine):
    from emugen.backfill.tick import ensure_bronze

    settings, plan = _companies_plan(hours=1)
    fleet = TakenFleet(lambda tick: ensure_bronze(engine, tick, "w1"))  # then silver never comes
    Backfill(engine, plan, fleet, settings.fleet, poll_s=0.0, now=FakeClock()).run()
    assert fleet.sent == [plan.ticks[0].batch_id]


def test_a_tick_whose_worker_went_quiet_past_stuck_after_is_sent_again(engine):
    def stale(tick: TickMessage) -> None:
        with write_session(engine) as session:
            session.merge(
                ControlState(
                    key=CLAIM + tick.batch_id,
                    value="w1",
                    updated_at=datetime.now(UTC) - timedelta(seconds=61),
                )
            )

    settings, plan = _companies_plan(hours=1)
    fleet = TakenFleet(stale)
    Backfill(engine, plan, fleet, settings.fleet, poll_s=0.0, now=FakeClock()).run()
    assert len(fleet.sent) > 1 and set(fleet.sent) == {plan.ticks[0].batch_id}
