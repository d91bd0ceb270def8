"""`emugen export`: a layer of the store, the truth or the arrival ledger, to a file."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from emugen.errors import ExportError
from emugen.export import FORMATS, KINDS


def parse_time(option: str, value: str | None) -> datetime | None:
    """An ISO-8601 time (UTC when no offset is given), or an error naming the option."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ExportError(
            f"{option} {value!r} is not an ISO-8601 time; use e.g. 2026-01-01T00:00:00Z"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _choice(option: str, value: str | None, allowed: tuple[str, ...]) -> None:
    # checked here rather than by click.Choice so the message and exit code match every
    # other bad value (one line, exit 2), and name the option
    if value is not None and value not in allowed:
        raise ExportError(f"{option} {value!r} is not allowed; use one of {', '.join(allowed)}")


def _store_file(database_url: str) -> Path | None:
    """The configured store's file when it is SQLite (never written over); else None."""
    from sqlalchemy.engine import make_url

    from emugen.db.storefile import sqlite_path

    url = make_url(database_url)
    return sqlite_path(url.database) if url.get_backend_name() == "sqlite" else None


@click.command("export")
@click.argument("kind", metavar="{" + ",".join(KINDS) + "}")
@click.option(
    "--format",
    "fmt",
    default=None,
    metavar="parquet|jsonl|csv",
    help="Default: the --out name's suffix (.parquet, .jsonl/.json, .csv), else "
    "parquet; a suffix that says another format is refused.",
)
@click.option(
    "--stream",
    default=None,
    metavar="companies|events",
    help="Only this stream (silver and gold need it: one table each).",
)
@click.option(
    "--since",
    default=None,
    metavar="TIME",
    help="Batches scheduled at or after TIME (gold: windows starting then).",
)
@click.option("--until", default=None, metavar="TIME", help="... and before TIME.")
@click.option(
    "--out",
    required=True,
    metavar="FILE|-",
    help="A new file (`-`: stdout). Never the store, a database, a device or a "
    "folder; an existing file only with --force.",
)
@click.option("--force", is_flag=True, help="Replace --out when it is an existing file.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Config file (the store to read).",
)
def export_cmd(  # noqa: PLR0913 - the parameters ARE the command's options
    kind: str,
    fmt: str | None,
    stream: str | None,
    since: str | None,
    until: str | None,
    out: str,
    force: bool,
    config_file: Path | None,
) -> None:
    """Write KIND from the store to OUT in chunks (constant memory), with a progress bar.

    \b
    Examples:
      emugen export truth --out truth.parquet
      emugen export gold --stream events --out - --format csv | head
    """
    _choice("KIND", kind, KINDS)
    _choice("--format", fmt, FORMATS)
    from emugen.db.session import engine_for, init_db
    from emugen.export.tables import export_for
    from emugen.export.writer import count_rows, export_table, export_truth
    from emugen.files.target import check_output, format_for, store_files
    from emugen.settings import load_settings

    export = export_for(kind, stream, parse_time("--since", since), parse_time("--until", until))
    settings = load_settings(config_file)
    protected = store_files(_store_file(settings.database_url))
    target = check_output(out, force=force, protected=protected)
    fmt = format_for(target, fmt, FORMATS, default="parquet")
    if target.is_stdout and fmt == "parquet" and sys.stdout.isatty():
        raise ExportError(
            "--out - would print Parquet (binary) on the terminal; redirect "
            "stdout (> FILE, | PROGRAM) or add --format jsonl or csv"
        )
    engine = engine_for(settings.database_url)
    init_db(engine)
    write = export_truth if kind == "truth" else export_table
    if sys.stderr.isatty():
        total = count_rows(engine, export)
        with click.progressbar(length=total, label=f"{kind} -> {out}", file=sys.stderr) as bar:
            written = write(engine, export, fmt, target, bar.update)
    else:
        written = write(engine, export, fmt, target)
    click.echo(
        f"{written:,} {kind} rows written to {'stdout' if target.is_stdout else out}",
        err=target.is_stdout,
    )
