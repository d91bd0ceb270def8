"""`emugen generate`: one batch as JSON Lines on stdout, its truth on request."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from emugen.cli.options import config_option, iso
from emugen.generate import build_spec, generate
from emugen.settings import MAX_BATCH, load_settings
from emugen.vocabulary import Mode, Stream

if TYPE_CHECKING:
    from emugen.files.target import Target


@click.command("generate")
@click.argument("stream", type=click.Choice([s.value for s in Stream]))
@click.option(
    "--seq", type=click.IntRange(min=1, max=2**63 - 1), required=True, help="Batch number (from 1)."
)
@config_option
@click.option(
    "--mode",
    type=click.Choice([m.value for m in Mode]),
    default=None,
    help="Override the file's mode for this batch.",
)
@click.option(
    "--size",
    type=click.IntRange(min=0, max=MAX_BATCH),
    default=None,
    help="Exact record count (duplicates included) instead of the mode's rule.",
)
@click.option(
    "--at",
    "scheduled_at",
    default=None,
    help="When the batch is due (ISO-8601, UTC); its interval is the one that just "
    "closed. Default: now, or derived from seq with a simulated clock.",
)
@click.option(
    "--first-ordinal",
    type=click.IntRange(min=0),
    default=None,
    help="companies: ordinal of the first company (default: (seq-1) x max batch size).",
)
@click.option(
    "--watermark",
    type=click.IntRange(min=0),
    default=None,
    help="events: companies 0..W-1 may appear (default: one company batch's worth).",
)
@click.option(
    "--truth",
    "truth_file",
    default=None,
    metavar="FILE",
    help="Write the injected-defect truth here as JSON Lines (a new file; checked "
    "before the batch is printed).",
)
@click.option("--force", is_flag=True, help="Replace --truth when it exists.")
def generate_cmd(  # noqa: PLR0913 - the parameters ARE the command's options
    stream: str,
    seq: int,
    config_file: Path | None,
    mode: str | None,
    size: int | None,
    scheduled_at: str | None,
    first_ordinal: int | None,
    watermark: int | None,
    truth_file: str | None,
    force: bool,
) -> None:
    """Print batch SEQ of STREAM (companies | events) as JSON Lines on stdout.

    \b
    Example:
      emugen generate events --seq 3 --truth truth.jsonl > events-3.jsonl
    """
    settings = load_settings(config_file)
    truth = None if truth_file is None else _truth_target(truth_file, force)
    active = Mode(mode or settings.mode)
    company_batch = settings.cadence(Stream.companies, active)
    per_batch = getattr(company_batch, "max_batch_size", 1)
    spec = build_spec(
        settings,
        stream,
        seq,
        scheduled_at=iso(scheduled_at),
        first_ordinal=(seq - 1) * per_batch if first_ordinal is None else first_ordinal,
        watermark=per_batch if watermark is None else watermark,
        size=size,
        mode=active,
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
    if truth is not None:
        from emugen.files.write import write_output

        write_output(
            truth,
            "".join(
                json.dumps(
                    {
                        "row_no": t.row_no,
                        "defect": t.defect.value,
                        "field": t.field,
                        "original": t.original,
                        "injected": t.injected,
                        "expected_reason": t.expected_reason.value,
                    }
                )
                + "\n"
                for t in batch.truth
            ).encode("utf-8"),
        )


def _truth_target(value: str, force: bool) -> Target:
    """--truth's file, checked before anything is printed: stdout carries the batch itself."""
    from emugen.files.target import check_output

    target = check_output(value, option="--truth", force=force)
    if target.is_stdout:
        raise target.refuse("stdout carries the batch; give a file name for the truth")
    return target
