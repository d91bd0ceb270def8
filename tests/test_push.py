"""Push on commit: stages announce on the broker, the web's subscription wakes its broadcaster."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from datetime import UTC, datetime
from types import SimpleNamespace

import fakeredis
import pytest
from sqlalchemy import select

from emugen.db.models import BatchRow
from emugen.db.session import read_session
from emugen.fleet import announce, due, worker
from emugen.fleet.broker import free_port
from emugen.pipeline import gold, silver
from emugen.pipeline.bronze import Origin, generate_and_land
from emugen.vocabulary import Stream
from emugen.web.app import create_app
from emugen.web.probe import BrokerProbe
from emugen.web.stream import Broadcaster
from emugen.web.subscription import Subscriber
from tests.fleet_helpers import write_config

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
PONG = {"worker1@host": {"ok": "pong"}}


def _subscribed(redis: fakeredis.FakeRedis) -> object:
    pubsub = redis.pubsub()
    pubsub.subscribe(announce.CHANNEL)
    return pubsub


async def _never() -> bool:
    return False


async def _snapshot(events, timeout: float) -> dict:
    """The next `snapshot` event of a client's byte stream (heartbeats skipped)."""
    while True:
        chunk = (await asyncio.wait_for(anext(events), timeout)).decode()
        if chunk.startswith("id:"):
            return json.loads(chunk.split("data: ", 1)[1])


def test_an_announcement_wakes_the_broadcaster_long_before_its_timed_poll():
    redis = fakeredis.FakeRedis()
    store = {"n": 0}
    heard: list[str] = []
    checks: list[int] = []

    def version() -> int:
        checks.append(store["n"])
        return store["n"]

    broadcaster = Broadcaster(
        version, lambda: {"n": store["n"]}, interval=30, pushed=lambda: subscriber.listening
    )

    def on_message(kind: str) -> None:
        heard.append(kind)
        broadcaster.wake()

    subscriber = Subscriber(
        "redis://push-test/0", on_message, connect=lambda url: _subscribed(redis)
    )

    async def main() -> tuple[dict, float]:
        events = broadcaster.events(None, _never)
        assert (await _snapshot(events, 5))["n"] == 0
        subscriber.start()
        # the subscription's own wake has been looked at (nothing new), so only the
        # announcement below can bring the commit before the timed poll
        while len(checks) < 2:
            await asyncio.sleep(0.01)
        store["n"] = 1  # the commit, then its announcement
        started = time.monotonic()
        assert announce.announce("redis://push-test/0", "gold", "companies-000001", client=redis)
        # the timed poll is 30 s away: only the announcement can bring it within 5 s
        pushed = await _snapshot(events, 5)
        waited = time.monotonic() - started
        await events.aclose()
        await broadcaster.stop()
        return pushed, waited

    try:
        pushed, waited = asyncio.run(main())
    finally:
        subscriber.stop()
    assert pushed["n"] == 1 and waited < 5
    assert heard == ["subscribed", "gold"]


def test_a_lost_subscription_is_retried_and_its_return_wakes_the_poll():
    redis = fakeredis.FakeRedis()
    attempts: list[int] = []
    heard: list[str] = []

    def connect(url: str) -> object:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("connection refused")
        return _subscribed(redis)

    subscriber = Subscriber("redis://push-test/0", heard.append, connect=connect, retry_s=0.05)
    subscriber.start()
    try:
        deadline = time.monotonic() + 10
        while not subscriber.listening and time.monotonic() < deadline:
            time.sleep(0.01)
        assert subscriber.listening and len(attempts) == 2
        assert heard == ["subscribed"]  # missed announcements: the server looks once anyway
    finally:
        subscriber.stop()
    assert not subscriber.listening


def test_a_broker_that_drops_the_subscription_sends_the_server_back_to_fast_polling():
    server = fakeredis.FakeServer()
    heard: list[str] = []
    subscriber = Subscriber(
        "redis://push-test/0",
        heard.append,
        retry_s=0.05,
        connect=lambda url: _subscribed(fakeredis.FakeRedis(server=server)),
    )

    def until(listening: bool) -> bool:
        deadline = time.monotonic() + 10
        while subscriber.listening is not listening and time.monotonic() < deadline:
            time.sleep(0.01)
        return subscriber.listening is listening

    subscriber.start()
    try:
        assert until(True)
        server.connected = False  # the broker goes away
        assert until(False)
        server.connected = True  # and comes back: subscribed again, the server looks once
        assert until(True)
        assert heard == ["subscribed", "subscribed"]
    finally:
        subscriber.stop()


def test_no_redis_broker_means_no_subscription_and_no_announcement():
    subscriber = Subscriber("memory://", lambda kind: None)
    subscriber.start()
    assert subscriber._thread is None and not subscriber.listening
    assert announce.announce("memory://", "gold", "x") is False


@pytest.mark.parametrize("pushed", [False, True])
def test_the_timed_poll_slows_to_a_second_only_while_announcements_arrive(pushed):
    checks: list[float] = []

    def version() -> int:
        checks.append(time.monotonic())
        return 0

    broadcaster = Broadcaster(version, lambda: {}, interval=0.05, pushed=lambda: pushed)
    assert broadcaster.quiet_interval == 1.0

    async def main() -> None:
        events = broadcaster.events(None, _never)
        await _snapshot(events, 5)
        await asyncio.sleep(0.7)
        await events.aclose()
        await broadcaster.stop()

    asyncio.run(main())
    assert len(checks) == 1 if pushed else len(checks) >= 3


def test_a_failed_announcement_never_raises_and_backs_off():
    calls: list[str] = []

    class Refusing:
        def publish(self, channel: str, message: str) -> int:
            calls.append(message)
            raise ConnectionError("connection refused")

    url = f"redis://127.0.0.1:{free_port()}/0"
    assert announce.announce(url, "gold", "a", client=Refusing()) is False
    assert announce.announce(url, "gold", "b", client=Refusing()) is False
    assert calls == ["gold a"]  # the second stayed quiet for BACKOFF_S


def test_a_broker_that_is_down_does_not_fail_the_stage_that_announces(tmp_path, caplog):
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    config = write_config(
        tmp_path / "emugen.yaml", f"sqlite:///{tmp_path / 'emugen.db'}", broker_url=url
    )
    runtime = worker.configure(config)
    # a Celery test worker run earlier may have left the root logger at ERROR
    caplog.set_level(logging.WARNING, logger=announce.logger.name)
    try:
        settings = runtime.settings()
        assert settings.broker_url == url
        engine = runtime.engine(settings)
        landed = generate_and_land(engine, settings, Stream.companies, T0, origin=Origin("test"))
        task = SimpleNamespace(request=SimpleNamespace(retries=0, hostname="test@host"))
        worker.run_stage(task, "silver", landed.batch_id, silver.run)
        worker.run_stage(task, "gold", landed.batch_id, gold.run)
        with read_session(engine) as session:
            status = session.scalar(
                select(BatchRow.status).where(BatchRow.batch_id == landed.batch_id)
            )
        assert status == "gold"
        assert f"could not announce silver {landed.batch_id}" in caplog.text
    finally:
        worker.configure()


def test_the_web_reads_beats_new_plan_before_it_wakes_the_page(tmp_path):
    config = write_config(
        tmp_path / "emugen.yaml",
        f"sqlite:///{tmp_path / 'emugen.db'}",
        broker_url="redis://127.0.0.1:6379/0",
    )
    redis = fakeredis.FakeRedis()
    probe = BrokerProbe(
        "redis://127.0.0.1:6379/0", client=redis, pinger=lambda: PONG, depth_every=3600
    )
    web = create_app(config, probe=probe, environ={}).state.web
    try:
        assert web.snapshot()["due"]["known"] is False  # no beat has published a plan
        before = web.version()
        redis.set(
            due.KEY,
            json.dumps(
                {
                    "mode": "production",
                    "streams": {
                        "companies": {
                            "last_at": T0.isoformat(),
                            "next_at": "2026-12-02T13:00:00+00:00",
                            "interval_s": 3600.0,
                        }
                    },
                }
            ),
        )
        woken = threading.Event()
        web.broadcaster.wake = woken.set  # type: ignore[method-assign]
        web._heard("due")  # what the subscription does with beat's announcement
        assert woken.is_set() and web.version() != before
        shown = web.snapshot()["due"]
        assert shown["known"] and shown["mode"] == "production"
        assert shown["streams"]["companies"]["every"] == "every 1 h (production)"
    finally:
        probe.close()


def test_commits_during_a_build_make_one_build_right_after_it_with_no_pause(monkeypatch):
    store = {"n": 0}
    built: list[int] = []
    entered, release = threading.Event(), threading.Event()
    release.set()

    def build() -> dict:
        n = store["n"]  # what a build reads when it starts
        entered.set()
        release.wait(10)  # a slow snapshot: its queries and JSON
        built.append(n)
        return {"n": n}

    paused: list[float] = []
    real_sleep = asyncio.sleep

    async def recorded_sleep(delay: float, *args: object) -> object:
        if delay > 0:
            paused.append(delay)
        return await real_sleep(delay, *args)

    monkeypatch.setattr(asyncio, "sleep", recorded_sleep)
    broadcaster = Broadcaster(lambda: store["n"], build, interval=30, pushed=lambda: True)

    async def main() -> list[int]:
        events = broadcaster.events(None, _never)
        await _snapshot(events, 5)
        entered.clear()
        release.clear()
        store["n"] = 1  # bronze commits: its build starts at once, and is slow
        broadcaster.wake()
        assert await asyncio.to_thread(entered.wait, 5)
        for _ in range(50):  # silver, gold and more commit while it runs
            store["n"] += 1
            broadcaster.wake()
        await asyncio.to_thread(lambda: None)  # the wakes have reached the loop
        release.set()
        seen = [(await _snapshot(events, 5))["n"]]
        while seen[-1] != store["n"]:
            seen.append((await _snapshot(events, 5))["n"])
        assert not broadcaster.pacer.pending  # nothing left for another build
        await events.aclose()
        await broadcaster.stop()
        return seen

    seen = asyncio.run(main())
    assert seen == [1, 51]  # the slow build, then exactly one carrying all fifty
    assert built == [0, 1, 51]
    assert paused == []  # the build after it was not held back by a pacing gap
