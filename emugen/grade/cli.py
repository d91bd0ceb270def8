"""`emugen grade`: score a pipeline that is not emugen's against the truth."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from emugen.grade.match import DUPLICATES

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from emugen.grade.grader import Job


def _sources(kept: str, rejected: str | None, kept_query: str | None,
             rejected_query: str | None):  # noqa: ANN202 - imports stay lazy: click only at start-up
    """The kept and (optional) rejected inputs as grader sources."""
    from emugen.grade.inputs import Source

    return (Source("kept", kept, kept_query),
            Source("rejected", rejected, rejected_query) if rejected else None)


def _follow(job: Job, engine: Engine | None, every: float, rounds: int | None) -> None:
    """Re-grade until Ctrl-C (or `rounds`): the figures that changed, or the one line saying
    which input is missing this round; the figures resume when it is back."""
    from emugen.errors import GradeInputMissing
    from emugen.grade.grader import run
    from emugen.grade.report import changes, figures

    seen: dict[str, str] = {}
    done = 0
    try:
        while rounds is None or done < rounds:
            try:
                now = figures(run(job, engine))
            except GradeInputMissing as exc:
                click.echo(f"{time.strftime('%H:%M:%S')} {exc}")
            else:
                for line in changes(seen, now):
                    click.echo(f"{time.strftime('%H:%M:%S')} {line}")
                seen = now
            sys.stdout.flush()
            done += 1
            if rounds is None or done < rounds:
                time.sleep(every)
    except KeyboardInterrupt:
        pass


@click.command("grade")
@click.option("--kept", required=True, metavar="PATH|URL",
              help="What the pipeline kept (its silver): a Parquet/JSON Lines/CSV path, folder "
                   "or glob (symlinked folders are not followed; each file is read once), or a "
                   "SQLAlchemy URL with --kept-query.")
@click.option("--rejected", metavar="PATH|URL", default=None,
              help="What it rejected (quarantine, dead letters); same forms as --kept.")
@click.option("--kept-query", default=None, metavar="SQL", help="Query for a --kept URL.")
@click.option("--rejected-query", default=None, metavar="SQL", help="Query for a --rejected URL.")
@click.option("--truth", default=None, metavar="PATH",
              help="A file from `emugen export truth` (default: the configured store). A "
                   "truth holding fewer than half of the output's keys is refused (exit 2) as "
                   "not from the run that produced the output.")
@click.option("--match", type=click.Choice(["auto", "lineage", "id"]), default="auto",
              show_default=True,
              help="lineage: by (batch_id, row_no); id: by event_id/company_id and occurrence "
                   "(a row with any event field is an event, else a company).")
@click.option("--duplicates", type=click.Choice(DUPLICATES), default=None,
              help="How the pipeline handles duplicates: `dropped` counts a silently dropped "
                   "copy as caught (default: the config's grade.duplicates, else quarantined).")
@click.option("--stream", type=click.Choice(["companies", "events"]), default=None,
              help="Grade one stream only (the inputs hold only its records).")
@click.option("--no-pending", is_flag=True,
              help="Count every batch, even those past the last one the pipeline reached.")
@click.option("--examples", type=click.IntRange(min=0), default=5, show_default=True,
              help="First N misses shown per stream, miss and defect.")
@click.option("--min-recall", type=click.FloatRange(0, 1), default=1.0, show_default=True,
              help="Exit 1 below this recall.")
@click.option("--min-precision", type=click.FloatRange(0, 1), default=1.0, show_default=True,
              help="Exit 1 below this precision.")
@click.option("--max-lost", type=click.IntRange(min=0), default=0, show_default=True,
              help="Exit 1 when more clean records than this were neither kept nor rejected.")
@click.option("--json", "as_json", is_flag=True, help="Print the grade as JSON.")
@click.option("--follow", is_flag=True,
              help="Re-grade every --every seconds, printing only the figures that changed "
                   "(and one line for a round whose input is missing).")
@click.option("--every", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              help="With --follow: seconds between two grades.")
@click.option("--rounds", type=click.IntRange(min=1), default=None,
              help="With --follow: stop after N rounds (default: until Ctrl-C).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Config file (the store, and the grade: section).")
def grade_cmd(  # noqa: PLR0913 - the parameters ARE the command's options
        kept: str, rejected: str | None, kept_query: str | None,
        rejected_query: str | None, truth: str | None, match: str,
        duplicates: str | None, stream: str | None, no_pending: bool, examples: int,
        min_recall: float, min_precision: float, max_lost: int, as_json: bool, follow: bool,
        every: float, rounds: int | None, config_file: Path | None) -> None:
    """Score a pipeline's kept and rejected records against the injected truth.

    Exit 0 when recall and precision reach their minimums and no more than --max-lost clean
    records were lost, 1 when not, 2 on bad input.

    \b
    Example:
      emugen grade --kept 'out/silver_*.parquet' --rejected out/quarantine.parquet
    """
    from emugen.grade.grader import Job, run
    from emugen.grade.report import as_json as render_json
    from emugen.grade.report import table
    from emugen.settings import config_path, load_settings

    # a truth file makes the store unnecessary: a missing default config is then no error
    settings = (load_settings(config_file)
                if truth is None or config_file or config_path().exists() else None)
    target = settings.grade if settings else None
    policy = duplicates or (target.duplicates if target else "quarantined")
    kept_source, rejected_source = _sources(kept, rejected, kept_query, rejected_query)
    job = Job(kept=kept_source, rejected=rejected_source, truth_path=truth, match=match,
              duplicates=policy, stream=stream, pending=not no_pending, examples=examples)
    engine = None
    if truth is None:
        from emugen.db.session import engine_for, init_db

        assert settings is not None
        engine = engine_for(settings.database_url)
        init_db(engine)
    if follow:
        _follow(job, engine, every, rounds)
        return
    grade = run(job, engine)
    failures = grade.gate(min_recall, min_precision, max_lost)
    if as_json:
        click.echo(render_json(grade, failures))
    else:
        click.echo(table(grade))
        click.echo("PASS" if not failures else "FAIL: " + "; ".join(failures))
    sys.exit(1 if failures else 0)
