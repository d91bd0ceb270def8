"""Seeded sub-streams and counter-based hashes: every random choice in emugen starts here."""

from __future__ import annotations

import numpy as np

from emugen.vocabulary import Stream

# Stable small integers for names that enter seeds: renaming a Python enum must not move data.
STREAM_CODE = {Stream.companies: 1, Stream.events: 2}
# each arrival condition has its own sub-stream, so turning one on moves no other draw
PURPOSE_CODE = {
    "size": 1,
    "records": 2,
    "quality": 3,
    "late": 4,
    "order": 5,
    "redelivered": 6,
    "delayed": 7,
    "drift": 8,
}
# Tags for counter-based hashes of entities that live outside any one batch.
TAG_COMPANY, TAG_DRIVER, TAG_TRUCK, TAG_PHANTOM = 101, 102, 103, 104

_U64 = np.uint64
_GOLDEN = _U64(0x9E3779B97F4A7C15)
_M1 = _U64(0xBF58476D1CE4E5B9)
_M2 = _U64(0x94D049BB133111EB)


def substream(seed: int, stream: Stream, seq: int, purpose: str) -> np.random.Generator:
    """The generator for one purpose of one batch, derived from (seed, stream, seq) only."""
    entropy = [seed, STREAM_CODE[Stream(stream)], seq, PURPOSE_CODE[purpose]]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))


@np.errstate(over="ignore")  # wrapping uint64 arithmetic is the point of the hash
def _splitmix(x: np.ndarray) -> np.ndarray:
    x = x + _GOLDEN
    x = (x ^ (x >> _U64(30))) * _M1
    x = (x ^ (x >> _U64(27))) * _M2
    mixed: np.ndarray = x ^ (x >> _U64(31))
    return mixed


def mix64(*words: int | np.ndarray) -> np.ndarray:
    """A 64-bit hash of the words, element-wise over arrays: the same words, the same bits."""
    arrays = np.broadcast_arrays(*(np.asarray(w, dtype=_U64) for w in words))
    h = np.zeros(arrays[0].shape, dtype=_U64)
    for word in arrays:
        h = _splitmix(h ^ word)
    return h


def unit(bits: np.ndarray) -> np.ndarray:
    """Map 64-bit hashes to floats in [0, 1) using their top 53 bits."""
    return (bits >> _U64(11)).astype(np.float64) * (1.0 / (1 << 53))


def uuid_strings(hi: np.ndarray, lo: np.ndarray) -> list[str]:
    """Format 128 seeded bits per row as RFC 4122 version-4 UUID strings, vectorised."""
    n = len(hi)
    if n == 0:
        return []
    hi = (hi & _U64(0xFFFFFFFFFFFF0FFF)) | _U64(0x0000000000004000)
    lo = (lo & _U64(0x3FFFFFFFFFFFFFFF)) | _U64(0x8000000000000000)
    both = np.empty((n, 2), dtype=">u8")
    both[:, 0], both[:, 1] = hi, lo
    hexed = np.frombuffer(both.tobytes().hex().encode(), dtype="S1").reshape(n, 32)
    dash = np.full((n, 1), b"-", dtype="S1")
    cols = [
        hexed[:, :8],
        dash,
        hexed[:, 8:12],
        dash,
        hexed[:, 12:16],
        dash,
        hexed[:, 16:20],
        dash,
        hexed[:, 20:],
    ]
    joined = np.ascontiguousarray(np.concatenate(cols, axis=1)).view("S36").ravel()
    return joined.astype("U36").tolist()
