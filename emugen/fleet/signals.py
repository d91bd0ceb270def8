"""Stop signals held back across a block that must finish once begun.

Celery beat stops on SIGTERM or SIGINT by raising SystemExit from its handler, wherever the
main thread is. Between logging a tick as sent and publishing it that loses the tick: logged,
never sent, never a batch nor a skip. `stop_deferred` takes the signal during the block and
hands it to the handler that was there as soon as the block is over.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def stop_deferred() -> Iterator[None]:
    """Run the block whole: a SIGTERM or SIGINT arriving meanwhile is raised again after it.

    Only the main thread can swap handlers (and only it runs them); elsewhere a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda n, _f: caught.append(n)) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
        if caught:
            os.kill(os.getpid(), caught[0])  # the handler that was there runs now
