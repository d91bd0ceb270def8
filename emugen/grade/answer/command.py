"""`emugen grade --gold`: build the job from the options, run it (once or following), print."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import click

from emugen.grade.answer.policy import (
    parse_columns,
    parse_duration_ms,
    parse_policy,
    parse_tolerance,
)
from emugen.grade.answer.report import as_json, for_json, text, verdict
from emugen.grade.answer.run import GoldJob, run_gold
from emugen.grade.inputs import Source


@dataclass(frozen=True)
class AnswerOptions:
    """The command line's answer-grading options, as typed."""

    gold: str
    gold_query: str | None = None
    columns: str | None = None
    window: str | None = None
    policy: str = "exact"
    trigger: str = "any"
    tolerance: str | None = None
    arrivals: str | None = None
    max_wrong_cells: int = 0


def gold_job(
    options: AnswerOptions,
    stream: str | None,
    truth: str | None,
    kept: Source | None,
    rejected: Source | None,
) -> GoldJob:
    """The job, every declaration parsed (a bad one raises one line, exit 2)."""
    stream_value = stream if stream in ("companies", "events") else None
    return GoldJob(
        gold=Source("gold", options.gold, options.gold_query),
        columns=parse_columns(options.columns),
        stream=stream_value,
        width_ms=parse_duration_ms(options.window, "--window") if options.window else None,
        policy=parse_policy(options.policy, options.trigger),
        tolerance=parse_tolerance(options.tolerance),
        truth_path=truth,
        arrivals_path=options.arrivals,
        kept=kept,
        rejected=rejected,
    )


def render(result: dict, options: AnswerOptions, json_out: bool) -> str:
    return (
        as_json(result, options.max_wrong_cells)
        if json_out
        else text(result, options.max_wrong_cells)
    )


def follow(
    job: GoldJob, grade: Callable[[GoldJob], dict], every: float, rounds: int | None
) -> None:
    """Re-grade every `every` seconds; print a line when the verdict's counts change."""
    seen: tuple | None = None
    done = 0
    try:
        while rounds is None or done < rounds:
            result = grade(job)
            now = (result["cells"], result["wrong"], result["pending"])
            if now != seen:
                causes = ", ".join(f"{k} {v}" for k, v in result["by_cause"].items() if v)
                click.echo(
                    f"{time.strftime('%H:%M:%S')} gold: {result['wrong']} wrong of "
                    f"{result['cells']} cells, {result['pending']} pending"
                    + (f" ({causes})" if causes else "")
                )
                sys.stdout.flush()
            seen, done = now, done + 1
            if rounds is None or done < rounds:
                time.sleep(every)
    except KeyboardInterrupt:
        pass


def grade_answer(
    job: GoldJob, options: AnswerOptions, engine: object, json_out: bool
) -> tuple[str, bool, dict]:
    """Grade once: the report, whether it passes the gate, and its `gold` JSON object."""
    result = run_gold(job, engine)  # type: ignore[arg-type]
    return (
        render(result, options, json_out),
        verdict(result, options.max_wrong_cells) == "PASS",
        for_json(result, options.max_wrong_cells),
    )
