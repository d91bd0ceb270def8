"""The HTTP API: thin routes over the snapshot functions and the fleet's control state."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.exc import SQLAlchemyError

from emugen.db.session import read_session, write_session
from emugen.errors import ConfigError, LandingError, NotPaused
from emugen.fleet.announce import announce
from emugen.fleet.control import clean, set_paused
from emugen.fleet.reload import set_mode
from emugen.status.batches import batches_page, latency
from emugen.status.quality import quality
from emugen.vocabulary import Stream
from emugen.web.schemas import ModeChange, Problem
from emugen.web.security import cross_origin, token_problem
from emugen.web.state import WebState

router = APIRouter()
bearer = HTTPBearer(
    auto_error=False,
    description="Required when the dashboard listens beyond "
    "loopback: the value of EMUGEN_WEB_TOKEN.",
)
Status = Literal["bronze", "silver", "gold", "failed"]
Window = Literal["15m", "1h", "24h"]  # emugen.web.history.WINDOWS


def web(request: Request) -> WebState:
    return request.app.state.web


def controller(
    request: Request,
    state: Annotated[WebState, Depends(web)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> WebState:
    """Control endpoints: the token when one is required, and never from another site's page."""
    given = f"Bearer {credentials.credentials}" if credentials else None
    problem = token_problem(given, state.token)
    if problem:
        raise HTTPException(401, problem, headers={"WWW-Authenticate": "Bearer"})
    origin = request.headers.get("origin")
    if cross_origin(origin, request.headers.get("host")):
        raise HTTPException(
            403,
            f"cross-origin request from {origin} refused: only the "
            "dashboard's own page may control the fleet",
        )
    return state


Web = Annotated[WebState, Depends(web)]
Control = Annotated[WebState, Depends(controller)]


@router.get("/api/health", tags=["read"])
def health(state: Web) -> dict[str, Any]:
    """running | paused | degraded (with reasons), mode, config, streams, queues, workers."""
    try:
        return state.health()
    except SQLAlchemyError as exc:
        return state.unreachable(exc)


@router.get("/api/snapshot", tags=["read"])
def snapshot(state: Web) -> dict[str, Any]:
    """Everything the page shows, built now: the polling fallback of /api/stream."""
    return {**state.snapshot(), "id": None}


@router.get("/api/batches", tags=["read"])
def batches(
    state: Web,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    stream: Stream | None = None,
    status: Status | None = None,
) -> dict[str, Any]:
    """Batches newest first with stage timestamps and latencies; page with limit/offset."""
    with read_session(state.engine) as session:
        return batches_page(session, limit, offset, stream.value if stream else None, status)


@router.get("/api/quality", tags=["read"])
def quality_report(state: Web) -> dict[str, Any]:
    """Defect % per type per stream, injected vs caught, escaped defects, false alarms."""
    with read_session(state.engine) as session:
        return quality(session)


@router.get("/api/latency", tags=["read"])
def latency_report(
    state: Web, batches: Annotated[int, Query(ge=1, le=10_000)] = 100, stream: Stream | None = None
) -> dict[str, Any]:
    """p50/p95/max per layer (ms) over the most recent `batches` batches."""
    with read_session(state.engine) as session:
        return latency(session, batches, stream.value if stream else None)


@router.get("/api/history", tags=["read"])
def history_report(state: Web, window: Window = "15m") -> dict[str, Any]:
    """Throughput, tick -> gold p50/p95, defect rate and backlog per time bucket over the last
    15m, 1h or 24h: at most 120 points per series, [bucket start (epoch ms), value]."""
    return state.history_for(window)


@router.post("/api/pause", tags=["control"])
def pause(state: Control) -> dict[str, Any]:
    """Stop new batches (beat records each tick as skipped); in-flight ones finish."""
    with write_session(state.engine) as session:
        changed = set_paused(session, True)
    announce(state.settings.broker_url, "control", "paused")
    return {
        "paused": True,
        "changed": changed,
        "message": "paused: beat skips every tick" if changed else "already paused",
    }


@router.post("/api/resume", tags=["control"])
def resume(state: Control) -> dict[str, Any]:
    """Generate again; seqs continue where they stopped."""
    with write_session(state.engine) as session:
        changed = set_paused(session, False)
    announce(state.settings.broker_url, "control", "resumed")
    return {
        "paused": False,
        "changed": changed,
        "message": "resumed" if changed else "already running",
    }


@router.post(
    "/api/mode",
    tags=["control"],
    responses={
        409: {"model": Problem, "description": "The config file is invalid or cannot be rewritten"}
    },
)
def mode(body: ModeChange, state: Control) -> dict[str, Any]:
    """Rewrite the config file's mode atomically; beat hot-reloads it within about a second."""
    try:
        before, after = set_mode(body.mode, state.config_path)
    except ConfigError as exc:
        raise HTTPException(409, f"{exc}") from None
    except OSError as exc:
        raise HTTPException(409, f"cannot rewrite {state.config_path}: {exc.strerror}") from None
    changed = before is not after
    was = before.value if before is not None else "(invalid file)"  # a repaired mode line
    return {
        "before": before.value if before is not None else None,
        "after": after.value,
        "changed": changed,
        "path": str(state.config_path),
        "message": (
            f"mode {was} -> {after.value}; beat applies it within about a second"
            if changed
            else f"already {after.value}"
        ),
    }


@router.post(
    "/api/clean",
    tags=["control"],
    responses={409: {"model": Problem, "description": "The fleet is running: pause it first"}},
)
def clean_store(state: Control) -> dict[str, Any]:
    """Wipe every layer, the truth and the skip counters, and purge the queues (paused only)."""
    try:
        with write_session(state.engine) as session:
            cleaned = clean(session, state.settings.landing)
    except NotPaused:
        raise HTTPException(
            409,
            "clean only runs while the fleet is paused: POST /api/pause "
            "(or run `emugen pause`) first",
        ) from None
    except LandingError as exc:  # the zone refused to delete: nothing was wiped
        raise HTTPException(502, str(exc)) from None
    announce(state.settings.broker_url, "control", "cleaned")
    purged = state.probe.purge()
    tail = "" if purged is None else f", {purged:,} queued messages"
    return {
        "removed": cleaned.removed,
        "queued_messages_purged": purged,
        "message": f"{cleaned}{tail}",
    }


@router.get(
    "/api/stream",
    tags=["read"],
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "One `snapshot` event per change, with an id.",
        }
    },
)
async def stream(
    request: Request,
    state: Web,
    last_event_id: Annotated[str | None, Header(max_length=100)] = None,
    resume_from: Annotated[str | None, Query(max_length=100)] = None,
) -> StreamingResponse:
    """Server-sent events: the snapshot now, then one per change. A reconnect sends
    Last-Event-ID (or ?resume_from=) and gets nothing until something changed since."""
    events = state.broadcaster.events(last_event_id or resume_from, request.is_disconnected)
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/metrics",
    tags=["read"],
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
def metrics(state: Web) -> Response:
    """Prometheus: batches, records, defects, latency histograms, skips, queues, workers,
    mode, last gold per stream."""
    with read_session(state.engine) as session:
        body = state.metrics.scrape(session, state.probe.read(), state.config().get("mode"))
    return Response(body, media_type=CONTENT_TYPE_LATEST)
