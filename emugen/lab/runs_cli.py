"""Click commands of the lab's long runs: `emugen lab soak` and `emugen lab chaos`.

Only click is imported here; each command imports its machinery when it runs.
"""

from __future__ import annotations

import sys
from contextlib import suppress
from pathlib import Path
from typing import Any

import click


class Duration(click.ParamType):
    """Seconds, a short form (90s, 60m, 1h) or ISO-8601 (PT1H), as in the config file."""

    name = "duration"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        from pydantic import TypeAdapter, ValidationError

        from emugen.settings import Interval

        with suppress(TypeError, ValueError):
            value = float(value)  # "0.25" is seconds too
        try:
            return TypeAdapter(Interval).validate_python(value).total_seconds()
        except ValidationError as exc:
            self.fail(exc.errors()[0]["msg"].removeprefix("Value error, "), param, ctx)


DURATION = Duration()


# what a soak or chaos run leaves in its --out folder: a folder holding one is an earlier run's
LAB_FILES = ("verdict.json", "soak.csv", "latency.csv", "soak.svg", "soak.db")


def _own_folder(out: Path) -> None:
    """Refuse an --out folder that is a file, the kernel's, or holds files of another kind
    (the run writes emugen.yaml, logs and soak.db there and deletes an old soak.db)."""
    from emugen.files.target import check_folder

    check_folder(out, option="--out", owned=LAB_FILES)


@click.command("soak")
@click.option(
    "--duration",
    type=DURATION,
    required=True,
    help="How long the fleet generates: 180, 3m, 1h, PT1H.",
)
@click.option(
    "--interval",
    type=DURATION,
    default="1",
    show_default=True,
    help="Tick interval of both streams.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 16),
    default=1,
    show_default=True,
    help="Worker processes (each -c 1).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("var/soak"),
    show_default=True,
    help="Folder for soak.csv, soak.svg, verdict.json, the logs and soak.db.",
)
@click.option("--no-web", is_flag=True, help="Do not run the dashboard.")
@click.option(
    "--warmup",
    type=DURATION,
    default=None,
    help="Seconds left out before the first tenth's p95 [default: min(max(10 s, "
    "5 intervals), duration/10)].",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Judge the p95 trend at 1.2x without the sampling-noise allowance.",
)
@click.option(
    "--retain",
    type=DURATION,
    default=None,
    help="fleet.retain_batches_for of the run (e.g. 10m), so retention prunes "
    "during it [default: off].",
)
@click.option(
    "--prune-interval",
    type=DURATION,
    default="60",
    show_default=True,
    help="fleet.prune_interval when --retain is given.",
)
def soak_cmd(**opts: Any) -> None:
    """Run the real fleet, sample RSS/queues/latency/reconciliation; exit 0 on PASS, 1 on FAIL.

    \b
    Example:
      emugen lab soak --duration 5m --interval 0.5
    """
    from emugen.lab.soak import SoakOptions, run_soak

    _own_folder(opts["out"])
    retain, every = opts["retain"], opts["prune_interval"]
    fleet = {} if retain is None else {"retain_batches_for": retain, "prune_interval": every}
    options = SoakOptions(
        duration=opts["duration"],
        interval=opts["interval"],
        workers=opts["workers"],
        out=opts["out"],
        web=not opts["no_web"],
        warmup=opts["warmup"],
        strict=opts["strict"],
        fleet=fleet,
    )
    click.echo(
        f"soak: {options.duration:g} s at {options.interval:g} s with {options.workers} "
        f"worker(s), sampling every {options.sample_every:g} s, warm-up "
        f"{options.warmup_s:g} s"
        + (", strict" if options.strict else "")
        + (f", retention {retain:g} s pruned every {every:g} s" if retain else ", retention off")
        + f"; output in {options.out}",
        err=True,
    )
    result = run_soak(options, progress=lambda line: click.echo(line, err=True))
    click.echo(result.report())
    sys.exit(0 if result.passed else 1)


@click.command("chaos")
@click.option(
    "--duration",
    type=DURATION,
    default="120",
    show_default=True,
    help="How long the fleet generates: 120, 2m, PT2M.",
)
@click.option(
    "--interval",
    type=DURATION,
    default="0.5",
    show_default=True,
    help="Tick interval of both streams.",
)
@click.option(
    "--workers",
    type=click.IntRange(2, 16),
    default=2,
    show_default=True,
    help="Worker processes (each -c 1).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("var/chaos"),
    show_default=True,
    help="Folder for the verdict, the samples, the logs and the store.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Seeds the kill plan.")
@click.option(
    "--lock-seconds",
    type=click.FloatRange(0.5, 25),
    default=5.0,
    show_default=True,
    help="How long the SQLite write lock is held (busy timeout is 30 s).",
)
@click.option(
    "--kill-every",
    type=click.FloatRange(min=3),
    default=10.0,
    show_default=True,
    help="Mean seconds between worker kills.",
)
def chaos_cmd(
    duration: float,
    interval: float,
    workers: int,
    out: Path,
    seed: int,
    lock_seconds: float,
    kill_every: float,
) -> None:
    """Soak while killing workers, restarting Redis and locking SQLite; exit 0 on PASS.

    \b
    Example:
      emugen lab chaos --duration 60
    """
    from emugen.lab.chaos import Faults, run_chaos

    _own_folder(out)
    click.echo(
        f"chaos: {duration:g} s at {interval:g} s with {workers} workers; output in {out}", err=True
    )
    result = run_chaos(
        duration,
        out,
        interval=interval,
        workers=workers,
        faults=Faults(seed=seed, lock_s=lock_seconds, kill_every=kill_every),
        progress=lambda line: click.echo(line, err=True),
    )
    click.echo(result.report())
    sys.exit(0 if result.passed else 1)
