"""Rendering a grade: the verdict and summary first (grade.summary), then each stream's
defects and arrival findings, then capped examples; JSON; and what `--follow` prints."""

from __future__ import annotations

import json

from emugen.grade.score import Grade, StreamScore
from emugen.grade.summary import pct, summary, verdict

MISS_WORDS = {
    "escaped": "escaped",
    "lost": "vanished",
    "false_alarm": "false alarm",
    "rejected_late": "rejected late data",
    "rejected_drift": "rejected new schema",
}


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count:,} {one if count == 1 else many or one + 's'}"


def _findings(name: str, s: StreamScore, grade: Grade) -> list[str]:
    """One line per thing the stream's consumer got wrong (or has not seen yet)."""
    lines = []
    defect_lost = s.lost - s.lost_clean
    if s.lost:
        lines.append(
            f"  vanished: {_n(s.lost, 'record')} neither kept nor rejected "
            f"({s.lost_clean:,} clean, {defect_lost:,} with a defect)"
        )
    if s.late_rejected:
        lines.append(f"  rejected late data: {_n(s.late_rejected, 'record')} (late data is valid)")
    if s.drift_rejected:
        lines.append(
            f"  rejected the new schema from batch {s.drift_from or '-'} "
            f"({s.drift_rejected:,} rows)"
        )
    copies = s.by_defect.get("redelivered")
    if copies and copies.escaped:
        originals = [
            e["original"]
            for e in grade.examples
            if e["stream"] == name and e["defect"] == "redelivered" and e["miss"] == "escaped"
        ]
        shown = f": copies of {', '.join(originals)}" if originals else ""
        lines.append(
            f"  kept {_n(copies.escaped, 'redelivered copy', 'redelivered copies')} "
            f"(escaped duplicates){shown}"
        )
    if s.held_batches:
        lines.append(
            f"  {_n(s.held_batches, 'delayed batch', 'delayed batches')} not released yet: "
            "pending, not lost"
        )
    if s.extra:
        lines.append(f"  extra rows: {s.extra:,} (lineage emugen never landed)")
    return lines


def _stream(name: str, s: StreamScore, grade: Grade) -> list[str]:
    lines = [
        "",
        f"{name}: {s.records:,} records, last batch reached {s.last_batch or '-'} of "
        f"{s.latest_batch or '-'} ({s.pending_batches} pending)",
        *_findings(name, s, grade),
    ]
    if s.by_defect:
        lines.append(
            f"  {'defect':<22}{'injected':>9}{'pending':>9}{'caught':>9}{'escaped':>9}"
            f"{'lost':>7}{'unmatched':>10}{'recall':>10}"
        )
    for defect, d in sorted(s.by_defect.items()):
        lines.append(
            f"  {defect:<22}{d.injected:>9}{d.pending:>9}{d.caught:>9}"
            f"{d.escaped:>9}{d.lost:>7}{d.unmatched:>10}{pct(d.recall):>10}"
        )
    lines.append(f"  clean kept {s.kept:,}, rows without id {s.no_id:,}")
    return lines


def _examples(grade: Grade, limit: int) -> list[str]:
    lines = []
    if grade.examples:
        lines += ["", f"first misses (up to {limit} per stream, miss and defect; --examples N):"]
        for e in grade.examples:
            what = e["defect"] or "clean record"
            where = f" field {e['field']}" if e["field"] else ""
            if e["defect"] == "redelivered":
                what, where = f"redelivered copy of {e['original']}", ""
            lines.append(
                f"  {MISS_WORDS.get(e['miss'], e['miss']):<21}{e['stream']:<10}"
                f"{e['batch_id']} row {e['row_no']}: {what}{where}"
            )
            lines.append(f"      {e['payload']}")
    if grade.extras:
        lines += ["", f"extra rows (up to {limit} per stream; no landed record has them):"]
        for e in grade.extras:
            lineage = (
                f"{e['batch_id']} row {e['row_no']}" if e["batch_id"] is not None else "no lineage"
            )
            lines.append(
                f"  {e['side']:<10}{e['stream']:<10}{lineage}, id {e['natural_id'] or '-'}"
            )
    return lines


def render(grade: Grade, failures: list[str], examples: int = 5) -> str:
    """Verdict, summary table, each stream's detail, then the capped examples."""
    lines = [verdict(failures), *summary(grade)]
    for name, s in sorted(grade.streams.items()):
        lines += _stream(name, s, grade)
    lines += _examples(grade, examples)
    return "\n".join(lines)


def as_json(grade: Grade, failures: list[str]) -> str:
    return json.dumps(
        {
            "verdict": verdict(failures),
            **grade.as_dict(),
            "passed": not failures,
            "failures": failures,
        },
        indent=2,
        default=str,
    )


def figures(grade: Grade) -> dict[str, str]:
    """Every figure `--follow` watches, flat, rendered: a change is a differing string."""
    out = {"total recall": pct(grade.recall), "total precision": pct(grade.precision)}
    for name, s in sorted(grade.streams.items()):
        out[f"{name} last batch reached"] = s.last_batch or "-"
        out[f"{name} pending batches"] = str(s.pending_batches)
        out[f"{name} false alarms"] = str(s.false_alarms)
        out[f"{name} clean lost"] = str(s.lost_clean)
        out[f"{name} extra rows"] = str(s.extra)
        out[f"{name} duplicated rows"] = str(s.duplicated)
        out[f"{name} held (delayed) batches"] = str(s.held_batches)
        out[f"{name} rejected late data"] = str(s.late_rejected)
        if s.drift_from is not None:
            out[f"{name} rejected the new schema from batch {s.drift_from}"] = str(s.drift_rejected)
        for defect, d in sorted(s.by_defect.items()):
            out[f"{name} {defect}"] = (
                f"caught {d.caught}/{d.settled}, escaped {d.escaped}, "
                f"lost {d.lost}, pending {d.pending}"
            )
    return out


def changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """One line per figure that appeared or changed since the last round."""
    return [
        f"{key}: {before[key]} -> {value}" if key in before else f"{key}: {value}"
        for key, value in after.items()
        if before.get(key) != value
    ]
