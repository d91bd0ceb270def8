"""The configuration tree: defaults, durations, every bound with a message that names the field,
files, environment overrides, the fingerprint and immutability."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pydantic import ValidationError

from emugen.errors import ConfigError, EmugenError
from emugen.settings import (
    DEFAULT_CONFIG,
    ProductionEventCadence,
    Settings,
    SizeRange,
    config_path,
    load_settings,
    parse_settings,
)
from emugen.vocabulary import Defect, Mode, Stream

REPO = Path(__file__).resolve().parent.parent
PRESET = REPO / "config" / "emulated.yaml"
ENV_VARS = ("EMUGEN_CONFIG", "EMUGEN_DATABASE_URL", "EMUGEN_BROKER_URL")
COMPANY_DEFECTS = [d.value for d in Defect if d is not Defect.orphan_reference]
ALL_DEFECTS = [d.value for d in Defect]


@pytest.fixture(autouse=True)
def _no_emugen_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the shell exports, these tests start from a clean environment."""
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)


def problem_line(message: str, path: str) -> str:
    """The one problem line of a ConfigError message that starts with `path:`."""
    lines = [ln.strip()[2:] for ln in message.splitlines() if ln.strip().startswith("- ")]
    matching = [ln for ln in lines if ln.startswith(f"{path}:")]
    assert matching, f"no problem line names {path!r} in:\n{message}"
    return matching[0]


def names_value(line: str, value: str) -> bool:
    """True when `value` appears in `line` as a whole token, not as part of another number."""
    return re.search(rf"(?<![\w.]){re.escape(value)}(?![\w.])", line) is not None


def write(tmp_path: Path, text: str, name: str = "emugen.yaml") -> Path:
    file = tmp_path / name
    file.write_text(text, encoding="utf-8")
    return file


# -- defaults and the active numbers of each mode --------------------------------------------


def test_the_defaults_are_valid_and_emulated() -> None:
    settings = Settings()
    assert settings.mode is Mode.emulated
    assert settings.seed == 42
    assert settings.clock.kind == "wall" and settings.clock.start is None
    # the defaults survive a round trip through the validator unchanged
    assert parse_settings({}, env=False) == settings
    assert parse_settings(None, env=False) == settings


def test_the_active_interval_follows_the_mode() -> None:
    settings = Settings()
    assert settings.interval(Stream.companies) == timedelta(seconds=10)
    assert settings.interval(Stream.events) == timedelta(seconds=10)
    assert settings.interval(Stream.companies, Mode.production) == timedelta(hours=1)
    assert settings.interval(Stream.events, Mode.production) == timedelta(minutes=15)

    production = parse_settings({"mode": "production"}, env=False)
    assert production.interval(Stream.companies) == timedelta(hours=1)
    assert production.interval(Stream.events) == timedelta(minutes=15)
    assert production.interval(Stream.events, Mode.emulated) == timedelta(seconds=10)


def test_the_active_cadence_gives_the_batch_sizes_of_the_mode() -> None:
    settings = Settings()
    companies = settings.cadence(Stream.companies)
    events = settings.cadence(Stream.events)
    assert isinstance(companies, SizeRange) and isinstance(events, SizeRange)
    assert (companies.min_batch_size, companies.max_batch_size) == (10, 10)
    assert (events.min_batch_size, events.max_batch_size) == (5, 20)

    production_companies = settings.cadence(Stream.companies, Mode.production)
    assert isinstance(production_companies, SizeRange)
    assert (production_companies.min_batch_size, production_companies.max_batch_size) == (100, 100)
    production_events = settings.cadence(Stream.events, Mode.production)
    assert isinstance(production_events, ProductionEventCadence)
    assert production_events.events_per_driver == 1.0


def test_cadence_accepts_plain_strings_for_stream_and_mode() -> None:
    settings = Settings()
    assert settings.cadence("events", Mode("production")) is settings.events.production
    assert settings.interval("companies") == timedelta(seconds=10)


def test_quality_returns_the_block_of_each_stream_with_one_weight_per_applicable_defect() -> None:
    settings = Settings()
    assert settings.quality(Stream.companies) is settings.companies.quality
    assert settings.quality(Stream.events) is settings.events.quality
    assert settings.quality(Stream.companies).rate == 0.05
    assert list(settings.companies.quality.weights(Stream.companies)) == [
        Defect(d) for d in COMPANY_DEFECTS
    ]
    assert set(settings.events.quality.weights(Stream.events)) == set(Defect)


def test_a_disabled_defect_weighs_zero_and_an_unlisted_one_weighs_one() -> None:
    settings = parse_settings(
        {"events": {"quality": {"defects": {"duplicate": 3}, "disabled": ["null_value"]}}},
        env=False,
    )
    weights = settings.events.quality.weights(Stream.events)
    assert weights[Defect.duplicate] == 3
    assert weights[Defect.null_value] == 0
    assert weights[Defect.missing_field] == 1


def test_only_duplicate_is_allowed_up_to_half_the_records() -> None:
    others = [d for d in ALL_DEFECTS if d != "duplicate"]
    settings = parse_settings(
        {
            "events": {
                "quality": {"rate": 0.5, "disabled": others},
                "emulated": {"min_batch_size": 10, "max_batch_size": 10},
            }
        },
        env=False,
    )
    assert settings.events.quality.rate == 0.5


def test_a_rate_of_zero_allows_every_defect_to_be_switched_off() -> None:
    settings = parse_settings(
        {"companies": {"quality": {"rate": 0, "disabled": COMPANY_DEFECTS}}}, env=False
    )
    assert not any(settings.companies.quality.weights(Stream.companies).values())


def test_a_simulated_clock_start_is_normalised_to_utc() -> None:
    settings = parse_settings(
        {"clock": {"kind": "simulated", "start": "2026-01-01T02:00:00+02:00"}}, env=False
    )
    assert settings.clock.start == datetime(2026, 1, 1, tzinfo=UTC)
    assert settings.clock.start.utcoffset() == timedelta(0)


# -- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        ("PT10S", 10),
        ("PT15M", 900),
        ("PT1H", 3600),
        ("PT0.5S", 0.5),
        ("P1D", 86400),
        (10, 10),
        (0.5, 0.5),
        ("10s", 10),
        ("15m", 900),
        ("1h", 3600),
        ("500ms", 0.5),
        ("1.5s", 1.5),
        ("2d", 172800),
        (" 10 s ", 10),
        ("100ms", 0.1),  # the lower bound itself
        ("P7D", 7 * 86400),  # the upper bound itself
        ("7d", 7 * 86400),
    ],
    ids=lambda v: repr(v),
)
def test_a_duration_is_accepted_in_every_documented_form(written: Any, seconds: float) -> None:
    settings = parse_settings({"events": {"emulated": {"interval": written}}}, env=False)
    assert settings.events.emulated.interval == timedelta(seconds=seconds)


def test_an_interval_is_written_back_as_iso_8601_and_reads_back_equal() -> None:
    settings = parse_settings(
        {"companies": {"emulated": {"interval": "15m"}}, "events": {"emulated": {"interval": 0.5}}},
        env=False,
    )
    dumped = settings.model_dump(mode="json")
    assert dumped["companies"]["emulated"]["interval"] == "PT900S"
    assert dumped["events"]["emulated"]["interval"] == "PT0.5S"
    assert parse_settings(dumped, env=False) == settings


# -- invalid configurations: every one names its field and its value -------------------------

# (id, data, dotted path of the problem line or None at the top level, fragments that line shows)
INVALID: list[tuple[str, Any, str | None, tuple[str, ...]]] = [
    (
        "emulated company batch size zero",
        {"companies": {"emulated": {"min_batch_size": 0}}},
        "companies.emulated.min_batch_size",
        ("0",),
    ),
    (
        "negative emulated event batch size",
        {"events": {"emulated": {"min_batch_size": -5}}},
        "events.emulated.min_batch_size",
        ("-5",),
    ),
    (
        "event batch max below min",
        {"events": {"emulated": {"min_batch_size": 30, "max_batch_size": 20}}},
        "events.emulated.max_batch_size",
        ("20", "30", "min_batch_size"),
    ),
    (
        "production company batch max below min",
        {"companies": {"production": {"min_batch_size": 200, "max_batch_size": 150}}},
        "companies.production.max_batch_size",
        ("150", "200"),
    ),
    (
        "drivers per company max below min",
        {"companies": {"drivers_per_company": {"min": 10, "max": 5}}},
        "companies.drivers_per_company.max",
        ("5", "10"),
    ),
    (
        "drivers per company min zero",
        {"companies": {"drivers_per_company": {"min": 0}}},
        "companies.drivers_per_company.min",
        ("0",),
    ),
    (
        "batch size above one million",
        {"companies": {"emulated": {"max_batch_size": 2_000_000}}},
        "companies.emulated.max_batch_size",
        ("2000000",),
    ),
    (
        "interval zero",
        {"companies": {"emulated": {"interval": 0}}},
        "companies.emulated.interval",
        ("PT0S",),
    ),
    (
        "negative interval",
        {"companies": {"emulated": {"interval": -5}}},
        "companies.emulated.interval",
        ("PT-5S",),
    ),
    (
        "interval above seven days",
        {"companies": {"production": {"interval": "8d"}}},
        "companies.production.interval",
        ("PT691200S",),
    ),
    (
        "interval below a tenth of a second",
        {"events": {"emulated": {"interval": "50ms"}}},
        "events.emulated.interval",
        ("PT0.05S",),
    ),
    (
        "malformed duration string",
        {"events": {"production": {"interval": "ten minutes"}}},
        "events.production.interval",
        ("'ten minutes'", "PT10S"),
    ),
    (
        "unknown duration unit",
        {"events": {"production": {"interval": "1w"}}},
        "events.production.interval",
        ("'1w'",),
    ),
    (
        "boolean duration",
        {"companies": {"emulated": {"interval": True}}},
        "companies.emulated.interval",
        ("True", "boolean"),
    ),
    (
        "missing duration",
        {"companies": {"emulated": {"interval": None}}},
        "companies.emulated.interval",
        ("None",),
    ),
    (
        "quality rate below zero",
        {"companies": {"quality": {"rate": -0.1}}},
        "companies.quality.rate",
        ("-0.1",),
    ),
    (
        "quality rate above one",
        {"events": {"quality": {"rate": 1.5}}},
        "events.quality.rate",
        ("1.5",),
    ),
    (
        "quality rate as a word",
        {"companies": {"quality": {"rate": "lots"}}},
        "companies.quality.rate",
        ("'lots'",),
    ),
    (
        "every company defect weighted zero while the rate is positive",
        {"companies": {"quality": {"rate": 0.1, "defects": {d: 0 for d in COMPANY_DEFECTS}}}},
        "companies.quality",
        ("0.1", "rate"),
    ),
    (
        "every event defect disabled while the rate is positive",
        {"events": {"quality": {"rate": 0.2, "disabled": ALL_DEFECTS}}},
        "events.quality",
        ("0.2", "rate"),
    ),
    (
        "only duplicate enabled above half the records",
        {
            "events": {
                "quality": {
                    "rate": 0.6,
                    "defects": {d: (1 if d == "duplicate" else 0) for d in ALL_DEFECTS},
                }
            }
        },
        "events.quality",
        ("0.6", "'duplicate'"),
    ),
    (
        "orphan reference weighted on companies",
        {"companies": {"quality": {"defects": {"orphan_reference": 1}}}},
        "companies.quality",
        ("'orphan_reference'", "companies"),
    ),
    (
        "orphan reference disabled on companies",
        {"companies": {"quality": {"disabled": ["orphan_reference"]}}},
        "companies.quality",
        ("'orphan_reference'",),
    ),
    (
        "unknown defect name",
        {"events": {"quality": {"defects": {"typo_defect": 1}}}},
        "events.quality.defects.typo_defect",
        ("'typo_defect'", "'duplicate'"),
    ),
    (
        "negative defect weight",
        {"events": {"quality": {"defects": {"duplicate": -1}}}},
        "events.quality.defects.duplicate",
        ("-1",),
    ),
    (
        "unknown key at the top level",
        {"colour": "blue"},
        "colour",
        ("unknown key", "mode", "seed", "companies", "events"),
    ),
    (
        "unknown key in a cadence block",
        {"companies": {"emulated": {"speed": 3}}},
        "companies.emulated.speed",
        ("unknown key", "min_batch_size", "max_batch_size", "interval"),
    ),
    (
        "unknown key in the quality block",
        {"events": {"quality": {"ratio": 0.1}}},
        "events.quality.ratio",
        ("unknown key", "rate", "defects", "disabled"),
    ),
    ("unknown mode", {"mode": "turbo"}, "mode", ("'turbo'", "'production'", "'emulated'")),
    ("seed as a word", {"seed": "abc"}, "seed", ("'abc'",)),
    ("fractional seed", {"seed": 1.5}, "seed", ("1.5",)),
    ("negative seed", {"seed": -1}, "seed", ("-1",)),
    ("seed of two to the sixty third", {"seed": 2**63}, "seed", (str(2**63),)),
    (
        "every event type weighted zero",
        {"events": {"event_types": {"start_driving": 0, "stopped_driving": 0, "delivered": 0}}},
        "events.event_types",
        ("'start_driving': 0", "every event type weight is 0"),
    ),
    (
        "negative event type weight",
        {"events": {"event_types": {"start_driving": -1, "delivered": 1}}},
        "events.event_types.start_driving",
        ("-1",),
    ),
    (
        "unknown event type",
        {"events": {"event_types": {"teleported": 1}}},
        "events.event_types.teleported",
        ("'teleported'", "'delivered'"),
    ),
    (
        "simulated clock without start",
        {"clock": {"kind": "simulated"}},
        "clock",
        ("'simulated'", "start"),
    ),
    (
        "wall clock with start",
        {"clock": {"kind": "wall", "start": "2026-01-01T00:00:00Z"}},
        "clock",
        ("'2026-01-01T00:00:00Z'", "simulated"),
    ),
    (
        "naive datetime start",
        {"clock": {"kind": "simulated", "start": "2026-01-01T00:00:00"}},
        "clock.start",
        ("'2026-01-01T00:00:00'", "timezone"),
    ),
    ("unknown clock kind", {"clock": {"kind": "lunar"}}, "clock.kind", ("'lunar'",)),
    (
        "events per driver zero",
        {"events": {"production": {"events_per_driver": 0}}},
        "events.production.events_per_driver",
        ("0",),
    ),
    (
        "events per driver above ten thousand",
        {"events": {"production": {"events_per_driver": 20_000}}},
        "events.production.events_per_driver",
        ("20000",),
    ),
    (
        "active rate one and a half",
        {"companies": {"active_rate": 1.5}},
        "companies.active_rate",
        ("1.5",),
    ),
    (
        "location missing rate below zero",
        {"events": {"location_missing_rate": -0.1}},
        "events.location_missing_rate",
        ("-0.1",),
    ),
    ("a list instead of a mapping", [{"mode": "emulated"}], None, ("mapping", "a list")),
    ("a string instead of a mapping", "mode: emulated", None, ("mapping", "a string")),
    ("a number instead of the companies block", {"companies": 5}, "companies", ("5",)),
    ("empty database url", {"database_url": ""}, "database_url", ("''",)),
    ("empty broker url", {"broker_url": ""}, "broker_url", ("''",)),
]


@pytest.mark.parametrize(
    ("data", "path", "shows"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID]
)
def test_an_invalid_configuration_is_rejected_naming_the_field_and_the_value(
    data: Any, path: str | None, shows: tuple[str, ...]
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings(data, source="test.yaml", env=False)
    error = caught.value
    message = str(error)
    assert error.exit_code == 2
    assert message.startswith("invalid configuration in test.yaml (1 problem)")
    assert len(error.problems) == 1
    line = problem_line(message, path) if path else error.problems[0]
    for fragment in shows:
        assert names_value(line, fragment), f"{fragment!r} missing from {line!r}"


def test_the_invalid_table_has_at_least_thirty_distinct_cases() -> None:
    ids = [case[0] for case in INVALID]
    assert len(set(ids)) == len(ids) >= 30
    assert len({repr(case[1]) for case in INVALID}) == len(INVALID)


def test_a_size_of_zero_is_rejected_naming_the_field() -> None:
    with pytest.raises(ConfigError, match=r"companies\.emulated\.min_batch_size: got 0"):
        parse_settings({"companies": {"emulated": {"min_batch_size": 0}}}, env=False)


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    data = {
        "seed": -1,
        "mode": "turbo",
        "companies": {"quality": {"rate": 2}},
        "events": {"emulated": {"interval": "soon"}},
    }
    with pytest.raises(ConfigError) as caught:
        parse_settings(data, env=False)
    assert len(caught.value.problems) == 4
    assert "(4 problems)" in str(caught.value)
    for path in ("seed", "mode", "companies.quality.rate", "events.emulated.interval"):
        problem_line(str(caught.value), path)


def test_a_config_error_is_an_emugen_error_with_exit_code_two() -> None:
    with pytest.raises(EmugenError) as caught:
        parse_settings({"seed": -1}, env=False)
    assert isinstance(caught.value, ConfigError)
    assert caught.value.exit_code == 2
    assert caught.value.source == "<data>"


# -- values that once slipped through: infinities, huge intervals and YAML booleans ----


@pytest.mark.parametrize(
    "written", [float("inf"), 1e20, "99999999999d"], ids=["infinity", "1e20", "huge day count"]
)
def test_an_interval_too_large_for_a_timedelta_is_rejected_naming_the_field(written: Any) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings({"companies": {"emulated": {"interval": written}}}, env=False)
    problem_line(str(caught.value), "companies.emulated.interval")


@pytest.mark.parametrize(
    "data",
    [
        {"events": {"event_types": {"delivered": float("inf")}}},
        {"events": {"quality": {"defects": {"duplicate": float("inf")}}}},
    ],
    ids=["infinite event type weight", "infinite defect weight"],
)
def test_an_infinite_weight_is_rejected(data: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        parse_settings(data, env=False)


@pytest.mark.parametrize(
    "data",
    [
        {"companies": {"quality": {"rate": True}}},
        {"companies": {"active_rate": True}},
        {"companies": {"emulated": {"min_batch_size": True}}},
        {"seed": True},
    ],
    ids=["boolean quality rate", "boolean active rate", "boolean batch size", "boolean seed"],
)
def test_a_boolean_is_rejected_where_a_number_is_expected(data: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        parse_settings(data, env=False)


# -- files -----------------------------------------------------------------------------------


def test_a_valid_file_loads_with_its_values(tmp_path: Path) -> None:
    file = write(
        tmp_path,
        "mode: production\nseed: 7\n"
        "clock: {kind: simulated, start: 2026-01-01T00:00:00Z}\n"
        "companies:\n  production: {interval: 30m, min_batch_size: 50, max_batch_size: 60}\n",
    )
    settings = load_settings(file, env=False)
    assert settings.mode is Mode.production
    assert settings.seed == 7
    assert settings.clock.start == datetime(2026, 1, 1, tzinfo=UTC)
    assert settings.interval(Stream.companies) == timedelta(minutes=30)
    assert settings.interval(Stream.events) == timedelta(minutes=15)  # left at its default


def test_a_file_of_comments_is_refused_rather_than_read_as_every_default(tmp_path: Path) -> None:
    # the defaults include a database URL: "nothing set" must never mean "move to the default"
    with pytest.raises(ConfigError, match="holds no settings"):
        load_settings(write(tmp_path, "# nothing set\n"), env=False)


def test_the_emulated_preset_behaves_like_the_defaults() -> None:
    preset, default = load_settings(PRESET, env=False), Settings()
    assert preset.mode is default.mode and preset.seed == default.seed
    for stream in Stream:
        for mode in Mode:
            assert preset.cadence(stream, mode) == default.cadence(stream, mode)
        assert preset.quality(stream).weights(stream) == default.quality(stream).weights(stream)
    assert preset.events.event_types == default.events.event_types


def test_a_missing_file_names_the_path_and_suggests_emugen_init(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "emugen.yaml"
    with pytest.raises(ConfigError) as caught:
        load_settings(missing)
    message = str(caught.value)
    assert str(missing) in message
    assert caught.value.source == str(missing)
    assert "no such file" in message
    assert "`emugen init`" in message and "cp config/" not in message


def test_malformed_yaml_is_reported_with_its_line_number(tmp_path: Path) -> None:
    file = write(tmp_path, "mode: emulated\nseed: 42\nclock:\n  kind: wall\n   start: oops\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(file)
    message = str(caught.value)
    assert str(file) in message
    assert "not valid YAML at line 5" in message


def test_a_file_whose_top_level_is_a_list_is_rejected(tmp_path: Path) -> None:
    file = write(tmp_path, "- mode: emulated\n- seed: 42\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(file)
    assert str(file) in str(caught.value)
    assert "must hold a mapping of keys, got a list" in str(caught.value)


def test_a_bad_value_in_a_file_names_the_file_and_the_field(tmp_path: Path) -> None:
    file = write(tmp_path, "events:\n  emulated:\n    max_batch_size: 0\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(file)
    assert str(caught.value).startswith(f"invalid configuration in {file}")
    assert names_value(problem_line(str(caught.value), "events.emulated.max_batch_size"), "0")


def test_a_directory_instead_of_a_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_settings(tmp_path)


# -- the environment -------------------------------------------------------------------------


def test_the_environment_overrides_the_database_and_broker_urls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = write(tmp_path, "database_url: sqlite:///file.db\nbroker_url: redis://file:6379/0\n")
    monkeypatch.setenv("EMUGEN_DATABASE_URL", "postgresql://env/db")
    monkeypatch.setenv("EMUGEN_BROKER_URL", "redis://env:6379/1")
    settings = load_settings(file)
    assert settings.database_url == "postgresql://env/db"
    assert settings.broker_url == "redis://env:6379/1"


def test_env_false_ignores_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = write(tmp_path, "database_url: sqlite:///file.db\nbroker_url: redis://file:6379/0\n")
    monkeypatch.setenv("EMUGEN_DATABASE_URL", "postgresql://env/db")
    monkeypatch.setenv("EMUGEN_BROKER_URL", "redis://env:6379/1")
    settings = load_settings(file, env=False)
    assert settings.database_url == "sqlite:///file.db"
    assert settings.broker_url == "redis://file:6379/0"
    assert parse_settings({}, env=False).database_url == Settings().database_url


def test_an_empty_environment_variable_does_not_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMUGEN_DATABASE_URL", "")
    assert parse_settings({"database_url": "sqlite:///x.db"}).database_url == "sqlite:///x.db"


def test_the_environment_cannot_change_what_shapes_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMUGEN_SEED", "7")
    monkeypatch.setenv("EMUGEN_MODE", "production")
    settings = parse_settings({})
    assert settings.seed == 42 and settings.mode is Mode.emulated


def test_emugen_config_picks_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = write(tmp_path, "seed: 99\n", name="picked.yaml")
    assert config_path() == DEFAULT_CONFIG == Path("config/emugen.yaml")
    monkeypatch.setenv("EMUGEN_CONFIG", str(file))
    assert config_path() == file
    assert load_settings().seed == 99
    other = tmp_path / "explicit.yaml"
    assert config_path(other) == other  # an explicit path wins over the environment


# -- the fingerprint ---------------------------------------------------------------------------


def test_the_fingerprint_is_stable_for_equal_settings() -> None:
    a = parse_settings({"seed": 5, "companies": {"emulated": {"interval": "PT10S"}}}, env=False)
    b = parse_settings({"seed": 5, "companies": {"emulated": {"interval": 10}}}, env=False)
    assert a == b
    assert a.fingerprint() == b.fingerprint() == a.fingerprint()
    assert re.fullmatch(r"[0-9a-f]{16}", a.fingerprint())


def test_the_fingerprint_changes_with_the_seed() -> None:
    assert Settings().fingerprint() != parse_settings({"seed": 43}, env=False).fingerprint()


def test_the_fingerprint_changes_with_an_interval() -> None:
    changed = parse_settings({"events": {"production": {"interval": "PT16M"}}}, env=False)
    assert Settings().fingerprint() != changed.fingerprint()


def test_the_fingerprint_changes_with_the_mode_and_the_quality() -> None:
    base = Settings().fingerprint()
    assert parse_settings({"mode": "production"}, env=False).fingerprint() != base
    assert parse_settings({"events": {"quality": {"rate": 0.1}}}, env=False).fingerprint() != base


def test_the_fingerprint_ignores_the_database_and_broker_urls() -> None:
    moved = parse_settings(
        {"database_url": "postgresql://elsewhere/db", "broker_url": "redis://elsewhere:6379/3"},
        env=False,
    )
    assert moved != Settings()
    assert moved.fingerprint() == Settings().fingerprint()


# -- immutability ----------------------------------------------------------------------------


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValidationError, match="frozen"):
        settings.seed = 1  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        settings.companies.emulated.min_batch_size = 3  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        settings.clock.kind = "simulated"  # type: ignore[misc]
    assert settings == Settings()


# -- property: every ordered size range validates, every inverted one is rejected -------------

STREAM_BLOCKS = st.sampled_from(
    [("companies", "emulated"), ("companies", "production"), ("events", "emulated")]
)


@hsettings(max_examples=200, deadline=None)
@given(block=STREAM_BLOCKS, low=st.integers(1, 1000), span=st.integers(0, 999))
def test_any_size_range_with_min_not_above_max_validates(
    block: tuple[str, str], low: int, span: int
) -> None:
    high = min(low + span, 1000)
    section, mode = block
    settings = parse_settings(
        {section: {mode: {"min_batch_size": low, "max_batch_size": high}}}, env=False
    )
    cadence = settings.cadence(Stream(section), Mode(mode))
    assert isinstance(cadence, SizeRange)
    assert (cadence.min_batch_size, cadence.max_batch_size) == (low, high)


@hsettings(max_examples=200, deadline=None)
@given(
    block=STREAM_BLOCKS,
    pair=st.integers(2, 1000).flatmap(lambda low: st.tuples(st.just(low), st.integers(1, low - 1))),
)
def test_any_size_range_with_min_above_max_is_rejected_naming_max_batch_size(
    block: tuple[str, str], pair: tuple[int, int]
) -> None:
    low, high = pair
    section, mode = block
    with pytest.raises(ConfigError) as caught:
        parse_settings(
            {section: {mode: {"min_batch_size": low, "max_batch_size": high}}}, env=False
        )
    line = problem_line(str(caught.value), f"{section}.{mode}.max_batch_size")
    assert names_value(line, str(high)) and names_value(line, str(low))
