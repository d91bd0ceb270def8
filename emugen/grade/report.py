"""Rendering a grade: a terminal table, JSON, and the figure-by-figure changes `--follow` prints."""

from __future__ import annotations

import json

from emugen.grade.score import Grade


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f} %"


def table(grade: Grade) -> str:
    """Per stream: one line per defect type, then the stream's clean-record and stray figures."""
    lines = [f"match: {grade.match}   duplicates: {grade.duplicates}"]
    head = (
        f"  {'defect':<22}{'injected':>9}{'pending':>9}{'caught':>9}{'escaped':>9}"
        f"{'lost':>7}{'unmatched':>10}{'recall':>10}"
    )
    for name, s in sorted(grade.streams.items()):
        lines.append("")
        lines.append(
            f"{name}: {s.records:,} records, last batch reached "
            f"{s.last_batch or '-'} of {s.latest_batch or '-'} "
            f"({s.pending_batches} pending)"
        )
        lines.append(head)
        for defect, d in sorted(s.by_defect.items()):
            lines.append(
                f"  {defect:<22}{d.injected:>9}{d.pending:>9}{d.caught:>9}"
                f"{d.escaped:>9}{d.lost:>7}{d.unmatched:>10}{pct(d.recall):>10}"
            )
        lines.append(
            f"  clean kept {s.kept:,}, clean lost {s.lost_clean:,}, false alarms "
            f"{s.false_alarms:,}; extra rows {s.extra:,}, duplicated rows "
            f"{s.duplicated:,}, rows without id {s.no_id:,}"
        )
        lines.append(f"  recall {pct(s.recall)}   precision {pct(s.precision)}")
    lines.append("")
    lines.append(
        f"total: recall {pct(grade.recall)}   precision {pct(grade.precision)}   "
        f"clean lost {grade.lost_clean:,}"
    )
    if grade.examples:
        lines.append("")
        lines.append("first misses:")
        for e in grade.examples:
            what = e["defect"] or "clean record"
            where = f" field {e['field']}" if e["field"] else ""
            lines.append(
                f"  {e['miss']:<12}{e['stream']:<10}{e['batch_id']} row {e['row_no']}: "
                f"{what}{where}"
            )
            lines.append(f"      {e['payload']}")
    return "\n".join(lines)


def as_json(grade: Grade, failures: list[str]) -> str:
    return json.dumps(
        {**grade.as_dict(), "passed": not failures, "failures": failures}, indent=2, default=str
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
