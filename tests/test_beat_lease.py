"""One beat per broker: the lease a second beat is refused by, and how a dead beat's lapses."""

from __future__ import annotations

import time

import fakeredis
import pytest

from emugen.errors import BeatAlreadyRunning
from emugen.fleet.beat_lease import KEY, BeatLease


@pytest.fixture
def store() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


def test_a_second_beat_is_refused_with_the_broker_and_the_running_beat_named(store):
    running = BeatLease(store, "127.0.0.1:6379/0")
    running.acquire()
    second = BeatLease(store, "127.0.0.1:6379/0")
    with pytest.raises(BeatAlreadyRunning) as refused:
        second.acquire(wait_s=0.3, poll_s=0.05)
    message = str(refused.value)
    assert "127.0.0.1:6379/0" in message and running.token in message
    assert "Stop that beat first" in message
    assert store.get(KEY).decode() == running.token  # the running beat keeps its lease


def test_the_lease_of_a_beat_that_died_lapses_and_a_new_beat_takes_it(store):
    dead = BeatLease(store, "broker", ttl_ms=200)
    dead.acquire()  # and then never renews, like a beat killed with -9
    started = time.monotonic()
    successor = BeatLease(store, "broker", ttl_ms=200)
    successor.acquire(poll_s=0.02)
    assert store.get(KEY).decode() == successor.token
    assert 0.1 < time.monotonic() - started < 1.2


def test_renewing_keeps_the_lease_alive_beyond_its_ttl(store):
    running = BeatLease(store, "broker", ttl_ms=300)
    running.acquire()
    for _ in range(6):
        time.sleep(0.1)
        assert running.renew()
    assert not BeatLease(store, "broker").renew()


def test_a_beat_retakes_its_lease_after_the_broker_lost_every_key(store):
    running = BeatLease(store, "broker")
    running.acquire()
    store.flushall()  # a redis-server restarted without persistence
    assert running.renew()
    assert store.get(KEY).decode() == running.token


def test_renewing_reports_a_lease_another_beat_took_meanwhile(store):
    running = BeatLease(store, "broker")
    running.acquire()
    store.flushall()
    BeatLease(store, "broker").acquire()
    assert not running.renew()


def test_releasing_lets_a_successor_start_at_once_but_never_drops_another_beat_s_lease(store):
    first = BeatLease(store, "broker")
    first.acquire()
    first.release()
    successor = BeatLease(store, "broker")
    successor.acquire(wait_s=0)
    first.release()  # no longer ours: must not touch it
    assert store.get(KEY).decode() == successor.token
