"""The FastAPI app: API routes, the page, security middleware and error shapes."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.exc import SQLAlchemyError

from emugen import __version__
from emugen.db.session import engine_for, init_db
from emugen.errors import StoreFileGone
from emugen.fleet.applied import standing
from emugen.fleet.supervisor import FLEET_ENV
from emugen.settings import config_path
from emugen.web import DEFAULT_FLOWER_URL, POLL_INTERVAL_S, api, batch_api, openapi
from emugen.web.limits import BodyLimit, FleetStamp
from emugen.web.probe import BrokerProbe
from emugen.web.security import LoopbackHosts, is_loopback, token_for
from emugen.web.state import WebState

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")


def create_app(
    config: str | os.PathLike[str] | None = None,
    *,
    host: str = "127.0.0.1",
    probe: BrokerProbe | None = None,
    flower_url: str | None = DEFAULT_FLOWER_URL,
    poll_interval: float = POLL_INTERVAL_S,
    allowed_hosts: Iterable[str] = (),
    environ: Mapping[str, str] = os.environ,
) -> FastAPI:
    """The app for the config file `config`, as if it listened on `host`.

    Off loopback, control endpoints need $EMUGEN_WEB_TOKEN (and there is no app without
    it); on loopback, only requests addressed to a loopback name (or `allowed_hosts`) are served.
    """
    path = config_path(config)
    token = token_for(host, environ)
    found = standing(path)  # an invalid file: the store's last applied config, and a warning
    if found.warning():  # an invalid file, or one naming stores the fleet has not restarted on
        logging.getLogger("emugen.web").warning("%s", found.warning())
    settings = found.settings
    engine = engine_for(settings.database_url)
    init_db(engine)
    state = WebState(
        path,
        settings,
        engine,
        probe or BrokerProbe(settings.broker_url),
        token=token,
        flower_url=flower_url,
        poll_interval=poll_interval,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state.changes.start()
        yield
        state.changes.stop()
        await state.broadcaster.stop()
        state.probe.close()

    app = FastAPI(
        title="emugen",
        version=__version__,
        lifespan=lifespan,
        description="Watch and steer the emugen fleet: bronze -> silver -> gold.",
    )
    app.state.web = state
    if is_loopback(host):
        app.add_middleware(LoopbackHosts, extra=allowed_hosts)
    fleet_id = environ.get(FLEET_ENV)
    if fleet_id:  # `emugen up` checks it before it prints this dashboard's URL
        app.add_middleware(FleetStamp, fleet_id=fleet_id)
    app.add_middleware(BodyLimit)  # outermost: a huge body is refused before anything reads it
    app.include_router(api.router)
    app.include_router(batch_api.router)  # /batches/<id> and /api/batches/<id>/...
    openapi.install(app, token_required=token is not None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(SQLAlchemyError, _database_error)
    app.add_exception_handler(StoreFileGone, _store_gone)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page(request: Request) -> HTMLResponse:
        try:
            data, error = state.snapshot(), None
        except SQLAlchemyError as exc:
            data, error = None, f"database unreachable: {str(exc).splitlines()[0][:300]}"
        return templates.TemplateResponse(
            request,
            "index.html",
            {
                "s": data,
                "error": error,
                "flower_url": flower_url,
                "version": __version__,
                "token_required": token is not None,
            },
        )

    return app


def _safe(value: Any) -> Any:
    """A JSON-safe, short echo of a bad input value."""
    if value is None or isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


async def _invalid_request(_: Request, exc: Exception) -> JSONResponse:
    """422 naming each bad field, what it allows and what it got."""
    assert isinstance(exc, RequestValidationError)
    detail, lines = [], []
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        ctx = {
            k: _safe(v if isinstance(v, str | int | float) else str(v))
            for k, v in (error.get("ctx") or {}).items()
        }
        item = {
            "loc": loc,
            "msg": error.get("msg", ""),
            "type": error.get("type", ""),
            "input": _safe(error.get("input")),
            **({"ctx": ctx} if ctx else {}),
        }
        detail.append(item)
        got = "" if item["type"] == "missing" else f" (got {item['input']!r})"
        lines.append(f"{'.'.join(loc)}: {item['msg']}{got}")
    return JSONResponse(status_code=422, content={"detail": detail, "message": "; ".join(lines)})


async def _database_error(_: Request, exc: Exception) -> JSONResponse:
    first = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
    return JSONResponse(status_code=503, content={"detail": f"database unreachable: {first}"})


async def _store_gone(_: Request, exc: Exception) -> JSONResponse:
    """A write into a deleted SQLite file is refused: a 503 naming the file, not a 500."""
    return JSONResponse(status_code=503, content={"detail": str(exc)})
