"""A test-side referee: checks every generated row against the contract and the truth."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from emugen.contract import KEY_FIELD, Context, Reason, Rejection, check, parse
from emugen.generate import Batch
from emugen.generate.companies import company_traits
from emugen.generate.eligible import excluded_of
from emugen.vocabulary import Stream


@dataclass
class Verdict:
    clean_passed: int = 0
    caught: int = 0
    problems: Counter = field(default_factory=Counter)


def known_companies(batch: Batch) -> set[str]:
    spec = batch.spec
    ids = company_traits(spec.seed, np.arange(spec.watermark), spec.company_shape).company_ids
    excluded = set(excluded_of(spec).tolist())  # listed, or by reference (loaded)
    return {cid for k, cid in enumerate(ids) if k not in excluded}


def audit(batch: Batch, verdict: Verdict | None = None) -> Verdict:
    """Validate the batch's JSON lines as silver would; compare with the truth row by row."""
    verdict = verdict or Verdict()
    spec = batch.spec
    known = known_companies(batch) if spec.stream is Stream.events else None
    ctx = Context(spec.interval_start, spec.interval_end, known)
    truth = {t.row_no: t for t in batch.truth}
    key, seen = KEY_FIELD[spec.stream], set()
    for row_no, line in enumerate(batch.lines()):
        result = check(spec.stream, parse(line), ctx)
        if not isinstance(result, Rejection):
            if result[key] in seen:
                result = Rejection(Reason.duplicate, key, "seen before")
            else:
                seen.add(result[key])
        expected = truth.get(row_no)
        if expected is None:
            if isinstance(result, Rejection):
                verdict.problems[f"false alarm {result.reason}/{result.field}"] += 1
            else:
                verdict.clean_passed += 1
        elif not isinstance(result, Rejection):
            verdict.problems[f"missed {expected.defect}/{expected.field}"] += 1
        elif (result.reason, result.field) != (expected.expected_reason, expected.field):
            verdict.problems[
                f"{expected.defect}/{expected.field} caught as {result.reason}/{result.field}"
            ] += 1
        else:
            verdict.caught += 1
    return verdict


def ordinals_of(batch: Batch) -> np.ndarray:
    ids = company_traits(
        batch.spec.seed, np.arange(batch.spec.watermark), batch.spec.company_shape
    ).company_ids
    index = {cid: k for k, cid in enumerate(ids)}
    return np.array([index[r["company_id"]] for r in batch.records if r.get("company_id") in index])
