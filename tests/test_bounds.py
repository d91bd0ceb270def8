"""Bounds and encodings of generation: sizes, seqs, ordinals, stdout bytes, defaults said aloud."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from emugen.cli import main
from emugen.contract import Context, Reason, check
from emugen.errors import ConfigError, SpecError
from emugen.generate import build_spec, generate
from emugen.generate.spec import MAX_ORDINAL, MAX_SEQ
from emugen.settings import MAX_BATCH, parse_settings
from emugen.vocabulary import Defect, Stream
from tests.conftest import make_settings

REPO = Path(__file__).resolve().parent.parent
PRESET = REPO / "config" / "emulated.yaml"
NOT_DUPLICATE = [d.value for d in Defect if d is not Defect.duplicate]


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for var in ("EMUGEN_CONFIG", "EMUGEN_HOME", "EMUGEN_DATABASE_URL", "EMUGEN_BROKER_URL"):
        monkeypatch.delenv(var, raising=False)
    return CliRunner()


# -- sizes, seqs and ordinals ----------------------------------------------------------------


def test_a_size_over_the_batch_bound_is_refused_before_generating(settings) -> None:
    with pytest.raises(SpecError, match=f"size must be between 0 and {MAX_BATCH:,}"):
        build_spec(settings, "companies", 1, size=10_000_000)


def test_generate_refuses_a_size_over_the_batch_bound_in_one_line(runner: CliRunner) -> None:
    result = runner.invoke(
        main,
        [
            "generate",
            "companies",
            "--seq",
            "1",
            "--config",
            str(PRESET),
            "--size",
            str(MAX_BATCH + 1),
        ],
    )
    assert result.exit_code == 2
    assert f"0<=x<={MAX_BATCH}" in result.output and "Traceback" not in result.output


def test_pipeline_run_refuses_a_size_over_the_batch_bound(runner: CliRunner) -> None:
    result = runner.invoke(
        main, ["pipeline", "run", "--config", str(PRESET), "--size", str(10_000_000)]
    )
    assert result.exit_code == 2 and f"0<=x<={MAX_BATCH}" in result.output


def test_a_seq_past_the_64_bit_bound_is_refused(settings) -> None:
    with pytest.raises(SpecError, match="seq must be between 1 and"):
        build_spec(settings, "events", MAX_SEQ + 1)


def test_a_first_ordinal_past_the_bound_is_refused_rather_than_collapsing_ids(settings) -> None:
    with pytest.raises(SpecError, match="every company id stays distinct"):
        build_spec(settings, "companies", 1, first_ordinal=2**63)
    spec = build_spec(settings, "companies", 1, first_ordinal=MAX_ORDINAL - MAX_BATCH, size=50)
    ids = [r["company_id"] for r in generate(spec).records if "company_id" in r]
    assert len(set(ids)) >= 45  # distinct companies (a few rows may be duplicates by design)


def test_a_watermark_past_the_bound_is_refused(settings) -> None:
    with pytest.raises(SpecError, match="watermark must be between 0 and"):
        build_spec(settings, "events", 1, watermark=2**64)


def test_a_seq_that_runs_the_simulated_clock_past_9999_is_a_clear_error(settings) -> None:
    with pytest.raises(SpecError, match="past the year 9999"):
        build_spec(settings, "events", 10**15)


def test_a_huge_seq_on_the_command_line_exits_2_without_a_traceback(runner: CliRunner) -> None:
    result = runner.invoke(
        main, ["generate", "companies", "--config", str(PRESET), "--seq", str(MAX_SEQ)]
    )
    assert result.exit_code == 2, result.output
    assert "every company id stays distinct" in result.output
    assert not isinstance(result.exception, OverflowError)
    too_big = runner.invoke(
        main, ["generate", "events", "--config", str(PRESET), "--seq", str(2**64)]
    )
    assert too_big.exit_code == 2 and "--seq" in too_big.output


# -- bytes on stdout -------------------------------------------------------------------------


def _generate_bytes(encoding: str | None) -> tuple[int, bytes, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMUGEN_")}
    env.pop("PYTHONIOENCODING", None)
    if encoding:
        env["PYTHONIOENCODING"] = encoding
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "emugen",
            "generate",
            "companies",
            "--seq",
            "3",
            "--size",
            "400",
            "--config",
            str(PRESET),
            "--at",
            "2026-01-01T00:00:10Z",
        ],
        capture_output=True,
        env=env,
        timeout=120,
        cwd=REPO,
    )
    return done.returncode, done.stdout, done.stderr.decode("utf-8", "replace")


def test_generate_writes_the_same_utf8_bytes_whatever_the_stdout_encoding() -> None:
    code, utf8, err = _generate_bytes("utf-8")
    assert code == 0, err
    assert not utf8.isascii()  # company names carry accents: the case that used to differ
    for encoding in ("latin-1", "ascii"):
        code, other, err = _generate_bytes(encoding)
        assert code == 0 and "Traceback" not in err, err
        assert hashlib.sha256(other).hexdigest() == hashlib.sha256(utf8).hexdigest(), encoding


# -- duplicate-only quality ------------------------------------------------------------------


def test_a_duplicate_only_rate_odd_batches_cannot_meet_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings({"events": {"quality": {"rate": 0.5, "disabled": NOT_DUPLICATE}}}, env=False)
    (problem,) = caught.value.problems
    assert "a batch of 5 records has room for 2" in problem
    assert "events.emulated batch sizes 5..20 the rate can be at most 0.4" in problem


def test_a_batch_of_one_with_only_duplicates_is_refused_not_silently_clean() -> None:
    others = [d for d in NOT_DUPLICATE if d != "orphan_reference"]
    with pytest.raises(ConfigError, match="can be at most 0 "):
        parse_settings(
            {
                "companies": {
                    "quality": {"rate": 0.5, "disabled": others},
                    "emulated": {"min_batch_size": 1, "max_batch_size": 1},
                }
            },
            env=False,
        )


def test_at_the_allowed_rate_every_odd_batch_gets_its_exact_share_of_duplicates() -> None:
    settings = make_settings(
        events={
            "quality": {"rate": 0.4, "disabled": NOT_DUPLICATE},
            "emulated": {"min_batch_size": 5, "max_batch_size": 5},
        }
    )
    for seq in range(1, 41):
        batch = generate(build_spec(settings, Stream.events, seq, watermark=30))
        assert [t.defect for t in batch.truth] == [Defect.duplicate, Defect.duplicate], seq


# -- documentation agrees with the contract --------------------------------------------------


def test_the_documented_precedence_for_a_blank_id_is_the_one_the_contract_applies() -> None:
    decisions = (REPO / "docs" / "DECISIONS.md").read_text(encoding="utf-8")
    rule = re.search(r"4\. per field in table order:(.*?)\n5\.", decisions, re.S)
    assert rule is not None
    order = " ".join(rule[1].split())
    assert order.index("`empty_string`") < order.index("(non-UUID id)")
    start, end = make_settings().clock.start, make_settings().clock.start
    ctx = Context(start, end, known_companies=set())
    record = {
        "event_id": "   ",
        "company_id": "x",
        "driver_id": "x",
        "truck_id": "x",
        "event_type": "delivered",
        "event_timestamp": "2026-01-01T00:00:00Z",
        "location": None,
    }
    assert check(Stream.events, record, ctx).reason is Reason.empty_string


# -- defaults and locations said aloud -------------------------------------------------------


def test_config_check_says_when_the_seed_is_the_default(runner: CliRunner, tmp_path: Path) -> None:
    file = tmp_path / "emugen.yaml"
    file.write_text("mode: emulated\n")
    result = runner.invoke(main, ["config", "check", str(file)])
    assert result.exit_code == 0, result.output
    assert "seed 42 (the default: the file sets no seed)" in result.output
    file.write_text("mode: emulated\nseed: 42\n")
    assert "(the default" not in runner.invoke(main, ["config", "check", str(file)]).output


def test_emugen_home_finds_the_config_from_any_directory(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    (home / "config" / "emugen.yaml").write_text("mode: production\nseed: 5\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("EMUGEN_HOME", str(home))
    result = runner.invoke(main, ["config", "check"])
    assert result.exit_code == 0, result.output
    assert "valid (mode production, seed 5," in result.output


def test_a_missing_config_says_where_emugen_looked(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(main, ["config", "check"])
    assert result.exit_code == 2
    assert f"looked at {tmp_path / 'config' / 'emugen.yaml'}" in result.output
    assert "set $EMUGEN_HOME or pass --config" in result.output
    monkeypatch.setenv("EMUGEN_HOME", str(tmp_path / "nowhere"))
    result = runner.invoke(main, ["config", "check"])
    assert (
        f"looked at {tmp_path / 'nowhere' / 'config' / 'emugen.yaml'}, from $EMUGEN_HOME"
        in result.output
    )
