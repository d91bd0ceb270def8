"""Silver's fast path: a clean event's silver row read straight from its bronze text by one regex.

A clean event lands as orjson writes it: the seven keys in one order, no spaces, no escapes.
One regex match over that text replaces `orjson.loads` + the contract's checks + building a
dict and then a tuple (the bulk of silver's time). It only *accepts*: a text it does not
match, or whose values break a rule, goes through `contract.parse` and `contract.check`
unchanged, so every rejection and its reason come from the contract. A match implies the
contract accepts the record with the same values (tests/test_fastpath.py checks both ways).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from emugen.contract import Context
from emugen.vocabulary import EPOCH, MS, EventType

_U = r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
# Decimal floats only (orjson writes 12.0, never 12): an int or an exponent takes the slow path.
_F = r"(-?(?:0|[1-9][0-9]*)\.[0-9]+)"
_CLEAN_EVENT = re.compile(
    r'\{"event_id":"'
    + _U
    + r'","company_id":"'
    + _U
    + r'","driver_id":"'
    + _U
    + r'","truck_id":"'
    + _U
    + r'","event_type":"([a-z_]{1,20})"'
    + r',"event_timestamp":"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z)"'
    + r',"location":(?:null|\{"lat":'
    + _F
    + r',"lon":'
    + _F
    + r"\})\}"
).fullmatch
_EVENT_TYPES = frozenset(e.value for e in EventType)


def match_event(payload: str) -> tuple[str, ...] | None:
    """The groups (event, company, driver, truck, type, stamp, lat, lon) of a text in the
    clean layout, lat and lon None without a location; None for any other text."""
    found = _CLEAN_EVENT(payload)
    return None if found is None else found.groups()


def company_of(groups: tuple[str, ...]) -> str:
    return groups[1]


def event_row(
    groups: tuple[str, ...], ctx: Context, stored_text: bool, batch_id: str, row_no: int
) -> tuple[Any, ...] | None:
    """The silver row (EVENT_COLUMNS order) when the contract accepts this event, else None.

    `stored_text`: the timestamp goes in as SQLite's stored text (see
    db.columns.sqlite_text_from_stamp), not as a datetime.
    """
    eid, cid, did, tid, kind, stamp, lat_text, lon_text = groups
    if kind not in _EVENT_TYPES:
        return None
    known = ctx.known_companies
    if known is not None and cid not in known:
        return None
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if not ctx.interval_start <= moment < ctx.interval_end:
        return None
    lat = lon = None
    if lat_text is not None:
        lat, lon = float(lat_text), float(lon_text)
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            return None
    at: Any = f"{stamp[:23]}000Z" if stored_text else moment
    return (eid, cid, did, tid, kind, at, (moment - EPOCH) // MS, lat, lon, batch_id, row_no)
