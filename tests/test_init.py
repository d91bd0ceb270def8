"""`emugen init`, the packaged presets, and every "no config" message pointing at init."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from emugen.cli import main
from emugen.settings import load_settings
from emugen.settings.presets import active_text, preset_names, preset_text

REPO = Path(__file__).resolve().parent.parent
PACKAGED = REPO / "emugen" / "presets"


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    for var in (
        "EMUGEN_CONFIG",
        "EMUGEN_HOME",
        "EMUGEN_DATABASE_URL",
        "EMUGEN_BROKER_URL",
        "EMUGEN_LANDING_ROOT",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def test_the_packaged_presets_are_the_config_folders_presets_byte_for_byte() -> None:
    packaged = sorted(p.name for p in PACKAGED.glob("*.yaml"))
    in_repo = sorted(p.name for p in (REPO / "config").glob("*.yaml") if p.name != "emugen.yaml")
    assert packaged == in_repo
    for name in packaged:
        assert (PACKAGED / name).read_bytes() == (REPO / "config" / name).read_bytes(), (
            f"emugen/presets/{name} differs from config/{name}: copy the edited one over"
        )


def test_the_wheel_ships_the_presets() -> None:
    text = (REPO / "pyproject.toml").read_text()
    assert '"presets/*.yaml"' in text
    assert preset_names()[0] == "emulated" and "production" in preset_names()


@pytest.mark.parametrize("name", preset_names())
def test_init_writes_a_commented_config_that_loads_as_its_preset(
    runner: CliRunner, tmp_path: Path, name: str
) -> None:
    result = runner.invoke(main, ["init", "--preset", name])
    assert result.exit_code == 0, result.output
    written = tmp_path / "config" / "emugen.yaml"
    text = written.read_text()
    assert text == active_text(name)
    assert text.count("\n#") + text.count("  #") > 20  # the preset's comments came along
    assert yaml.safe_load(text) == yaml.safe_load(preset_text(name))
    assert load_settings(written, env=False) == load_settings(PACKAGED / f"{name}.yaml", env=False)
    assert f"wrote config/emugen.yaml (the {name} preset" in result.output
    assert "emugen up" in result.output and "emugen pipeline run" in result.output


def test_init_into_a_folder_says_to_cd_there_first(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["init", "demo/fleet", "--preset", "production"])
    assert result.exit_code == 0, result.output
    assert load_settings(tmp_path / "demo/fleet/config/emugen.yaml").mode.value == "production"
    assert "  cd demo/fleet\n" in result.output


def test_init_refuses_to_overwrite_a_config_in_one_line_without_force(
    runner: CliRunner, tmp_path: Path
) -> None:
    (tmp_path / "config").mkdir()
    mine = tmp_path / "config" / "emugen.yaml"
    mine.write_text("mode: production  # my own\n")
    result = runner.invoke(main, ["init"])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "--force" in result.output
    assert "config/emugen.yaml already exists" in result.output
    assert mine.read_text() == "mode: production  # my own\n"
    forced = runner.invoke(main, ["init", "--force"])
    assert forced.exit_code == 0, forced.output
    assert mine.read_text() == active_text("emulated")


def test_init_where_config_is_a_file_is_one_line_naming_it(
    runner: CliRunner, tmp_path: Path
) -> None:
    (tmp_path / "config").write_text("not a folder")
    result = runner.invoke(main, ["init"])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert "cannot write config/emugen.yaml" in result.output


def test_mode_without_a_config_is_an_error_naming_init_not_a_traceback(
    runner: CliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(main, ["mode", "production"])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "`emugen init --preset production`" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "config").exists()


@pytest.mark.parametrize(
    "command",
    [["pipeline", "run"], ["status"], ["up"], ["config", "check"], ["replay", "companies-000001"]],
)
def test_every_command_without_a_config_points_at_emugen_init(
    runner: CliRunner, command: list[str]
) -> None:
    result = runner.invoke(main, command)
    assert result.exit_code == 2, result.output
    assert "`emugen init`" in result.output and "cp config/" not in result.output


def test_a_config_path_that_is_a_folder_points_at_emugen_init(
    runner: CliRunner, tmp_path: Path
) -> None:
    os.makedirs(tmp_path / "config" / "emugen.yaml")
    result = runner.invoke(main, ["config", "check"])
    assert result.exit_code == 2
    assert "emugen init" in result.output and "cp config/" not in result.output


def test_version_names_the_package_version(runner: CliRunner) -> None:
    from importlib.metadata import version

    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0 and version("emugen") in result.output
