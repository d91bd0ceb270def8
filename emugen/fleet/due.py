"""What is due: each stream's next tick as beat plans it, kept on the broker for every reader.

Beat alone knows when it will next send each stream's tick (its entries' last run plus their
interval). It publishes that plan to one Redis key with a short life, refreshed every few
seconds and rewritten (and announced) whenever it changes: after each tick and after a config
reload. The dashboard and `emugen status` already read the broker, so the plan costs them one
GET; and when beat stops the key lapses, so nobody shows a plan nobody follows.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from emugen.fleet.announce import announce
from emugen.fleet.outage import client_for
from emugen.vocabulary import Stream

logger = logging.getLogger("emugen.due")
KEY = "emugen:beat:due"
TTL_S = 15  # beat rewrites it every REFRESH_S: a beat gone for this long has no plan
REFRESH_S = 5.0


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def plan(entries: Mapping[str, Any], mode: str) -> dict[str, Any]:
    """Beat's plan from its entries: per stream, the last tick, the next one and the interval.

    An interval schedule runs `run_every` after its entry's last run (beat measures each period
    from the previous send), whatever the mode was when that send happened.
    """
    streams: dict[str, Any] = {}
    for stream in Stream:
        entry = entries.get(f"generate-{stream.value}")
        if entry is None:
            continue
        every = entry.schedule.run_every
        last = _utc(entry.last_run_at)
        streams[stream.value] = {
            "last_at": last.isoformat(),
            "next_at": (last + every).isoformat(),
            "interval_s": every.total_seconds(),
        }
    return {"mode": mode, "streams": streams}


class DuePublisher:
    """Beat's side: writes the plan when it changes (and announces it), else every REFRESH_S."""

    def __init__(self, client: Any, url: str) -> None:
        self.client, self.url = client, url
        self._last: dict[str, Any] | None = None
        self._written = 0.0
        self._failing = False  # say so once per outage, not every tick

    def publish(self, current: dict[str, Any]) -> bool:
        """Write `current` if it changed or is due a refresh; True if it changed."""
        changed = current != self._last
        if not changed and time.monotonic() - self._written < REFRESH_S:
            return False
        try:
            stamped = {**current, "published_at": datetime.now(UTC).isoformat()}
            self.client.set(KEY, json.dumps(stamped), ex=TTL_S)
        except Exception as exc:  # noqa: BLE001 - beat keeps ticking; readers show "unknown"
            if not self._failing:
                logger.warning("could not publish what is due on the broker: %s", exc)
            self._failing, self._last = True, None  # try again on the next tick
            return False
        self._failing = False
        self._last, self._written = current, time.monotonic()
        if changed:
            announce(self.url, "due")
        return changed

    def withdraw(self) -> None:
        """A beat that stops has no plan: readers say so at once rather than after TTL_S."""
        try:
            self.client.delete(KEY)
        except Exception:  # noqa: BLE001 - the key lapses by itself
            logger.warning("could not withdraw what is due; it lapses in %d s", TTL_S)
        else:
            announce(self.url, "due")


def publisher_for(current: DuePublisher | None, url: str) -> DuePublisher | None:
    """The publisher for the broker at `url` (`current` if it is that one); None off Redis."""
    if current is not None and current.url == url:
        return current
    client = client_for(url)
    return None if client is None else DuePublisher(client, url)


def read(client: Any) -> dict[str, Any] | None:
    """The plan beat published, or None (no beat, or a broker other than Redis)."""
    if client is None:
        return None
    raw = client.get(KEY)
    return json.loads(raw) if raw else None


def read_quietly(client: Any) -> tuple[dict[str, Any] | None, str | None]:
    """(the plan or None, why it could not be read): a CLI must not fail on a broker outage."""
    try:
        return read(client), None
    except Exception as exc:  # noqa: BLE001 - shown as the reason nothing is known
        return None, f"the broker did not answer ({str(exc).strip() or type(exc).__name__})"


# -- how readers show it -----------------------------------------------------------------------


def span(seconds: float) -> str:
    """An interval as people say it: `10 s`, `15 min`, `1 h`, `1 h 30 min`."""
    s = round(seconds)
    if s < 60 or s % 60:
        return f"{seconds:g} s" if s < 60 else f"{s // 60} min {s % 60} s"
    minutes = s // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h" + (f" {rest} min" if rest else "")


def countdown(seconds: float) -> str:
    """Time left, coarse as a person reads it: `now`, `in 42 s`, `in 37 min`, `in 1 h 5 min`."""
    if seconds < 0.5:
        return "now"
    if seconds < 90:
        return f"in {round(seconds)} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"in {minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"in {hours} h" + (f" {rest} min" if rest else "")


def view(
    published: dict[str, Any] | None, now: datetime, paused: bool, error: str | None = None
) -> dict[str, Any]:
    """What readers show: per stream the next tick, seconds left, the interval, a line."""
    if published is None:
        why = error or "beat is not running (or not on a Redis broker)"
        return {
            "known": False,
            "paused": paused,
            "mode": None,
            "streams": {},
            "note": f"{why}: nothing is known to be due",
        }
    mode = published.get("mode")
    streams = {}
    for stream, due in published.get("streams", {}).items():
        at = datetime.fromisoformat(due["next_at"])
        left = (at - now).total_seconds()
        every = f"every {span(due['interval_s'])} ({mode})"
        when = (
            f"{stream} batches paused"
            if paused
            else f"next {stream} batch {at:%H:%M:%S}, {countdown(left)}"
        )
        streams[stream] = {
            **due,
            "in_s": round(left, 1),
            "when": when,
            "every": every,
            "line": f"{when} · {every}",
        }
    return {
        "known": True,
        "paused": paused,
        "mode": mode,
        "streams": streams,
        "note": "paused: beat skips every tick until `emugen resume`" if paused else None,
    }


def brief(shown: dict[str, Any]) -> str:
    """One short part of `emugen up`'s summary line: `next companies 14:00:00 (in 37 min), …`."""
    if not shown["known"]:
        return "next: unknown (no beat plan)"
    if shown["paused"]:
        return "next: paused"
    parts = []
    for stream, due in shown["streams"].items():
        at = datetime.fromisoformat(due["next_at"])
        parts.append(f"{stream} {at:%H:%M:%S} ({countdown(due['in_s'])})")
    return "next: " + ", ".join(parts)
