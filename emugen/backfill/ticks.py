"""A plan's ticks as columns, a `Tick` object made only when one is read.

A ten-year plan holds 438,000 ticks. As objects (a spec each, then a slotted object with its
own datetime and reference) they cost 300 bytes to kilobytes apiece; as columns they cost
~33 bytes: stream, seq, expected records, the company batches waited for, the first ordinal
or watermark, and which prefix of the run's exclusion ledger the tick names.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from emugen.generate import BatchSpec, build_spec
from emugen.generate.exclusions import Exclusions, remember
from emugen.pipeline.bronze import batch_id_for
from emugen.settings import Settings
from emugen.vocabulary import Mode, Stream

STREAMS = (Stream.events, Stream.companies)  # by code; at one instant events go first


@dataclass(frozen=True, slots=True)
class Tick:
    """One batch to make: where it sits, its tick time, and the company batches it waits for."""

    stream: Stream
    seq: int
    records: int  # expected record count, duplicates included (known from the spec)
    maker: Maker
    companies_before: int = 0  # events: company batches 1..n must be in silver first
    position: int = 0  # companies: the first ordinal; events: the watermark
    ledger_index: int = -1  # events: which prefix of the exclusion ledger it names

    @property
    def scheduled_at(self) -> datetime:
        return self.maker.tick_time(self.stream, self.seq)

    @property
    def spec(self) -> BatchSpec:
        """Built when asked for (a message, a check), never kept."""
        if self.stream is Stream.companies:
            return build_spec(
                self.maker.settings,
                self.stream,
                self.seq,
                mode=self.maker.mode,
                first_ordinal=self.position,
            )
        return build_spec(
            self.maker.settings,
            self.stream,
            self.seq,
            mode=self.maker.mode,
            watermark=self.position,
            exclusions=self.maker.exclusions(self.ledger_index),
            sources=self.maker.sources(self.seq),
        )

    def own_spec(self) -> BatchSpec:
        """The spec without the earlier batches a redelivered copy reads (as a source)."""
        return build_spec(
            self.maker.settings,
            self.stream,
            self.seq,
            mode=self.maker.mode,
            watermark=self.position,
            exclusions=self.maker.exclusions(self.ledger_index),
        )

    @property
    def batch_id(self) -> str:
        return batch_id_for(self.stream, self.seq)

    def message(self, fingerprint: str) -> dict[str, object]:
        """The Celery message: everything a worker needs besides its store's URLs."""
        return {
            "spec": self.spec.model_dump_json(),
            "scheduled_at": self.scheduled_at.isoformat(),
            "fingerprint": fingerprint,
            "companies_before": self.companies_before,
        }


class Maker:
    """What every tick of a plan shares: its settings, mode, and the exclusion ledger's
    prefixes (length and digest) that its event ticks name."""

    def __init__(self, settings: Settings, mode: Mode) -> None:
        self.settings, self.mode = settings, mode
        assert settings.clock.start is not None
        self.origin = settings.clock.start
        self.counts = np.zeros(0, dtype=np.int64)
        self.digests = np.zeros(0, dtype="S32")
        self.ordinals = np.zeros(0, dtype=np.int64)  # the whole ledger: each prefix a view
        self.ticks: TickColumns | None = None  # set once the plan is frozen

    def tick_time(self, stream: Stream, seq: int) -> datetime:
        """The end of the interval of batch `seq`, as build_spec derives it on this clock."""
        end = self.origin + self.settings.interval(stream, self.mode) * seq
        return end.replace(microsecond=end.microsecond // 1000 * 1000)

    def sources(self, seq: int) -> tuple[BatchSpec, ...]:
        """The specs of the plan's event batches a redelivered copy in batch `seq` may copy
        from (up to max_age back), as the live fleet reads them from its store."""
        redo = self.settings.events.arrival.redelivered
        if redo is None or self.ticks is None:
            return ()
        seqs = self.ticks.seqs(Stream.events)
        found = []
        for source in range(max(1, seq - redo.max_age), seq):
            at = int(np.searchsorted(seqs, source))
            if at < len(seqs) and int(seqs[at]) == source:
                found.append(self.ticks.event(at).own_spec())
        return tuple(found)

    def exclusions(self, index: int) -> Exclusions | None:
        """The reference of ledger prefix `index`, its list loaded for a draft here."""
        if index < 0:
            return None
        count, digest = int(self.counts[index]), self.digests[index].decode()
        return remember(self.ordinals[:count], digest)


class TickColumns:
    """The ticks in clock order (events before companies at one instant), read as `Tick`s."""

    def __init__(self, maker: Maker, columns: dict[str, np.ndarray]) -> None:
        self.maker = maker
        self.stream, self.seq, self.records = (
            columns["stream"],
            columns["seq"],
            columns["records"],
        )
        self.before, self.position, self.ledger = (
            columns["before"],
            columns["position"],
            columns["ledger"],
        )

    def __len__(self) -> int:
        return len(self.seq)

    def __getitem__(self, i: int) -> Tick:
        return Tick(
            STREAMS[self.stream[i]],
            int(self.seq[i]),
            int(self.records[i]),
            self.maker,
            int(self.before[i]),
            int(self.position[i]),
            int(self.ledger[i]),
        )

    def __iter__(self) -> Iterator[Tick]:
        maker = self.maker
        for code, seq, records, before, position, ledger in zip(
            self.stream.tolist(),
            self.seq.tolist(),
            self.records.tolist(),
            self.before.tolist(),
            self.position.tolist(),
            self.ledger.tolist(),
            strict=True,
        ):
            yield Tick(STREAMS[code], seq, records, maker, before, position, ledger)

    def seqs(self, stream: Stream) -> np.ndarray:
        """The seqs of `stream`'s ticks, ascending."""
        return self.seq[self.stream == STREAMS.index(stream)]

    def event(self, k: int) -> Tick:
        """The k-th event tick in seq order."""
        rows = np.flatnonzero(self.stream == STREAMS.index(Stream.events))
        return self[int(rows[k])]

    def records_of(self, stream: Stream) -> int:
        return int(self.records[self.stream == STREAMS.index(stream)].sum())


class TickBuilder:
    """Ticks appended in any order, frozen into clock-ordered columns."""

    def __init__(self, maker: Maker) -> None:
        self.maker = maker
        self._columns = {
            name: array("q")
            for name in ("stream", "seq", "records", "before", "position", "ledger")
        }
        self._counts, self._digests = array("q"), bytearray()

    def boundary(self, exclusions: Exclusions) -> int:
        """The ledger index of this prefix (a new one when the ledger grew since the last)."""
        if not self._counts or self._counts[-1] != exclusions.count:
            self._counts.append(exclusions.count)
            self._digests += exclusions.digest.encode()
        return len(self._counts) - 1

    def add(self, tick: Tick) -> None:
        for name, value in (
            ("stream", STREAMS.index(tick.stream)),
            ("seq", tick.seq),
            ("records", tick.records),
            ("before", tick.companies_before),
            ("position", tick.position),
            ("ledger", tick.ledger_index),
        ):
            self._columns[name].append(value)

    def freeze(self, ordinals: np.ndarray) -> TickColumns:
        """The ticks in clock order; `ordinals`: the exclusion ledger they name prefixes of."""
        count = len(self)
        stream = (
            np.frombuffer(self._columns["stream"], dtype=np.int64)
            if count
            else np.zeros(0, dtype=np.int64)
        )
        seq = np.frombuffer(self._columns["seq"], dtype=np.int64) if count else stream
        step = [
            self.maker.settings.interval(s, self.maker.mode) // timedelta(microseconds=1)
            for s in STREAMS
        ]
        order = np.lexsort((stream, seq * np.where(stream == 0, step[0], step[1])))
        del stream, seq
        columns = {}
        for name, dtype in _DTYPES.items():  # one column at a time: the builder's is let go
            values = (
                np.frombuffer(self._columns[name], dtype=np.int64)
                if count
                else np.zeros(0, dtype=np.int64)
            )
            columns[name] = values[order].astype(dtype)
            del values
            self._columns[name] = array("q")
        self.maker.counts = np.array(self._counts, dtype=np.int64)
        self.maker.digests = np.frombuffer(bytes(self._digests), dtype="S32")
        self.maker.ordinals = ordinals
        self.maker.ticks = TickColumns(self.maker, columns)
        return self.maker.ticks

    def __len__(self) -> int:
        return len(self._columns["seq"])


# ~33 bytes a tick once frozen (a ledger index and the company batches waited for fit int32)
_DTYPES = {
    "stream": np.int8,
    "seq": np.int64,
    "records": np.int64,
    "before": np.int32,
    "position": np.int64,
    "ledger": np.int32,
}
