"""No command prints a password: every CLI command runs against URLs with a planted one."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from emugen.cli import main
from tests.conftest import PG_URL, _postgres_or_skip
from tests.fleet_helpers import write_config

PASSWORD = "Pl4nted-s3cret"
# Commands that run a fleet or a benchmark for seconds to minutes; they print URLs only
# through emugen.fleet.broker.redact_url (see up.py) or none at all, and are exercised elsewhere.
LONG_RUNNING = {("up",), ("web",), ("lab", "soak"), ("lab", "chaos")} | {
    ("lab", "bench", *name)
    for name in (
        ("generate",),
        ("pipeline",),
        ("fleet",),
        ("sse",),
        ("all",),
        ("cadence",),
        ("grade",),
        ("export",),
        ("landing",),
        ("json-types",),
        ("history",),
        ("batchpage",),
        ("backfill",),
        ("probe", "stage-cpu"),
        ("probe", "silver-memory"),
        ("probe", "stages"),
        ("probe", "growth"),
        ("first-gold",),
        ("grade-gold",),
        ("arrivals",),
    )
}
# Every other command, in an order that works on one store (clean needs a pause first).
RUNS: list[tuple[tuple[str, ...], list[str], str | None]] = [
    (("init",), ["init-here"], None),  # a folder of its own: the test's config stays its own
    (("config", "check"), [], None),
    (("config", "schema"), [], None),
    (("db", "init"), ["--config"], None),
    (("generate",), ["companies", "--seq", "1", "--config"], None),
    (
        ("backfill",),
        ["--from", "2026-01-01T00:00:00Z", "--to", "2026-01-01T02:00:00Z", "--dry-run", "--config"],
        None,
    ),
    (("pipeline", "run"), ["--batches", "1", "--config"], None),
    (("status",), ["--config"], None),
    (("export",), ["bronze", "--format", "jsonl", "--out", "bronze.jsonl", "--config"], None),
    (("grade",), ["--kept", "bronze.jsonl", "--config"], None),  # the store holds the truth
    (("land", "verify"), ["--config"], None),
    (("land", "repair"), ["--config"], None),
    (("replay",), ["companies-000000001", "--config"], None),
    (("mode",), ["emulated", "--config"], None),
    (("pause",), ["--config"], None),
    (("clean",), ["--config"], "n\n"),  # the prompt names the database
    (("clean",), ["--yes", "--config"], None),  # the broker is down: the purge error names it
    (("resume",), ["--config"], None),
]


def leaves(group: click.Group, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()
    for name, command in group.commands.items():
        if command.hidden:  # an old name of a listed command (`emugen bench` = `lab bench`)
            continue
        if isinstance(command, click.Group):
            found |= leaves(command, (*prefix, name))
        else:
            found.add((*prefix, name))
    return found


def test_every_command_is_either_run_below_or_known_to_be_long_running() -> None:
    assert leaves(main) == LONG_RUNNING | {path for path, _, _ in RUNS}


@pytest.mark.postgres
def test_no_command_prints_a_planted_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _postgres_or_skip()
    from emugen.lab import private_database

    monkeypatch.chdir(tmp_path)  # export writes, and grade reads, a relative file

    for var in ("EMUGEN_CONFIG", "EMUGEN_HOME", "EMUGEN_DATABASE_URL", "EMUGEN_BROKER_URL"):
        monkeypatch.delenv(var, raising=False)
    # trust authentication: the server ignores the password, so every command really connects
    with_password = PG_URL.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@")
    assert PASSWORD in with_password
    with private_database(with_password, tmp_path) as url:
        config = write_config(
            tmp_path / "emugen.yaml", url, broker_url=f"redis://:{PASSWORD}@127.0.0.1:1/0"
        )
        runner = CliRunner()
        seen = []
        for path, args, stdin in RUNS:
            argv = [*path, *args, str(config)] if args[-1:] == ["--config"] else [*path, *args]
            if path == ("config", "check"):
                argv.append(str(config))
            result = runner.invoke(main, argv, input=stdin)
            output = result.stdout + result.stderr
            assert PASSWORD not in output, f"emugen {' '.join(argv)} printed the password"
            assert result.exception is None or isinstance(result.exception, SystemExit), (
                argv,
                result.exception,
            )
            seen.append((argv[0], result.exit_code))
        # the invalid-file warning names the store too
        config.write_text(config.read_text().replace("seed: 7", "seed: seven"))
        result = runner.invoke(main, ["status", "--config", str(config)])
        assert result.exit_code == 0 and "is invalid" in result.stderr
        assert PASSWORD not in result.stdout + result.stderr
        assert ":***@" in result.stderr
    assert ("db", 0) in seen and ("clean", 0) in seen, seen
