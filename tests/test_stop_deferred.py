"""Beat's tick send runs whole: a stop signal during it reaches the old handler after it."""

import os
import signal

from emugen.fleet.signals import stop_deferred


def _spin() -> None:
    for _ in range(10_000):  # bytecode boundaries, where a pending Python handler runs
        pass


def test_a_sigterm_inside_the_block_reaches_the_old_handler_only_after_the_block():
    seen: list[str] = []
    old = signal.signal(signal.SIGTERM, lambda _n, _f: seen.append("handler"))
    try:
        with stop_deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            _spin()
            seen.append("block done")
        _spin()
    finally:
        signal.signal(signal.SIGTERM, old)
    assert seen == ["block done", "handler"]


def test_the_handlers_are_restored_even_when_the_block_raises():
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        with stop_deferred():
            raise RuntimeError("the send failed")
    except RuntimeError:
        pass
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_without_a_signal_nothing_is_raised_after_the_block():
    seen: list[str] = []
    old = signal.signal(signal.SIGTERM, lambda _n, _f: seen.append("handler"))
    try:
        with stop_deferred():
            _spin()
        _spin()
    finally:
        signal.signal(signal.SIGTERM, old)
    assert seen == []
