"""Engines and transactions: SQLite in WAL with immediate write locks, PostgreSQL via psycopg."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session

from emugen.db import ledger as _ledger  # noqa: F401  (its table joins Base.metadata)
from emugen.db import migrate, storefile
from emugen.db.models import SCHEMA_VERSION, Base, SchemaVersion
from emugen.errors import DatabaseError, import_extra

# Any lock held longer than this is a bug or a stuck process; fail loudly instead of hanging.
BUSY_TIMEOUT_MS = 30_000


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`; SQLite files get their folder, WAL, a busy timeout, IMMEDIATE"""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseError(
            f"database_url {url!r} is not a SQLAlchemy URL; use e.g. sqlite:///var/emugen.db "
            "or postgresql://user@host/db"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3 is the one we ship
    if parsed.drivername == "postgresql+psycopg":  # an extra: say which, not a traceback
        import_extra("psycopg", "postgres", "a PostgreSQL database_url")
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True, **kwargs)

    path = storefile.sqlite_path(parsed.database)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000}, **kwargs)
    tracked = storefile.track(engine, path) if path is not None else None

    @event.listens_for(engine, "do_connect")
    def _before_connect(*_: Any) -> None:
        # opening a deleted path would create an empty file there and pair it with the old
        # file's WAL; refuse before SQLite touches anything
        if tracked is not None:
            tracked.before_connect()

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event emit BEGIN, so writers can take the lock up front.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        if tracked is not None:
            tracked.connected()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A deferred transaction that reads then writes can fail with SQLITE_BUSY without
        # waiting (lock upgrade); IMMEDIATE takes the write lock first and waits its turn.
        immediate = connection.get_execution_options().get("emugen_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


_ENGINES: dict[tuple[str, int], Engine] = {}


def engine_for(url: str) -> Engine:
    """One engine per URL per process (a forked worker gets its own, never its parent's)."""
    key = (url, os.getpid())
    if key not in _ENGINES:
        _ENGINES[key] = make_engine(url)
    return _ENGINES[key]


def forget_engines() -> None:
    """Drop this process's cached engines without closing them: a forked child calls this so
    it never uses (or closes) the connections its parent still holds."""
    _ENGINES.clear()


def dispose_engines(url: str | Callable[[str], bool]) -> int:
    """Close and forget this process's engines for `url` (or every URL the predicate accepts),
    e.g. before dropping a private schema; how many there were."""
    matches = url if callable(url) else url.__eq__
    gone = [key for key in _ENGINES if matches(key[0])]
    for key in gone:
        _ENGINES.pop(key).dispose()
    return len(gone)


def init_db(engine: Engine) -> None:
    """Create missing tables and record the schema version (safe to run again)."""
    try:
        Base.metadata.create_all(engine)
    except OperationalError as exc:
        raise DatabaseError(
            f"cannot reach the database at {engine.url!r}: {exc.orig}; start the database "
            "(or make the SQLite file's folder writable), or point EMUGEN_DATABASE_URL or "
            "database_url in the config at one that runs, then run `emugen db init`"
        ) from None
    with write_session(engine) as session:
        migrate.lock(session)
        found = session.scalar(select(SchemaVersion.version).order_by(SchemaVersion.version.desc()))
        if found in migrate.UPGRADABLE:
            migrate.upgrade(session, found)
        if found is None or found in migrate.UPGRADABLE:
            session.add(SchemaVersion(version=SCHEMA_VERSION, applied_at=datetime.now(UTC)))
        elif found != SCHEMA_VERSION:
            raise DatabaseError(
                f"the database holds schema version {found}, this emugen expects "
                f"{SCHEMA_VERSION}; use a new database or `emugen clean`"
            )
    # create_all adds missing tables only: an index added to an existing table (a store made
    # by an earlier emugen) is created here, after the upgrade added the columns it may cover
    with engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            for index in table.indexes:
                index.create(conn, checkfirst=True)


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A session in one write transaction: committed on success, rolled back on any error.

    Refuses (StoreFileGone) when the SQLite file was deleted or replaced under this process.
    """
    storefile.check(engine)
    with Session(engine.execution_options(emugen_write=True)) as session, session.begin():
        yield session


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session
