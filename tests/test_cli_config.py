"""`emugen config check` and `emugen config schema` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from emugen.cli import main

REPO = Path(__file__).resolve().parent.parent
PRESETS = sorted((REPO / "config").glob("*.yaml"))


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for var in ("EMUGEN_CONFIG", "EMUGEN_DATABASE_URL", "EMUGEN_BROKER_URL"):
        monkeypatch.delenv(var, raising=False)
    return CliRunner()


def test_the_config_directory_holds_presets() -> None:
    names = {p.name for p in PRESETS}
    assert {"emugen.yaml", "emulated.yaml", "production.yaml"} <= names


@pytest.mark.parametrize("preset", PRESETS, ids=[p.name for p in PRESETS])
def test_every_preset_passes_config_check(runner: CliRunner, preset: Path) -> None:
    result = runner.invoke(main, ["config", "check", str(preset)])
    assert result.exit_code == 0, result.output
    assert f"{preset}: valid" in result.output
    mode = yaml.safe_load(preset.read_text(encoding="utf-8"))["mode"]
    assert f"(mode {mode}," in result.output
    assert "fingerprint " in result.output


def test_config_check_without_a_path_uses_emugen_config(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMUGEN_CONFIG", str(REPO / "config" / "production.yaml"))
    result = runner.invoke(main, ["config", "check"])
    assert result.exit_code == 0, result.output
    assert "production.yaml: valid (mode production" in result.output
    assert "companies every 3600 s, events every 900 s" in result.output


def test_config_check_ignores_the_environment_urls(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMUGEN_DATABASE_URL", "postgresql://env/db")
    preset = REPO / "config" / "emulated.yaml"
    with_env = runner.invoke(main, ["config", "check", str(preset)])
    monkeypatch.delenv("EMUGEN_DATABASE_URL")
    without_env = runner.invoke(main, ["config", "check", str(preset)])
    assert with_env.exit_code == without_env.exit_code == 0
    assert with_env.output == without_env.output


def test_an_invalid_file_exits_2_and_lists_the_field(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "seed: -1\ncompanies:\n  emulated: {min_batch_size: 10, max_batch_size: 5}\n",
        encoding="utf-8",
    )
    result = runner.invoke(main, ["config", "check", str(bad)])
    assert result.exit_code == 2, result.output
    assert f"emugen: invalid configuration in {bad} (2 problems)" in result.output
    assert "- seed: got -1" in result.output
    assert "- companies.emulated.max_batch_size: must be ≥ min_batch_size (10), got 5" in (
        result.output
    )
    assert "valid (mode" not in result.output
    assert "Traceback" not in result.output


def test_an_unknown_key_exits_2_and_lists_the_allowed_keys(
    runner: CliRunner, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("events:\n  emulated: {speed: 3}\n", encoding="utf-8")
    result = runner.invoke(main, ["config", "check", str(bad)])
    assert result.exit_code == 2, result.output
    assert (
        "events.emulated.speed: unknown key; allowed here: min_batch_size, max_batch_size, "
        "interval" in result.output
    )


def test_a_missing_file_exits_2_and_suggests_a_preset(runner: CliRunner, tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"
    result = runner.invoke(main, ["config", "check", str(missing)])
    assert result.exit_code == 2, result.output
    assert str(missing) in result.output
    assert "`emugen init`" in result.output


def test_malformed_yaml_exits_2_with_the_line(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("mode: emulated\nclock:\n  kind: wall\n   start: oops\n", encoding="utf-8")
    result = runner.invoke(main, ["config", "check", str(bad)])
    assert result.exit_code == 2, result.output
    assert "not valid YAML at line 4" in result.output


def test_an_infinite_interval_exits_2_naming_the_field(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("companies:\n  emulated: {interval: .inf}\n", encoding="utf-8")
    result = runner.invoke(main, ["config", "check", str(bad)])
    assert result.exit_code == 2, result.output
    assert "companies.emulated.interval" in result.output


def test_config_schema_prints_json_with_the_top_level_properties(runner: CliRunner) -> None:
    result = runner.invoke(main, ["config", "schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    properties = schema["properties"]
    assert {"mode", "seed", "companies", "events"} <= set(properties)
    assert {"clock", "database_url", "broker_url"} <= set(properties)
    assert schema["additionalProperties"] is False
    assert properties["seed"]["minimum"] == 0
