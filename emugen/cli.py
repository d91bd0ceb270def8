"""The `emugen` command line: generate, config, store, fleet control and benchmarks."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import click

from emugen.broker import redact_url
from emugen.errors import EmugenError
from emugen.generate import build_spec, generate
from emugen.settings import MAX_BATCH, Settings, config_path, load_settings
from emugen.vocabulary import Mode, Stream


class EmugenGroup(click.Group):
    """Turns every EmugenError into its message on stderr and its exit code, no traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except EmugenError as exc:
            click.echo(f"emugen: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=EmugenGroup)
@click.version_option(package_name="emugen")
def main() -> None:
    """Seeded synthetic data flowing bronze -> silver -> gold on a Celery fleet."""


config_option = click.option(
    "--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Config file (default: $EMUGEN_CONFIG or config/emugen.yaml).",
)


def _iso(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO-8601 time; use e.g. 2026-01-01T00:00:00Z"
        ) from None


@main.command("generate")
@click.argument("stream", type=click.Choice([s.value for s in Stream]))
@click.option("--seq", type=click.IntRange(min=1, max=2**63 - 1), required=True,
              help="Batch number (from 1).")
@config_option
@click.option("--mode", type=click.Choice([m.value for m in Mode]), default=None,
              help="Override the file's mode for this batch.")
@click.option("--size", type=click.IntRange(min=0, max=MAX_BATCH), default=None,
              help="Exact record count (duplicates included) instead of the mode's rule.")
@click.option("--at", "scheduled_at", default=None,
              help="When the batch is due (ISO-8601, UTC); its interval is the one that just "
                   "closed. Default: now, or derived from seq with a simulated clock.")
@click.option("--first-ordinal", type=click.IntRange(min=0), default=None,
              help="companies: ordinal of the first company (default: (seq-1) x max batch size).")
@click.option("--watermark", type=click.IntRange(min=0), default=None,
              help="events: companies 0..W-1 may appear (default: one company batch's worth).")
@click.option("--truth", "truth_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write the injected-defect truth here as JSON Lines.")
def generate_cmd(stream: str, seq: int, config_file: Path | None, mode: str | None,
                 size: int | None, scheduled_at: str | None, first_ordinal: int | None,
                 watermark: int | None, truth_file: Path | None) -> None:
    """Print batch SEQ of STREAM (companies | events) as JSON Lines on stdout."""
    settings = load_settings(config_file)
    active = Mode(mode or settings.mode)
    company_batch = settings.cadence(Stream.companies, active)
    per_batch = getattr(company_batch, "max_batch_size", 1)
    spec = build_spec(
        settings, stream, seq,
        scheduled_at=_iso(scheduled_at),
        first_ordinal=(seq - 1) * per_batch if first_ordinal is None else first_ordinal,
        watermark=per_batch if watermark is None else watermark,
        size=size, mode=active,
    )
    batch = generate(spec)
    # UTF-8 bytes whatever the terminal's encoding: the output's sha256 is part of the contract
    out = sys.stdout.buffer
    sys.stdout.flush()
    for line in batch.lines():
        out.write(line.encode("utf-8") + b"\n")
    out.flush()
    if batch.note:
        click.echo(f"emugen: {batch.note}", err=True)
    if truth_file is not None:
        with truth_file.open("w", encoding="utf-8") as fh:
            for t in batch.truth:
                fh.write(json.dumps({
                    "row_no": t.row_no, "defect": t.defect.value, "field": t.field,
                    "original": t.original, "injected": t.injected,
                    "expected_reason": t.expected_reason.value,
                }) + "\n")


@main.group("config")
def config_group() -> None:
    """Check a config file, or print its JSON Schema."""


@config_group.command("check")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
def config_check(path: Path | None) -> None:
    """Validate PATH (default: the active config); exit 0 when valid, 2 with the problems."""
    file = config_path(path)
    settings = load_settings(path, env=False)
    # A forgotten seed still gives reproducible data, but not the data the user may think of.
    seed = (f"seed {settings.seed}" if "seed" in settings.model_fields_set
            else f"seed {settings.seed} (the default: the file sets no seed)")
    click.echo(
        f"{file}: valid (mode {settings.mode.value}, {seed}, "
        f"companies every {settings.interval(Stream.companies).total_seconds():g} s, "
        f"events every {settings.interval(Stream.events).total_seconds():g} s, "
        f"fingerprint {settings.fingerprint()})"
    )


@config_group.command("schema")
def config_schema() -> None:
    """Print the JSON Schema of the config file (point your editor's YAML plugin at it)."""
    click.echo(json.dumps(Settings.model_json_schema(mode="validation"), indent=2))


def _store_settings(config_file: Path | None) -> Settings:
    """Settings for commands that only read or control the store: with an invalid file they
    run on the store's last applied config, and say so (the fleet does the same)."""
    from emugen.applied import standing

    found = standing(config_file)
    warning = found.warning()
    if warning:
        click.echo(f"emugen: {warning}", err=True)
    return found.settings


def _engine(settings: Settings):  # noqa: ANN202
    from emugen.db.session import engine_for, init_db

    engine = engine_for(settings.database_url)
    init_db(engine)
    return engine


@main.group("db")
def db_group() -> None:
    """Database housekeeping."""


@db_group.command("init")
@config_option
def db_init(config_file: Path | None) -> None:
    """Create the tables (safe to run again)."""
    settings = load_settings(config_file)
    _engine(settings)
    click.echo(f"database ready: {redact_url(settings.database_url)}")


@main.group("pipeline")
def pipeline_group() -> None:
    """Run batches through bronze -> silver -> gold in this process (no broker)."""


@pipeline_group.command("run")
@click.option("--batches", type=click.IntRange(min=1), default=1, show_default=True,
              help="Batches of each stream.")
@click.option("--stream", type=click.Choice([s.value for s in Stream]), default=None,
              help="Only this stream (default: companies then events, each round).")
@click.option("--size", type=click.IntRange(min=0, max=MAX_BATCH), default=None,
              help="Exact record count per batch instead of the mode's rule.")
@config_option
def pipeline_run(batches: int, stream: str | None, size: int | None,
                 config_file: Path | None) -> None:
    """Land, refine and aggregate N batches of each stream, then print a summary."""
    from emugen.db.session import read_session
    from emugen.pipeline.reconcile import reconcile
    from emugen.pipeline.runner import STREAM_ORDER, run_pipeline

    settings = load_settings(config_file)
    engine = _engine(settings)
    streams = (Stream(stream),) if stream else STREAM_ORDER
    done = run_pipeline(engine, settings, batches, streams, size=size)
    for p in done:
        click.echo(f"{p.landed.batch_id}  records {p.landed.record_count:>7}  valid {p.valid:>7}"
                   f"  quarantined {p.quarantined:>6}  {p.seconds * 1000:8.1f} ms")
    with read_session(engine) as session:
        r = reconcile(session)
    click.echo(f"{len(done)} batches, {sum(p.landed.record_count for p in done)} records; "
               f"reconciliation: injected {r.injected}, caught {r.caught} "
               f"({r.caught_pct:.1f} %), missed {r.missed}, "
               f"false alarms {sum(r.false_alarms.values())}")


@main.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--latest", type=click.IntRange(min=0), default=10, show_default=True)
@config_option
def status_cmd(as_json: bool, latest: int, config_file: Path | None) -> None:
    """Counts per layer, quarantine by reason, reconciliation, the latest batches."""
    from emugen.db.outage import client_for, refusals, store_state
    from emugen.db.session import read_session
    from emugen.pipeline.status import format_status, status

    settings = _store_settings(config_file)
    with refusals("read the status", settings.database_url):
        engine = _engine(settings)
        with read_session(engine) as session:
            report = status(session, latest, store_state(engine, client_for(settings.broker_url)))
    click.echo(json.dumps(report, indent=2) if as_json else format_status(report))


@main.command("replay")
@click.argument("batch_id")
@config_option
def replay_cmd(batch_id: str, config_file: Path | None) -> None:
    """Regenerate BATCH_ID from its stored spec; exit 0 if bronze is identical, 1 if not."""
    from emugen.db.session import read_session
    from emugen.pipeline.replay import replay

    settings = load_settings(config_file)
    with read_session(_engine(settings)) as session:
        report = replay(session, batch_id)
    click.echo(report.summary())
    if not report.identical:
        sys.exit(1)


# -- fleet control: state lives in the database, so every process (beat, workers) sees it ----


@main.command("pause")
@config_option
def pause_cmd(config_file: Path | None) -> None:
    """Stop new batches (beat records each tick as skipped); in-flight ones finish."""
    click.echo("paused" if _set_paused(config_file, True) else "already paused")


@main.command("resume")
@config_option
def resume_cmd(config_file: Path | None) -> None:
    """Start generating again; seqs continue where they stopped."""
    click.echo("resumed" if _set_paused(config_file, False) else "already running")


def _set_paused(config_file: Path | None, paused: bool) -> bool:
    from emugen.control import set_paused
    from emugen.db.outage import refusals
    from emugen.db.session import write_session

    settings = _store_settings(config_file)
    with refusals("pause the fleet" if paused else "resume the fleet", settings.database_url), \
            write_session(_engine(settings)) as session:
        return set_paused(session, paused)


@main.command("clean")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@config_option
def clean_cmd(yes: bool, config_file: Path | None) -> None:
    """Wipe every layer, the truth and the counters (only while paused)."""
    from emugen.control import clean, require_paused
    from emugen.db.session import read_session, write_session

    settings = _store_settings(config_file)
    engine = _engine(settings)
    with read_session(engine) as session:
        require_paused(session)  # before asking: a running fleet is never offered a wipe
    if not yes:
        click.confirm(f"wipe every batch and layer in {redact_url(settings.database_url)}?",
                      abort=True)
    with write_session(engine) as session:
        cleaned = clean(session, settings.landing)
    purged = _purge_queues(settings)
    click.echo(f"{cleaned}{purged}")


def _purge_queues(settings: Settings) -> str:
    """Drop queued messages for the wiped batches; a broker that is down is not an error."""
    try:
        from kombu import Connection

        from emugen.backpressure import purge_queues

        with Connection(settings.broker_url, connect_timeout=2) as connection:
            connection.ensure_connection(max_retries=1)
            count = purge_queues(connection.default_channel.client)
        return f", {count:,} queued messages"
    except Exception as exc:  # noqa: BLE001 - the wipe itself already succeeded
        # kombu's messages can quote the URL it was given, password included
        text = str(exc).replace(settings.broker_url, redact_url(settings.broker_url))
        return f" (broker queues not purged from {redact_url(settings.broker_url)}: {text})"


@main.command("mode")
@click.argument("mode", type=click.Choice([m.value for m in Mode]))
@config_option
def mode_cmd(mode: str, config_file: Path | None) -> None:
    """Switch the config file to MODE (atomic rewrite; beat applies it within a second)."""
    from emugen.reload import set_mode

    before, after = set_mode(mode, config_file)
    path = config_path(config_file)
    if before is after:
        click.echo(f"{path}: already {after.value}")
    elif before is None:
        click.echo(f"{path}: mode line repaired -> {after.value}")
    else:
        click.echo(f"{path}: mode {before.value} -> {after.value}")


from emugen.bench.commands import suite_options  # noqa: E402 - click only; lazy inside


@main.group("bench", invoke_without_command=True)
@suite_options
@click.pass_context
def bench_group(ctx: click.Context, quick: bool, database: str | None, out: Path) -> None:
    """Benchmarks: each figure printed beside its baseline, measured in the same run.

    With no subcommand: `emugen bench all` (the options here are its options)."""
    if ctx.invoked_subcommand is None:
        from emugen.bench.commands import run_suite

        run_suite(quick, database, out)


@bench_group.command("generate")
@click.option("--events", type=click.IntRange(min=1), default=100_000, show_default=True)
@click.option("--repeat", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_generate_cmd(events: int, repeat: int, as_json: bool) -> None:
    """Generate one production driver batch in memory; compare with json.dumps and a naive loop."""
    from emugen.bench.generate import bench_generate, format_generate

    result = bench_generate(events=events, repeat=repeat)
    click.echo(json.dumps(result, indent=2) if as_json else format_generate(result))


@bench_group.command("pipeline")
@click.option("--events", type=click.IntRange(min=1), default=100_000, show_default=True)
@click.option("--database", default=None, metavar="URL",
              help="A SQLAlchemy URL (PostgreSQL runs in a private schema, dropped after); "
                   "default: a temporary SQLite file.")
@click.option("--repeat", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_pipeline_cmd(events: int, database: str | None, repeat: int, as_json: bool) -> None:
    """One production driver batch generate -> bronze -> silver -> gold, vs the SQLite floor."""
    from emugen.bench.pipeline import bench_pipeline, format_pipeline

    result = bench_pipeline(events=events, database=database, repeat=repeat)
    click.echo(json.dumps(result, indent=2) if as_json else format_pipeline(result))


@bench_group.command("fleet")
@click.option("--seconds", type=click.FloatRange(min=5), default=60, show_default=True)
@click.option("--interval", type=click.FloatRange(min=0.1), default=1.0, show_default=True)
@click.option("--size", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--database", default=None, metavar="URL",
              help="A PostgreSQL URL (private schema); default: a temporary SQLite file.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_fleet_cmd(seconds: float, interval: float, size: int, database: str | None,
                    as_json: bool) -> None:
    """Real redis-server, worker and beat: tick -> gold latency and dispatch error vs floor."""
    from emugen.bench.fleet import bench_fleet, format_fleet

    result = bench_fleet(seconds=seconds, interval=interval, size=size, database=database)
    click.echo(json.dumps(result, indent=2) if as_json else format_fleet(result))


from emugen.up import up_cmd  # noqa: E402 - cheap: up.py imports its heavy parts when run

main.add_command(up_cmd)


from emugen.bench.sse import sse_cmd as bench_sse_cmd  # noqa: E402 - click only; lazy inside

bench_group.add_command(bench_sse_cmd)

from emugen.bench.landing import landing_cmd as bench_landing_cmd  # noqa: E402 - lazy inside

bench_group.add_command(bench_landing_cmd)

from emugen.web.cli import web_cmd  # noqa: E402 - click only; uvicorn and FastAPI load when run

main.add_command(web_cmd)


from emugen.bench.commands import (  # noqa: E402 - click only; lazy inside
    all_cmd,
    cadence_cmd,
    chaos_cmd,
    soak_cmd,
)
from emugen.bench.commands import export_cmd as bench_export_cmd  # noqa: E402
from emugen.bench.commands import grade_cmd as bench_grade_cmd  # noqa: E402

bench_group.add_command(all_cmd)
bench_group.add_command(cadence_cmd)
main.add_command(soak_cmd)
main.add_command(chaos_cmd)
bench_group.add_command(bench_grade_cmd)
bench_group.add_command(bench_export_cmd)

from emugen.export.cli import export_cmd  # noqa: E402 - click only; pyarrow loads when run

main.add_command(export_cmd)
from emugen.grade.cli import grade_cmd  # noqa: E402 - click only; DuckDB loads when run

main.add_command(grade_cmd)

from emugen.sinks.cli import land_group  # noqa: E402 - click only; lazy inside

main.add_command(land_group)


if __name__ == "__main__":  # pragma: no cover
    main()
