"""The configuration: a frozen pydantic tree loaded from YAML, exported as one namespace.

May import vocabulary, errors and files only.
"""

from emugen.settings.fields import (
    MAX_BATCH,
    MAX_INTERVAL,
    MIN_INTERVAL,
    Count,
    Frozen,
    Interval,
    Rate,
    Real,
    Retention,
    Weight,
)
from emugen.settings.loading import (
    DEFAULT_CONFIG,
    ENV_CONFIG,
    ENV_HOME,
    ENV_LANDING_ROOT,
    ENV_OVERRIDES,
    config_origin,
    config_path,
    load_settings,
    parse_settings,
    settings_from_text,
)
from emugen.settings.model import Clock, Fleet, GradeTarget, Landing, Settings
from emugen.settings.problems import MAX_PROBLEMS
from emugen.settings.streams import (
    CompaniesSettings,
    DriverRange,
    EmulatedCompanyCadence,
    EmulatedEventCadence,
    EventsSettings,
    ProductionCompanyCadence,
    ProductionEventCadence,
    Quality,
    SizeRange,
)

__all__ = [
    "DEFAULT_CONFIG",
    "ENV_CONFIG",
    "ENV_HOME",
    "ENV_LANDING_ROOT",
    "ENV_OVERRIDES",
    "MAX_BATCH",
    "MAX_INTERVAL",
    "MAX_PROBLEMS",
    "MIN_INTERVAL",
    "Clock",
    "CompaniesSettings",
    "Count",
    "DriverRange",
    "EmulatedCompanyCadence",
    "EmulatedEventCadence",
    "EventsSettings",
    "Fleet",
    "Frozen",
    "GradeTarget",
    "Interval",
    "Landing",
    "ProductionCompanyCadence",
    "ProductionEventCadence",
    "Quality",
    "Rate",
    "Real",
    "Retention",
    "Settings",
    "SizeRange",
    "Weight",
    "config_origin",
    "config_path",
    "load_settings",
    "parse_settings",
    "settings_from_text",
]
