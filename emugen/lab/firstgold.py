"""`emugen lab bench first-gold`: how long a newcomer waits, from `bash scripts/up.sh` in a fresh
clone to the first events batch with records in gold, cold (nothing installed) and warm
(installed, a fresh store), beside the in-process pipeline making the same first gold.

The clone gets its own broker port (nothing answers there, so `up` starts a private Redis) and
free dashboard and Flower ports, so the run never touches another fleet.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from emugen.fleet.broker import free_port
from emugen.fleet.supervisor import stop

TARGET_COLD_S = 40.0
TARGET_WARM_S = 10.0
LIMIT_S = 600.0  # a run that has not reached gold by then is reported as such


def first_gold(store: Path) -> bool:
    """Whether an events batch with records has reached gold in this SQLite store."""
    if not store.exists():
        return False
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5) as db:
            found = db.execute(
                "select 1 from batches where stream = 'events' and "
                "status = 'gold' and record_count > 0 limit 1"
            ).fetchone()
    except sqlite3.Error:
        return False  # created but not initialised yet
    return found is not None


def time_up(clone: Path) -> float | None:
    """Seconds from `bash scripts/up.sh` to the first non-empty events batch in gold (None when
    it did not come within LIMIT_S); the fleet is stopped with Ctrl-C's signal either way."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("EMUGEN_", "VIRTUAL_ENV")) and k != "FLOWER_BASIC_AUTH"
    }
    env.update(
        EMUGEN_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0",
        EMUGEN_WEB_PORT=str(free_port()),
        EMUGEN_FLOWER_PORT=str(free_port()),
    )
    log = (clone / "up.log").open("wb")
    started = time.monotonic()
    up = subprocess.Popen(
        ["bash", "scripts/up.sh"],
        cwd=clone,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while time.monotonic() - started < LIMIT_S and up.poll() is None:
            if first_gold(clone / "var" / "emugen.db"):
                return time.monotonic() - started
            time.sleep(0.2)
        return None
    finally:
        stop(up, signal.SIGINT, timeout=60)  # Ctrl-C's signal; then its whole group
        log.close()


def in_process(clone: Path) -> float:
    """The floor: one batch of each stream through every layer in one process, from the
    command's start (the same venv, the same config, no broker and no fleet)."""
    started = time.monotonic()
    subprocess.run(
        [
            str(clone / ".venv" / "bin" / "emugen"),
            "pipeline",
            "run",
            "--batches",
            "1",
            "--config",
            "config/emugen.yaml",
        ],
        cwd=clone,
        check=True,
        capture_output=True,
        env={**os.environ, "EMUGEN_DATABASE_URL": f"sqlite:///{clone}/var/floor.db"},
    )
    return time.monotonic() - started


def bench_first_gold(repo: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="emugen-first-gold-") as folder:
        clone = Path(folder) / "clone"
        subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
        cold = time_up(clone)
        shutil.rmtree(clone / "var", ignore_errors=True)
        warm = time_up(clone)
        floor = in_process(clone)
    return {
        "cold_s": _round(cold),
        "warm_s": _round(warm),
        "in_process_s": round(floor, 1),
        "target_cold_s": TARGET_COLD_S,
        "target_warm_s": TARGET_WARM_S,
        "met": cold is not None
        and warm is not None
        and cold <= TARGET_COLD_S
        and warm <= TARGET_WARM_S,
        "load": os.getloadavg()[0],
    }


def format_first_gold(r: dict[str, Any]) -> str:
    def seconds(value: float | None) -> str:
        return "not within the limit" if value is None else f"{value:.1f} s"

    warm = r["warm_s"]
    ratio = "" if warm is None else f" ({warm / r['in_process_s']:.1f}x the in-process floor)"
    return "\n".join(
        [
            f"first non-empty events batch in gold after `bash scripts/up.sh` in a fresh clone "
            f"(load {r['load']:.1f}):",
            f"  cold (installs first): {seconds(r['cold_s'])}   target <= {r['target_cold_s']:g} s",
            f"  warm (installed):      {seconds(warm)}{ratio}   target <= {r['target_warm_s']:g} s",
            f"  in-process floor (`emugen pipeline run --batches 1`): {r['in_process_s']:.1f} s",
            f"target: {'MET' if r['met'] else 'NOT MET'}",
        ]
    )


@click.command("first-gold")
@click.option(
    "--repo",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="The git checkout to clone.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option("--strict", is_flag=True, help="Exit 1 unless both targets are met.")
def first_gold_cmd(repo: Path, as_json: bool, strict: bool) -> None:
    """Time a newcomer's first gold: `bash scripts/up.sh` in a fresh clone, cold then warm.

    \b
    Example:
      emugen lab bench first-gold --repo .
    """
    result = bench_first_gold(repo.resolve())
    click.echo(json.dumps(result, indent=2) if as_json else format_first_gold(result))
    if strict and not result["met"]:
        sys.exit(1)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
