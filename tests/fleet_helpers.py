"""Config files for fleet tests: a YAML file per test, pointing at its own SQLite database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

# every fleet test runs emulated with 30 % defective records; only the knobs below vary
RATE = 0.3


def write_config(
    path: Path,
    database_url: str,
    *,
    interval: float = 2,
    size: tuple[int, int] = (3, 8),
    broker_url: str = "memory://",
    fleet: dict[str, Any] | None = None,
) -> Path:
    data = {
        "mode": "emulated",
        "seed": 7,
        "database_url": database_url,
        "broker_url": broker_url,
        "companies": {
            "emulated": {"interval": interval, "min_batch_size": 5, "max_batch_size": 5},
            "production": {"interval": "PT1H"},
            "quality": {"rate": RATE},
        },
        "events": {
            "emulated": {
                "interval": interval,
                "min_batch_size": size[0],
                "max_batch_size": size[1],
            },
            "production": {"interval": "PT15M", "events_per_driver": 0.05},
            "quality": {"rate": RATE},
        },
        "fleet": fleet or {},
        # beside the config, never the working copy's var/landing (in-process tests run there)
        "landing": {"root": str(path.parent / "landing")},
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path
