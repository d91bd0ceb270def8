"""Hostile config files are refused cheaply: devices, pipes, huge files, alias bombs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from emugen.errors import ConfigError
from emugen.fleet.reload import ConfigWatcher
from emugen.settings import load_settings
from emugen.settings.yaml_file import MAX_CONFIG_BYTES, MAX_NODES

# Each hostile case runs in a child with a memory ceiling and a deadline, so a regression
# fails the test instead of eating the shared machine (the old reader took 3 GB and minutes).
LIMIT_BYTES = 1 << 30
DEADLINE_S = 60

ALIAS_BOMB = textwrap.dedent("""\
    a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]
    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
    e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
    f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
    g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
    h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
    seed: [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]
    """)


def _load_in_child(path: Path) -> str:
    """load_settings(path) in a bounded child; returns the error text it printed."""
    code = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, ({LIMIT_BYTES}, {LIMIT_BYTES}))
        from emugen.errors import ConfigError
        from emugen.settings import load_settings
        try:
            load_settings({str(path)!r}, env=False)
        except ConfigError as exc:
            print(exc)
            sys.exit(2)
        sys.exit(0)
    """)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=DEADLINE_S
    )
    assert done.returncode == 2, done.stderr[-2000:]
    return done.stdout


def test_a_dev_zero_symlink_is_refused_without_being_read(tmp_path: Path) -> None:
    link = tmp_path / "emugen.yaml"
    link.symlink_to("/dev/zero")
    assert "character device, not a regular file" in _load_in_child(link)


def test_a_named_pipe_does_not_block_the_reader(tmp_path: Path) -> None:
    pipe = tmp_path / "emugen.yaml"
    os.mkfifo(pipe)
    assert "named pipe" in _load_in_child(pipe)


def test_a_ten_megabyte_flow_list_is_refused_by_its_size(tmp_path: Path) -> None:
    big = tmp_path / "emugen.yaml"
    big.write_text("seed: [" + "1," * 5_000_000 + "1]\n")
    message = _load_in_child(big)
    assert f"{big.stat().st_size:,} bytes" in message
    assert f"at most {MAX_CONFIG_BYTES:,} bytes" in message


def test_an_alias_bomb_is_refused_naming_the_alias(tmp_path: Path) -> None:
    bomb = tmp_path / "emugen.yaml"
    bomb.write_text(ALIAS_BOMB)
    message = _load_in_child(bomb)
    assert "line 2: found alias *a" in message and "aliases" in message


def test_a_merge_key_is_an_alias_too(tmp_path: Path) -> None:
    file = tmp_path / "emugen.yaml"
    file.write_text("base: &base {rate: 0.1}\ncompanies:\n  quality:\n    <<: *base\n")
    with pytest.raises(ConfigError, match=r"found alias \*base"):
        load_settings(file, env=False)


def test_a_file_with_thousands_of_values_is_refused_before_validation(tmp_path: Path) -> None:
    file = tmp_path / "emugen.yaml"
    file.write_text("companies:\n  quality:\n    disabled: [" + "x, " * MAX_NODES + "x]\n")
    with pytest.raises(ConfigError, match=f"more than {MAX_NODES:,} values"):
        load_settings(file, env=False)


def test_deep_nesting_is_refused_without_recursing(tmp_path: Path) -> None:
    file = tmp_path / "emugen.yaml"
    file.write_text("seed: " + "[" * 50 + "]" * 50 + "\n")
    with pytest.raises(ConfigError, match="nested deeper than"):
        load_settings(file, env=False)


def test_a_long_value_is_quoted_by_a_bounded_prefix(tmp_path: Path) -> None:
    file = tmp_path / "emugen.yaml"
    file.write_text("seed: [" + ", ".join(["123456789"] * 1500) + "]\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(file, env=False)
    (problem,) = caught.value.problems
    assert problem.startswith("seed: got [123456789, 123456789, 123456789, 123456789, ...]")
    assert len(problem) < 200


def test_many_bad_values_are_summarised_after_the_first_twenty(tmp_path: Path) -> None:
    file = tmp_path / "emugen.yaml"
    file.write_text("companies:\n  quality:\n    disabled: [" + ", ".join(["x"] * 500) + "]\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(file, env=False)
    assert len(caught.value.problems) == 21
    assert caught.value.problems[-1] == "... and 480 more problems like these"


def test_the_watcher_refuses_a_device_once_and_keeps_the_running_config(tmp_path: Path) -> None:
    file = tmp_path / "emugen.yaml"
    file.write_text("mode: emulated\nseed: 7\n")
    watcher = ConfigWatcher(file, env=False)
    assert watcher.poll().accepted
    file.unlink()
    file.symlink_to("/dev/zero")
    change = watcher.poll()
    assert change is not None and not change.accepted
    assert "character device" in str(change.error)
    assert "the running config stays in force" in str(change.error)
    assert watcher.poll() is None  # the same refusal is not reported (or re-examined) twice
    assert watcher.settings is not None and watcher.settings.seed == 7


def test_the_watcher_refuses_an_oversized_file_without_reading_it(tmp_path: Path) -> None:
    file = tmp_path / "emugen.yaml"
    with file.open("wb") as handle:  # sparse: the size is there, the bytes are never written
        handle.truncate(10 * MAX_CONFIG_BYTES)
    watcher = ConfigWatcher(file, env=False)
    change = watcher.poll()
    assert change is not None and "a config file may hold at most" in str(change.error)
    assert watcher.poll() is None


# -- a file that holds no settings, or a key given twice, is not a config --------------------


NO_MAPPING = {
    "": "the file is empty",
    "\n   \n": "the file is empty",
    "# every line commented out\n# seed: 7\n": "holds no settings",
    "---\n": "holds no settings",
    "{}\n": "holds no settings",
    "emulated\n": "must hold a mapping of keys, got a string",
    "42\n": "must hold a mapping of keys, got a number",
    "- mode: emulated\n- seed: 7\n": "must hold a mapping of keys, got a list",
}


def test_a_file_without_a_mapping_of_settings_is_invalid_in_one_line(tmp_path: Path) -> None:
    # "every default" includes a database URL: an emptied file must never be read as that
    file = tmp_path / "emugen.yaml"
    for text, expected in NO_MAPPING.items():
        file.write_text(text)
        with pytest.raises(ConfigError) as caught:
            load_settings(file, env=False)
        (problem,) = caught.value.problems
        assert expected in problem and "\n" not in problem, (text, problem)


def test_a_key_given_twice_at_the_top_level_names_the_key_and_both_lines(tmp_path: Path) -> None:
    file = tmp_path / "emugen.yaml"
    file.write_text("mode: emulated\nseed: 7\ndatabase_url: sqlite:///a.db\nseed: 8\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(file, env=False)
    (problem,) = caught.value.problems
    assert "duplicate key 'seed' at line 2 and again at line 4" in problem


def test_a_key_given_twice_deep_in_the_tree_names_its_path_and_both_lines(tmp_path: Path) -> None:
    file = tmp_path / "emugen.yaml"
    file.write_text(
        textwrap.dedent("""\
        mode: emulated
        companies:
          quality:
            rate: 0.1
          emulated:
            interval: 2
          quality:
            rate: 0.2
        events:
          quality: {rate: 0.1, rate: 0.3}
        """)
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(file, env=False)
    # the first duplicate in document order: `quality` repeated under companies
    assert "duplicate key 'companies.quality' at line 3 and again at line 7" in str(caught.value)
    file.write_text("mode: emulated\nevents:\n  quality: {rate: 0.1,\n    rate: 0.3}\n")
    with pytest.raises(
        ConfigError,
        match=r"duplicate key 'events\.quality\.rate' at line 3 "
        r"and again at line 4",
    ):
        load_settings(file, env=False)
    # the same name in two mappings is no duplicate
    file.write_text("companies:\n  quality:\n    rate: 0.1\nevents:\n  quality:\n    rate: 0.2\n")
    settings = load_settings(file, env=False)
    assert settings.companies.quality.rate == 0.1 and settings.events.quality.rate == 0.2
