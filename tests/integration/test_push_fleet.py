"""Push on commit, on a real fleet: a gold commit reaches an SSE client at once, not at the
server's next poll (set to 5 s here), through Redis pub/sub on the fleet's own broker."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select

from emugen.db.models import BatchRow
from emugen.db.session import read_session
from emugen.fleet.broker import free_port
from tests.integration.conftest import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.redis, pytest.mark.slow]

SERVER_POLL_S = 5.0
PUSHED_S = 1.0  # the acceptance bound: a gold commit at the client within this
COMMITS = 4  # consecutive gold commits that must each arrive within PUSHED_S


class Arrivals:
    """(wall clock, gold batches) of each snapshot an SSE client received."""

    def __init__(self, url: str) -> None:
        self.seen: list[tuple[datetime, int]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._read, args=(url,), daemon=True)
        self.thread.start()

    def _read(self, url: str) -> None:
        try:
            with (
                httpx.Client(timeout=httpx.Timeout(5, read=None)) as client,
                client.stream("GET", f"{url}/api/stream") as response,
            ):
                for line in response.iter_lines():
                    if line.startswith("data:") and '"streams"' in line:
                        data = json.loads(line[5:])
                        gold = sum(s["gold"] for s in data["streams"].values())
                        self.seen.append((datetime.now(UTC), gold))
        except httpx.HTTPError:
            if not self.stop.is_set():  # the server going away at the end is expected
                raise

    def first(self, gold: int) -> datetime | None:
        return next((at for at, g in list(self.seen) if g >= gold), None)


def test_a_gold_commit_reaches_the_sse_client_long_before_the_servers_5_s_poll(fleet):
    fleet.write(interval=1)
    port = free_port()
    fleet.spawn(
        "web",
        "-m",
        "emugen",
        "web",
        "--port",
        str(port),
        "--config",
        str(fleet.config),
        "--poll-interval",
        str(SERVER_POLL_S),
    )
    url = f"http://127.0.0.1:{port}"

    def subscribed() -> bool:
        try:
            return bool(httpx.get(f"{url}/api/snapshot", timeout=2).json()["pushed"])
        except httpx.HTTPError:
            return False

    wait_for(subscribed, 20, "emugen web to subscribe to the fleet's announcements")
    client = Arrivals(url)
    try:
        wait_for(lambda: client.seen, 10, "the first snapshot")
        connected = len(fleet.batches())  # none yet: the fleet starts now
        fleet.start()
        wait_for(
            lambda: sum(b.status == "gold" for b in fleet.batches()) >= connected + COMMITS + 1,
            60,
            f"{COMMITS + 1} batches in gold",
        )
        time.sleep(PUSHED_S)  # time for the last one to arrive
        with read_session(fleet.engine()) as session:
            golds = sorted(
                session.scalars(select(BatchRow.gold_at).where(BatchRow.gold_at.is_not(None)))
            )
        waits = []
        for k, committed in enumerate(golds[: COMMITS + 1], start=1):
            arrived = client.first(k)
            assert arrived is not None, f"gold batch {k} never reached the client"
            waits.append((arrived - committed).total_seconds())
        print(
            f"gold commit -> SSE client with a {SERVER_POLL_S:g} s server poll: "
            + ", ".join(f"{w * 1000:.0f} ms" for w in waits)
        )
        assert all(w < PUSHED_S for w in waits), (waits, fleet.logs())
    finally:
        client.stop.set()
