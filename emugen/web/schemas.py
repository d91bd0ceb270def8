"""Request bodies: strict pydantic models, so a bad field gets a 422 that names it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from emugen.vocabulary import Mode


class ModeChange(BaseModel):
    """Switch the config file's `mode:`; beat applies it within about a second."""

    model_config = ConfigDict(extra="forbid")

    mode: Mode = Field(description="production | emulated")


class Problem(BaseModel):
    """Every error but a 422: what was wrong and how to fix it."""

    detail: str


# -- response parts (documented in /openapi.json's components; the endpoints return dicts)


class StreamArrivals(BaseModel):
    """`streams.<name>.arrivals` of /api/health and /api/snapshot: the arrival ledger's entries
    for the stream, and the contract version of its newest batch."""

    late: int = Field(description="records that arrived after their window closed")
    redelivered: int = Field(description="records delivered again in a later batch")
    delayed: int = Field(description="batches held back and released after later ones")
    contract_version: int = Field(description="1, or 2 once the schema drifted")


class GoldWindows(BaseModel):
    """`gold_windows` of /api/health and /api/snapshot: gold windows late data revised after
    they closed (gold_window_revisions, shared by both streams' gold tables)."""

    revised: int = Field(description="windows revised at least once")
    max_revisions: int = Field(description="the most revisions of any window")


class ArrivalMark(BaseModel):
    """`items[].arrival` of /api/batches/{id}/records: null for a row that arrived on time."""

    condition: str = Field(description="late | redelivered")
    lateness_ms: int | None = Field(description="late: how far after its window it arrived")
    belongs_to_window: str | None = Field(description="the gold window its event time is in")
    original_batch_id: str | None = Field(description="redelivered: the batch first holding it")
    original_row_no: int | None = Field(description="redelivered: its row there")


class GoldCell(BaseModel):
    """One wrong cell of an outside pipeline's gold, with the causes that explain it."""

    window_start: str | None
    key: str | None = Field(description="company_id or region")
    metric: str
    expected: str = Field(description="a number, or [lo, hi] under a watermark band")
    got: float | None
    difference: float
    causes: list[dict[str, str]] = Field(description="{cause, text} each")


class GoldVerdict(BaseModel):
    """`external.gold` of /api/snapshot (the whole answer) and `answer` of
    /api/batches/{id}/gold (the wrong cells in the batch's windows), when the config's
    `grade:` names an outside pipeline's gold."""

    verdict: str | None = Field(description="PASS | FAIL; null when it could not be graded")
    policy: str | None = None
    cells: int | None = Field(None, description="cells graded (panel only)")
    wrong: int | None = Field(None, description="wrong cells")
    by_cause: dict[str, int] = Field(description="wrong cells per cause")
    worst: list[GoldCell] = Field([], description="panel: the three worst cells")
    wrong_cells: list[GoldCell] = Field([], description="batch: up to 20 of its wrong cells")


RESPONSE_PARTS = (StreamArrivals, GoldWindows, ArrivalMark, GoldCell, GoldVerdict)
