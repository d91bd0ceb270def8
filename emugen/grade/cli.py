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


def _sources(kept: str, rejected: str | None, kept_query: str | None, rejected_query: str | None):  # noqa: ANN202 - imports stay lazy: click only at start-up
    """The kept and (optional) rejected inputs as grader sources."""
    from emugen.grade.inputs import Source

    return (
        Source("kept", kept, kept_query),
        Source("rejected", rejected, rejected_query) if rejected else None,
    )


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


def _answer(options, stream, truth, engine, filter_inputs, as_json, following):  # noqa: ANN001, ANN202, PLR0913
    """Grade the gold; alone, exit with its verdict; with --kept, whether it passed, its JSON
    and its report (the filter is graded after it, and the command exits 1 if either fails)."""
    from emugen.grade.answer.command import follow as follow_gold
    from emugen.grade.answer.command import gold_job, grade_answer
    from emugen.grade.answer.run import run_gold

    kept, kept_query, rejected, rejected_query = filter_inputs
    sources = _sources(kept, rejected, kept_query, rejected_query) if kept else (None, None)
    job = gold_job(options, stream, truth, *sources)
    if following[0]:
        follow_gold(job, lambda j: run_gold(j, engine), following[1], following[2])
        sys.exit(0)
    report, ok, gold_json = grade_answer(job, options, engine, as_json)
    if kept is None:
        click.echo(report)
        sys.exit(0 if ok else 1)
    # with --json, one document: the filter's, with its `gold` beside; else the gold's report
    # is printed after the overall verdict
    return ok, gold_json, report


def with_gold(filter_json: str, gold: dict) -> str:
    """The filter's JSON document with the answer's under `gold`."""
    import orjson

    document = orjson.loads(filter_json)
    document["gold"] = gold
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()


@click.command("grade")
@click.option(
    "--kept",
    default=None,
    metavar="PATH|URL",
    help="What the pipeline kept (its silver): a Parquet/JSON Lines/CSV path, folder "
    "or glob (symlinked folders are not followed; each file is read once), or a "
    "SQLAlchemy URL with --kept-query.",
)
@click.option(
    "--rejected",
    metavar="PATH|URL",
    default=None,
    help="What it rejected (quarantine, dead letters); same forms as --kept.",
)
@click.option("--kept-query", default=None, metavar="SQL", help="Query for a --kept URL.")
@click.option("--rejected-query", default=None, metavar="SQL", help="Query for a --rejected URL.")
@click.option(
    "--truth",
    default=None,
    metavar="PATH",
    help="A file from `emugen export truth` (default: the configured store). A "
    "truth holding fewer than half of the output's keys is refused (exit 2) as "
    "not from the run that produced the output.",
)
@click.option(
    "--match",
    type=click.Choice(["auto", "lineage", "id"]),
    default="auto",
    show_default=True,
    help="lineage: by (batch_id, row_no); id: by event_id/company_id and occurrence "
    "(a row with any event field is an event, else a company).",
)
@click.option(
    "--duplicates",
    type=click.Choice(DUPLICATES),
    default=None,
    help="How the pipeline handles duplicates: `dropped` counts a silently dropped "
    "copy as caught (default: the config's grade.duplicates, else quarantined).",
)
@click.option(
    "--stream",
    type=click.Choice(["companies", "events"]),
    default=None,
    help="Grade one stream only (the inputs hold only its records).",
)
@click.option(
    "--no-pending",
    is_flag=True,
    help="Count every batch, even those past the last one the pipeline reached.",
)
@click.option(
    "--examples",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="First N misses shown per stream, miss and defect.",
)
@click.option(
    "--min-recall",
    type=click.FloatRange(0, 1),
    default=1.0,
    show_default=True,
    help="Exit 1 below this recall.",
)
@click.option(
    "--min-precision",
    type=click.FloatRange(0, 1),
    default=1.0,
    show_default=True,
    help="Exit 1 below this precision.",
)
@click.option(
    "--max-lost",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Exit 1 when more clean records than this were neither kept nor rejected.",
)
@click.option(
    "--max-extra",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Exit 1 when more output rows than this match no record emugen landed (extra rows: "
    "lineage or ids it never wrote).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the grade as JSON.")
@click.option(
    "--follow",
    is_flag=True,
    help="Re-grade every --every seconds, printing only the figures that changed "
    "(and one line for a round whose input is missing).",
)
@click.option(
    "--every",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    help="With --follow: seconds between two grades.",
)
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    default=None,
    help="With --follow: stop after N rounds (default: until Ctrl-C).",
)
@click.option(
    "--gold",
    default=None,
    metavar="PATH|URL",
    help="The pipeline's gold (per company or per region per window): a Parquet/JSON "
    "Lines/CSV file or folder (hive partitions too), or a URL with --gold-query.",
)
@click.option("--gold-query", default=None, metavar="SQL", help="Query for a --gold URL.")
@click.option(
    "--columns",
    default=None,
    metavar="TARGET=YOURS,...",
    help="Map gold columns, e.g. window_start=ws,company_id=cid,events=n "
    "(default: `emugen export gold`'s names).",
)
@click.option(
    "--window",
    default=None,
    metavar="DURATION",
    help="Window length, e.g. 1min or 1h (default: the gold's window_seconds, else 60s).",
)
@click.option(
    "--policy",
    default="exact",
    show_default=True,
    metavar="exact|watermark=D|lookback=N",
    help="The pipeline's declared lateness policy.",
)
@click.option(
    "--trigger",
    type=click.Choice(["per-batch", "any"]),
    default="any",
    show_default=True,
    help="per-batch: one landed file per micro-batch in release order (watermark "
    "exact); any: a [lo, hi] band.",
)
@click.option(
    "--tolerance",
    default=None,
    metavar="abs=K,rel=R",
    help="Accept |got - expected| <= max(K, R * expected).",
)
@click.option(
    "--arrivals",
    default=None,
    metavar="PATH",
    help="A file from `emugen export arrivals` (default: the store's, with the store's "
    "truth): late, redelivered, delayed and drifted records, for the filter and the gold.",
)
@click.option(
    "--max-wrong-cells",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Exit 1 when more gold cells are wrong.",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Config file (the store, and the grade: section).",
)
def grade_cmd(  # noqa: PLR0913 - the parameters ARE the command's options
    kept: str,
    rejected: str | None,
    kept_query: str | None,
    rejected_query: str | None,
    truth: str | None,
    match: str,
    duplicates: str | None,
    stream: str | None,
    no_pending: bool,
    examples: int,
    min_recall: float,
    min_precision: float,
    max_lost: int,
    max_extra: int,
    as_json: bool,
    follow: bool,
    every: float,
    rounds: int | None,
    gold: str | None,
    gold_query: str | None,
    columns: str | None,
    window: str | None,
    policy: str,
    trigger: str,
    tolerance: str | None,
    arrivals: str | None,
    max_wrong_cells: int,
    config_file: Path | None,
) -> None:
    """Score a pipeline's kept and rejected records against the injected truth.

    With --gold, grade its answer too (or alone): every gold cell against the gold its
    declared --policy should produce, each wrong cell explained by record ids.

    The report leads with the verdict (PASS, or FAIL naming each failing gate), then one
    summary row per stream, then each stream's defects and arrival findings (late data
    rejected, the new schema rejected, redelivered copies kept, delayed batches not released
    yet: pending), then at most --examples N examples of each kind.

    Exit 0 when recall and precision reach their minimums, no more than --max-lost clean
    records were lost, no more than --max-extra rows match no landed record (and no more than
    --max-wrong-cells gold cells are wrong), 1 when not, 2 on bad input.

    \b
    Examples:
      emugen grade --kept 'out/silver_*.parquet' --rejected out/quarantine.parquet
      emugen grade --gold out/gold_company_window.parquet --policy watermark=10s
    """
    from emugen.grade.grader import Job, run
    from emugen.grade.report import as_json as render_json
    from emugen.grade.report import render
    from emugen.settings import config_path, load_settings

    # a truth file makes the store unnecessary: a missing default config is then no error
    settings = (
        load_settings(config_file)
        if truth is None or config_file or config_path().exists()
        else None
    )
    target = settings.grade if settings else None
    dup_policy = duplicates or (target.duplicates if target else "quarantined")
    if kept is None and gold is None:
        from emugen.errors import GradeInputError

        raise GradeInputError(
            "grade what? give --kept PATH (the filter), --gold PATH (the answer), or both"
        )
    answer = None
    if gold is not None:
        from emugen.grade.answer.command import AnswerOptions

        answer = AnswerOptions(
            gold, gold_query, columns, window, policy, trigger, tolerance, arrivals, max_wrong_cells
        )
    engine = None
    if truth is None:
        from emugen.db.session import engine_for, init_db

        assert settings is not None
        engine = engine_for(settings.database_url)
        init_db(engine)
    gold_ok, gold_json, gold_report = True, None, None
    if answer is not None:
        gold_ok, gold_json, gold_report = _answer(
            answer,
            stream,
            truth,
            engine,
            (kept, kept_query, rejected, rejected_query),
            as_json,
            (follow, every, rounds),
        )
    assert kept is not None
    kept_source, rejected_source = _sources(kept, rejected, kept_query, rejected_query)
    job = Job(
        kept=kept_source,
        rejected=rejected_source,
        truth_path=truth,
        match=match,
        duplicates=dup_policy,
        stream=stream,
        pending=not no_pending,
        examples=examples,
        arrivals=arrivals,
    )
    if follow:
        _follow(job, engine, every, rounds)
        return
    grade = run(job, engine)
    failures = grade.gate(min_recall, min_precision, max_lost, max_extra)
    if as_json:
        click.echo(
            render_json(grade, failures)
            if gold_json is None
            else with_gold(render_json(grade, failures), gold_json)
        )
    elif gold_report is None:
        click.echo(render(grade, failures, examples))
    else:
        click.echo(overall(failures, gold_ok))
        click.echo(gold_report)
        click.echo("")
        click.echo(render(grade, failures, examples))
    sys.exit(1 if failures or not gold_ok else 0)


def overall(failures: list[str], gold_ok: bool) -> str:
    """The first line when the filter and the gold are graded together."""
    if not failures and gold_ok:
        return "PASS: filter and gold"
    failed = (["filter"] if failures else []) + ([] if gold_ok else ["gold"])
    return f"FAIL: {' and '.join(failed)} (each report below leads with its own verdict)"
