"""An `emugen web` server for a benchmark: its config on the bench store, started, answering."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from emugen.errors import FleetStartError
from emugen.fleet.supervisor import spawn, wait_for


def bench_config(folder: Path, name: str, broker_url: str) -> Path:
    """A config on the shared bench store; the broker decides whether commits are pushed."""
    import yaml

    data = {
        "mode": "emulated",
        "seed": 42,
        "database_url": f"sqlite:///{folder / 'bench.db'}",
        "broker_url": broker_url,
        "companies": {"emulated": {"interval": 10, "min_batch_size": 5, "max_batch_size": 5}},
        "events": {"emulated": {"interval": 10, "min_batch_size": 5, "max_batch_size": 20}},
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def start_web(config: Path, port: int, server_poll: float, log: Path) -> subprocess.Popen:
    """`emugen web` on `config` and `port`, checking the store every `server_poll` s; the
    environment's store and broker URLs are dropped so the file decides."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("EMUGEN_DATABASE_URL", "EMUGEN_BROKER_URL")
    }
    return spawn(
        [
            sys.executable,
            "-m",
            "emugen",
            "web",
            "--port",
            str(port),
            "--config",
            str(config),
            "--poll-interval",
            str(server_poll),
        ],
        log,
        env=env,
    )


def wait_healthy(client: Any, url: str, server: subprocess.Popen, log: Path) -> None:
    """Until /api/health answers 200; FleetStartError with the log's tail if the server died."""

    def healthy() -> bool:
        if server.poll() is not None:
            raise FleetStartError(f"emugen web exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            return client.get(f"{url}/api/health").status_code == 200
        except Exception:  # noqa: BLE001 - not listening yet
            return False

    wait_for(healthy, 30, f"emugen web to answer /api/health (its log: {log})")
