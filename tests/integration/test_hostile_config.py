"""Hostile config files fed to a running fleet: beat and the dashboard refuse them cheaply."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

from emugen.fleet.broker import free_port
from tests.integration.conftest import Fleet, Proc, wait_for
from tests.test_yaml_file import ALIAS_BOMB

INTERVAL_S = 1.0
HOLD_S = 6.0  # each hostile file stays in place this long (six ticks per stream)
RSS_ALLOWANCE_KB = 50 * 1024


def rss_kb(proc: Proc) -> int:
    for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {proc.name}")


def get(url: str, timeout: float = 10) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def dev_zero(config: Path) -> None:
    staged = config.with_name(".zero.yaml")
    staged.unlink(missing_ok=True)
    staged.symlink_to("/dev/zero")
    os.replace(staged, config)


def ten_megabytes(config: Path) -> None:
    staged = config.with_name(".big.yaml")
    staged.write_text("companies:\n  quality:\n    disabled: [" + "x, " * 3_500_000 + "x]\n")
    os.replace(staged, config)


def alias_bomb(config: Path) -> None:
    staged = config.with_name(".bomb.yaml")
    staged.write_text(ALIAS_BOMB)
    os.replace(staged, config)


HOSTILE = {
    "a /dev/zero symlink": (dev_zero, "character device"),
    "a 10 MB flow list": (ten_megabytes, "a config file may hold at most"),
    "an alias bomb": (alias_bomb, "found alias"),
}


def test_hostile_config_files_cost_beat_and_web_no_ticks_no_memory_and_no_errors(
    fleet: Fleet,
) -> None:
    valid = fleet.write(interval=INTERVAL_S, size=(3, 5)).read_text()
    fleet.start()
    beat = next(p for p in fleet.procs if p.name == "beat")
    port = free_port()
    web = fleet.spawn(
        "web",
        "-m",
        "emugen",
        "web",
        "--port",
        str(port),
        "--config",
        str(fleet.config),
        "--poll-interval",
        "0.2",
    )
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: web.alive() and _answers(f"{base}/api/health"), 60, "the dashboard")
    wait_for(lambda: len(fleet.batches("companies")) >= 3, 60, "three company batches")
    baseline = {proc.name: rss_kb(proc) for proc in (beat, web)}

    for name, (write, says) in HOSTILE.items():
        since = time.monotonic()
        before = {b.batch_id for b in fleet.batches()}
        write(fleet.config)
        statuses = []
        while time.monotonic() - since < HOLD_S:
            status, health = get(f"{base}/api/health")
            statuses.append(status)
            time.sleep(0.25)
        assert set(statuses) == {200}, f"{name}: /api/health answered {statuses}"
        assert health["config"]["valid"] is False and says in " ".join(
            health["config"]["problems"]
        ), f"{name}: {health['config']}"
        assert health["applied_mode"] == "emulated"
        rejected = [
            r for r in fleet.reloads() if not r.accepted and r.problems and says in r.problems
        ]
        assert rejected, f"{name}: beat recorded no rejection naming {says!r}"
        for stream in ("companies", "events"):
            new = sorted(
                (b for b in fleet.batches(stream) if b.batch_id not in before), key=lambda b: b.seq
            )
            assert len(new) >= 3, f"{name}: only {len(new)} {stream} batches in {HOLD_S} s"
            gaps = [b.scheduled_at - a.scheduled_at for a, b in zip(new, new[1:], strict=False)]
            # at most one missed tick: no two consecutive ticks further apart than 2 intervals
            assert max(gaps) < timedelta(seconds=2.5 * INTERVAL_S), f"{name}: {stream} {gaps}"
        for proc in (beat, web):
            assert proc.alive(), f"{proc.name} died on {name}"
            grown = rss_kb(proc) - baseline[proc.name]
            assert grown < RSS_ALLOWANCE_KB, f"{proc.name} grew {grown} KB on {name}"

    staged = fleet.config.with_name(".valid.yaml")
    staged.write_text(valid)
    os.replace(staged, fleet.config)
    wait_for(
        lambda: get(f"{base}/api/health")[1]["config"]["valid"],
        30,
        "the dashboard to accept the restored file",
    )
    assert "Traceback" not in beat.text() and "MemoryError" not in web.text()


def _answers(url: str) -> bool:
    try:
        return get(url, timeout=2)[0] == 200
    except OSError:
        return False


def test_worker_and_beat_start_on_the_last_applied_config_while_the_file_is_invalid(
    fleet: Fleet,
) -> None:
    fleet.write(interval=INTERVAL_S, size=(3, 5))
    worker, beat = fleet.start()
    wait_for(lambda: len(fleet.batches("companies")) >= 2, 60, "two company batches")
    fleet.stop(beat)
    fleet.stop(worker)
    fleet.write_raw(lambda data: data.update(seed="seven"))  # one typo, then a restart
    seen = {b.batch_id for b in fleet.batches()}

    worker, beat = fleet.start()
    wait_for(
        lambda: len([b for b in fleet.batches("companies") if b.batch_id not in seen]) >= 2,
        60,
        "company batches after the restart",
    )
    settled = fleet.settle()
    assert all(b.status == "gold" for b in settled)
    for proc in (worker, beat):
        text = proc.text()
        assert "seed: got 'seven'" in text, f"{proc.name} did not say why the file is invalid"
        assert "last applied config" in text
    rejected = [r for r in fleet.reloads() if not r.accepted]
    assert rejected and "seed: got 'seven'" in rejected[-1].problems


def test_an_emptied_file_and_a_moved_store_leave_the_running_fleet_on_its_store(
    fleet: Fleet,
) -> None:
    good = fleet.write(interval=INTERVAL_S, size=(3, 5)).read_text()
    fleet.start()
    wait_for(lambda: len(fleet.batches("events")) >= 2, 60, "two event batches")
    staged = fleet.config.with_name(".empty.yaml")
    staged.write_text("")
    os.replace(staged, fleet.config)  # cp /dev/null config/emugen.yaml, atomically
    wait_for(
        lambda: any(
            not r.accepted and "the file is empty" in (r.problems or "") for r in fleet.reloads()
        ),
        30,
        "beat to refuse the empty file",
    )
    other = fleet.folder / "other.db"
    staged.write_text(good.replace(fleet.database_url, f"sqlite:///{other}"))
    os.replace(staged, fleet.config)
    wait_for(
        lambda: any(
            not r.accepted and "restart to switch stores" in (r.problems or "")
            for r in fleet.reloads()
        ),
        30,
        "beat to refuse the moved store",
    )
    count = len(fleet.batches("events"))
    wait_for(lambda: len(fleet.batches("events")) >= count + 3, 60, "three more event batches")
    seqs = [b.seq for b in fleet.batches("events")]
    assert seqs == list(range(1, len(seqs) + 1))  # one store, one unbroken sequence
    assert fleet.database_url in fleet.config.with_name(".emugen.yaml.running.json").read_text()
    assert "paused" in fleet.emugen("pause")  # the fleet that runs, not the store just named
    wait_for(lambda: any(s.reason == "paused" for s in fleet.skips()), 30, "a paused tick")
    assert not other.exists() and not (fleet.folder / "var").exists()
