"""Keys a load has written so far, as a one-hash Bloom filter: "surely new" or "maybe seen"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

_BITS = 1 << 25  # 4 MB: at 1,000,000 keys ~3 % of new keys read as "maybe seen", at 100,000 0.3 %


class SeenKeys:
    """What one stage has loaded, so that its rows with surely-new keys skip the key lookup.

    A bitmap, not a set of the keys: a million event ids would take ~100 MB as a set, 4 MB
    here. "Maybe seen" is only a hint (a repeat, or two keys sharing a bit); those rows keep
    the exact path, so a false hint costs a lookup, never a row.
    """

    def __init__(self, bits: int = _BITS) -> None:
        self._bits = np.zeros(bits >> 3, dtype=np.uint8)
        self._mask = bits - 1

    def first_seen(self, keys: Sequence[Any]) -> np.ndarray:
        """A bool per key: True where no earlier key (here or in earlier calls) shares its
        bit. Marks every key as seen."""
        # hash() is salted per process, which is fine: the bitmap lives for one stage
        at = np.fromiter((hash(k) for k in keys), dtype=np.int64, count=len(keys)) & self._mask
        byte, bit = at >> 3, np.left_shift(1, at & 7).astype(np.uint8)
        fresh = (self._bits[byte] & bit) == 0
        once = np.zeros(len(keys), dtype=bool)
        once[np.unique(at, return_index=True)[1]] = True  # a repeat within this call too
        np.bitwise_or.at(self._bits, byte, bit)
        return fresh & once
