"""The batch page's routes: one batch, its records page by page, its gold rows, its replay."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from emugen import __version__
from emugen.db.models import BatchRow
from emugen.db.session import read_session
from emugen.errors import BatchNotFound, EmugenError, PageOutOfRange
from emugen.pipeline.replay import replay
from emugen.web.api import Control, Web
from emugen.web.batch import BATCH_ID_PATTERN, batch_detail, find_batch
from emugen.web.changes import MAX_ROWS, gold_changes
from emugen.web.records import MAX_PAGE, MAX_SIZE, records_page
from emugen.web.schemas import Problem
from emugen.web.state import WebState

router = APIRouter()
templates = Jinja2Templates(directory=FilePath(__file__).parent / "templates")
BatchId = Annotated[
    str,
    Path(
        pattern=BATCH_ID_PATTERN,
        max_length=40,
        description="e.g. events-000000001",
        examples=["events-000000001"],
    ),
]
MISSING: dict[int | str, dict[str, Any]] = {
    404: {
        "model": Problem,
        "description": "No such batch, or retention pruned it (the message says which)",
    }
}


@contextmanager
def _batch(state: WebState, batch_id: str) -> Iterator[tuple[Session, BatchRow]]:
    """The batch in a read session; 404 naming why when there is none."""
    with read_session(state.engine) as session:
        try:
            batch = find_batch(session, batch_id, state.settings.fleet.retain_batches_for)
        except BatchNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        yield session, batch


@router.get("/api/batches/{batch_id}", tags=["read"], responses=MISSING)
def batch(batch_id: BatchId, state: Web) -> dict[str, Any]:
    """One batch: its spec, stage times and work per stage, worker, status, reconciliation."""
    with _batch(state, batch_id) as (session, found):
        return batch_detail(session, found)


@router.get(
    "/api/batches/{batch_id}/records",
    tags=["read"],
    responses={
        404: {
            "model": Problem,
            "description": "No such batch, retention pruned it, or the page is "
            "past the last one (the message says which)",
        }
    },
)
def records(
    batch_id: BatchId,
    state: Web,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE, description="from 1")] = 1,
    size: Annotated[int, Query(ge=1, le=MAX_SIZE)] = 50,
    problems: Annotated[
        Literal["only", "all"],
        Query(description="only: rows injected with a defect or quarantined"),
    ] = "all",
) -> dict[str, Any]:
    """The batch's bronze rows in row order, each with its injected defect (from the truth),
    where it went (silver row or quarantine row and reason) and its verdict: clean, caught,
    escaped, false_alarm, mismatch, lost, deduplicated (a redelivered copy silver dropped), or
    pending (its batch is not in silver yet)."""
    with _batch(state, batch_id) as (session, found):
        try:
            return records_page(session, found, page, size, problems == "only")
        except PageOutOfRange as exc:
            raise HTTPException(404, str(exc)) from None


@router.get("/api/batches/{batch_id}/gold", tags=["read"], responses=MISSING)
def gold(
    batch_id: BatchId, state: Web, limit: Annotated[int, Query(ge=1, le=MAX_ROWS)] = 200
) -> dict[str, Any]:
    """The gold rows the batch's silver rows fall in: now, the batch's share, and without it;
    each window's revisions; and, when the config's `grade:` names an outside pipeline's
    gold, its verdict and wrong cells by cause in the windows of those rows (`answer`)."""
    with _batch(state, batch_id) as (session, found):
        changes = gold_changes(session, found, limit)
    state.external.read()  # re-graded if due
    graded = state.external.gold_result
    changes["answer"] = None
    if graded is not None:
        from emugen.grade.live_gold import batch_answer

        width = changes["window_seconds"] * 1000
        windows = {(i["window_start_ms"], width) for i in changes["items"]}
        changes["answer"] = batch_answer(graded[0], graded[1], sorted(windows))
    return changes


@router.post(
    "/api/batches/{batch_id}/replay",
    tags=["control"],
    responses={
        **MISSING,
        409: {"model": Problem, "description": "Made by another generator version"},
    },
)
def replay_batch(batch_id: BatchId, state: Control) -> dict[str, Any]:
    """`emugen replay` for this batch: regenerate it from its spec and compare with bronze."""
    with _batch(state, batch_id) as (session, _):
        try:
            report = replay(session, batch_id)
        except BatchNotFound as exc:  # pruned between the look-up and the replay
            raise HTTPException(404, str(exc)) from None
        except EmugenError as exc:
            raise HTTPException(409, str(exc)) from None
    return {
        "batch_id": batch_id,
        "identical": report.identical,
        "rows": report.rows,
        "differing": report.differing[:20],
        "missing": report.missing,
        "extra": report.extra,
        "truth_matches": report.truth_matches,
        "message": report.summary(),
    }


@router.get("/batches/{batch_id}", response_class=HTMLResponse, include_in_schema=False)
def page(
    request: Request, batch_id: Annotated[str, Path(max_length=200)], state: Web
) -> HTMLResponse:
    """The batch page; its script fetches the API. A bad or unknown id says so, with a 4xx."""
    error, status = None, 200
    if not re.fullmatch(BATCH_ID_PATTERN, batch_id):
        error, status = (
            (f"{batch_id!r} is not a batch id: expected companies-NNNNNNNNN or events-NNNNNNNNN"),
            422,
        )
    else:
        with read_session(state.engine) as session:
            try:
                find_batch(session, batch_id, state.settings.fleet.retain_batches_for)
            except BatchNotFound as exc:
                error, status = str(exc), 404
    return templates.TemplateResponse(
        request,
        "batch.html",
        {
            "batch_id": batch_id,
            "error": error,
            "version": __version__,
            "flower_url": state.flower_url,
            "token_required": state.token is not None,
        },
        status_code=status,
    )
