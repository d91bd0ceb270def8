"""The user's declarations, parsed: the lateness policy, the trigger, the tolerance, the column
map and the window length. Each parser raises one line naming the bad value."""

from __future__ import annotations

import re
from dataclasses import dataclass

from emugen.errors import GradeInputError

POLICY_KINDS = ("exact", "watermark", "lookback")
TRIGGERS = ("per-batch", "any")
COMPANY_METRICS = ("events", "start_driving", "stopped_driving", "delivered", "active_drivers")
REGION_METRICS = ("companies_onboarded", "events", "deliveries")
METRICS = {"company": COMPANY_METRICS, "region": REGION_METRICS}
KEY_COLUMN = {"company": "company_id", "region": "region"}
# the names a consumer's gold columns are mapped to (`emugen export gold`'s names)
TARGETS = (
    "window_start",
    "window_start_ms",
    "window_seconds",
    "company_id",
    "region",
    *dict.fromkeys(COMPANY_METRICS + REGION_METRICS),
)
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_ISO = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?$", re.IGNORECASE)


def parse_duration_ms(text: str, what: str) -> int:
    """`90s`, `10 min`, `1h`, `PT30S`, `250ms` or bare seconds -> milliseconds."""
    raw = text.strip()
    iso = _ISO.match(raw)
    if iso and any(iso.groups()):
        h, m, s = iso.groups()
        return round((int(h or 0) * 3600 + int(m or 0) * 60 + float(s or 0)) * 1000)
    found = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-z]*)", raw.lower())
    if not found or found.group(2) not in (*_UNITS, ""):
        raise GradeInputError(
            f"{what} {text!r} is not a duration; write it like 30s, 10min, 1h or PT30S"
        )
    return round(float(found.group(1)) * _UNITS[found.group(2) or "s"] * 1000)


@dataclass(frozen=True)
class Policy:
    """How the pipeline declares it treats late data.

    exact: everything valid counts. watermark: Spark/Flink with a `delay_ms` bound (per-batch
    trigger: one landed file per micro-batch; otherwise a [lo, hi] band). lookback: a dbt
    incremental run per landed file recomputing the last `windows` windows."""

    kind: str = "exact"
    delay_ms: int = 0
    windows: int = 0
    trigger: str = "any"

    @property
    def band(self) -> bool:
        return self.kind == "watermark" and self.trigger != "per-batch"

    def label(self) -> str:
        if self.kind == "watermark":
            return f"watermark={self.delay_ms / 1000:g}s" + (
                ", trigger per-batch" if self.trigger == "per-batch" else ""
            )
        if self.kind == "lookback":
            return f"lookback={self.windows}"
        return "exact"


def parse_policy(text: str, trigger: str = "any") -> Policy:
    """`exact`, `watermark=10s` or `lookback=2`."""
    name, _, value = text.strip().partition("=")
    name = name.strip().lower()
    if name == "exact" and not value:
        return Policy("exact", trigger=trigger)
    if name == "watermark" and value:
        return Policy(
            "watermark", delay_ms=parse_duration_ms(value, "--policy watermark"), trigger=trigger
        )
    if name == "lookback" and value.strip().isdigit():
        return Policy("lookback", windows=int(value), trigger=trigger)
    raise GradeInputError(
        f"--policy {text!r} is not a policy; use exact, watermark=DURATION "
        "(e.g. watermark=10s) or lookback=N (whole windows, e.g. lookback=2)"
    )


@dataclass(frozen=True)
class Tolerance:
    """A cell is right when |got - expected| <= max(absolute, relative * |expected|)."""

    absolute: float = 0.0
    relative: float = 0.0

    def allowed(self, expected: float) -> float:
        return max(self.absolute, self.relative * abs(expected))

    def allowed_sql(self, expected: str) -> str:
        """`allowed` as a DuckDB expression over the SQL expression `expected`."""
        return f"greatest({self.absolute}, {self.relative} * abs({expected}))"


def parse_tolerance(text: str | None) -> Tolerance:
    """`abs=2`, `rel=0.01` or `abs=2,rel=0.01`."""
    if not text:
        return Tolerance()
    values = {"abs": 0.0, "rel": 0.0}
    for part in text.split(","):
        name, _, value = part.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if name.strip() not in values or number < 0:
            raise GradeInputError(
                f"--tolerance {part.strip()!r} is not a tolerance; write "
                "abs=K,rel=R with K, R >= 0 (e.g. abs=1,rel=0.02)"
            )
        values[name.strip()] = number
    return Tolerance(values["abs"], values["rel"])


def parse_columns(text: str | None) -> dict[str, str]:
    """`window_start=ws,company_id=cid,events=n` -> {target: the consumer's column}."""
    mapping: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        target, _, source = part.partition("=")
        target, source = target.strip().lower(), source.strip()
        if target not in TARGETS or not source:
            raise GradeInputError(
                f"--columns {part.strip()!r}: map one of {', '.join(TARGETS)} to your column "
                "name, as target=yours (e.g. window_start=ws,events=n)"
            )
        mapping[target] = source
    return mapping
