"""One structured (logfmt) line per batch per stage (FR-010)."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("emugen.pipeline")


def _value(v: Any) -> str:
    text = f"{v:.1f}" if isinstance(v, float) else str(v)
    return f'"{text}"' if (" " in text or not text) else text


def stage_done(batch_id: str, stage: str, records: int, duration_ms: float, **extra: Any) -> None:
    fields = {
        "batch_id": batch_id,
        "stage": stage,
        "records": records,
        "duration_ms": duration_ms,
        **extra,
    }
    logger.info(" ".join(f"{k}={_value(v)}" for k, v in fields.items()))
