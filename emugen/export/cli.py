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
        raise ExportError(f"{option} {value!r} is not an ISO-8601 time; use e.g. "
                          "2026-01-01T00:00:00Z") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _choice(option: str, value: str | None, allowed: tuple[str, ...]) -> None:
    # checked here rather than by click.Choice so the message and exit code match every
    # other bad value (one line, exit 2), and name the option
    if value is not None and value not in allowed:
        raise ExportError(f"{option} {value!r} is not allowed; use one of {', '.join(allowed)}")


@click.command("export")
@click.argument("kind", metavar="{" + ",".join(KINDS) + "}")
@click.option("--format", "fmt", default="parquet", show_default=True,
              metavar="parquet|jsonl|csv")
@click.option("--stream", default=None, metavar="companies|events",
              help="Only this stream (silver and gold need it: one table each).")
@click.option("--since", default=None, metavar="TIME",
              help="Batches scheduled at or after TIME (gold: windows starting then).")
@click.option("--until", default=None, metavar="TIME", help="... and before TIME.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Config file (the store to read).")
def export_cmd(kind: str, fmt: str, stream: str | None, since: str | None, until: str | None,
               out: Path, config_file: Path | None) -> None:
    """Write KIND from the store to OUT in chunks (constant memory), with a progress bar."""
    _choice("KIND", kind, KINDS)
    _choice("--format", fmt, FORMATS)
    from emugen.db.session import engine_for, init_db
    from emugen.export.tables import export_for
    from emugen.export.writer import count_rows, export_table, export_truth
    from emugen.settings import load_settings

    export = export_for(kind, stream, parse_time("--since", since), parse_time("--until", until))
    if out.is_dir():
        raise ExportError(f"--out {out} is a folder; give a file name, e.g. {out / kind}.{fmt}")
    settings = load_settings(config_file)
    engine = engine_for(settings.database_url)
    init_db(engine)
    write = export_truth if kind == "truth" else export_table
    if sys.stderr.isatty():
        total = count_rows(engine, export)
        with click.progressbar(length=total, label=f"{kind} -> {out}", file=sys.stderr) as bar:
            written = write(engine, export, fmt, out, bar.update)
    else:
        written = write(engine, export, fmt, out)
    click.echo(f"{written:,} {kind} rows written to {out}")
