"""The `emugen` command line: `main`, and one module per command group registered on it.

Each area keeps its commands beside it (generate, config, db, pipeline, status and control here;
up, web, the lab, the landing zone, export and grade in their own `cli.py`). Every module here
imports click and the light settings only: heavy machinery loads inside the command that runs.

May import every package; nothing imports it but `emugen/__main__.py`.
"""

from __future__ import annotations

import click

from emugen.errors import EmugenError


class EmugenGroup(click.Group):
    """Turns every EmugenError into its message on stderr and its exit code, no traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except EmugenError as exc:
            click.echo(f"emugen: {exc}", err=True)
            ctx.exit(exc.exit_code)


def _hidden(command: click.Command) -> click.Command:
    """A copy of `command` that works under its old name but is not listed in `--help`."""
    import copy

    alias = copy.copy(command)
    alias.hidden = True
    return alias


@click.group(cls=EmugenGroup)
@click.version_option(package_name="emugen")
def main() -> None:
    """Seeded synthetic data flowing bronze -> silver -> gold on a Celery fleet."""


# Registered after `main` exists; none of these imports `emugen.cli` back.
from emugen.cli.backfill import backfill_cmd  # noqa: E402
from emugen.cli.config import config_group  # noqa: E402
from emugen.cli.control import clean_cmd, mode_cmd, pause_cmd, resume_cmd  # noqa: E402
from emugen.cli.db import db_group  # noqa: E402
from emugen.cli.generate import generate_cmd  # noqa: E402
from emugen.cli.init import init_cmd  # noqa: E402
from emugen.cli.pipeline import pipeline_group  # noqa: E402
from emugen.cli.status import replay_cmd, status_cmd  # noqa: E402
from emugen.cli.up import up_cmd  # noqa: E402
from emugen.export.cli import export_cmd  # noqa: E402 - pyarrow loads when run
from emugen.grade.cli import grade_cmd  # noqa: E402 - DuckDB loads when run
from emugen.lab.cli import bench_group  # noqa: E402
from emugen.lab.runs_cli import chaos_cmd, soak_cmd  # noqa: E402
from emugen.sinks.cli import land_group  # noqa: E402
from emugen.web.cli import web_cmd  # noqa: E402 - uvicorn and FastAPI load when run

for _command in (
    init_cmd,
    generate_cmd,
    config_group,
    db_group,
    pipeline_group,
    status_cmd,
    replay_cmd,
    pause_cmd,
    resume_cmd,
    clean_cmd,
    mode_cmd,
    up_cmd,
    web_cmd,
    export_cmd,
    grade_cmd,
    land_group,
    backfill_cmd,
):
    main.add_command(_command)


@main.group("lab")
def lab_group() -> None:
    """The proof tools, apart from the product: benchmarks, soaks and chaos runs.

    \b
    Example:
      emugen lab bench pipeline
    """


for _command in (bench_group, soak_cmd, chaos_cmd):
    lab_group.add_command(_command)
    # the names they had before the lab group: kept working, listed only under `emugen lab`
    main.add_command(_hidden(_command))

if __name__ == "__main__":  # pragma: no cover
    main()
