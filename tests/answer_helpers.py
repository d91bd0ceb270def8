"""Small hand-made landings for answer grading: a truth file, an arrivals file and a
consumer's gold file, written from event times in seconds, one list per landed file."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from emugen.grade.answer.policy import Policy, Tolerance, parse_policy
from emugen.grade.answer.run import GoldJob, run_gold
from emugen.grade.inputs import Source


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class Landing:
    """Records by landed file, in batch-id order; `delayed` makes a batch wait for another."""

    rows: list[dict] = field(default_factory=list)
    ledger: list[dict] = field(default_factory=list)

    def event(
        self,
        seq: int,
        at: float,
        *,
        driver: str = "d1",
        event_id: str | None = None,
        defect: str | None = None,
        copy_of: tuple[int, int] | None = None,
    ) -> dict:
        """One start_driving event of company c1 in file `seq`."""
        batch = f"events-{seq:09d}"
        row_no = sum(1 for r in self.rows if r["batch_id"] == batch)
        eid = event_id or f"e{seq}-{row_no}"
        payload = {
            "event_id": eid,
            "company_id": "c1",
            "driver_id": driver,
            "event_type": "start_driving",
            "event_timestamp": iso(at),
        }
        row = {
            "batch_id": batch,
            "stream": "events",
            "row_no": row_no,
            "natural_id": eid,
            "defect": defect,
            "payload": json.dumps(payload),
        }
        self.rows.append(row)
        if copy_of is not None:
            self.ledger.append(
                {
                    "batch_id": batch,
                    "row_no": row_no,
                    "condition": "redelivered",
                    "original_batch_id": f"events-{copy_of[0]:09d}",
                    "original_row_no": copy_of[1],
                }
            )
        return row

    def files(self, *times: list[float]) -> Landing:
        """One landed file per list of event times (seconds), batch seq 1, 2, ..."""
        for seq, batch in enumerate(times, start=1):
            for at in batch:
                self.event(seq, at)
        return self

    def delay(self, seq: int, until: int) -> None:
        self.ledger.append(
            {
                "batch_id": f"events-{seq:09d}",
                "row_no": None,
                "condition": "delayed",
                "released_after_batch_id": f"events-{until:09d}",
            }
        )

    def late(self, seq: int, row_no: int) -> None:
        self.ledger.append({"batch_id": f"events-{seq:09d}", "row_no": row_no, "condition": "late"})

    def company(self, company_id: str, region: str, at: float, seq: int = 1) -> None:
        batch = f"companies-{seq:09d}"
        row_no = sum(1 for r in self.rows if r["batch_id"] == batch)
        payload = {"company_id": company_id, "region": region, "onboarded_at": iso(at)}
        self.rows.append(
            {
                "batch_id": batch,
                "stream": "companies",
                "row_no": row_no,
                "natural_id": company_id,
                "defect": None,
                "payload": json.dumps(payload),
            }
        )

    def write(self, folder: Path) -> tuple[str, str]:
        truth, arrivals = folder / "truth.jsonl", folder / "arrivals.jsonl"
        truth.write_text("".join(json.dumps(r) + "\n" for r in self.rows))
        ledger = self.ledger or [{"batch_id": "none", "row_no": 0, "condition": "none"}]
        arrivals.write_text("".join(json.dumps(r) + "\n" for r in ledger))
        return str(truth), str(arrivals)


COMPANY_ROW = (
    "window_start",
    "company_id",
    "events",
    "start_driving",
    "stopped_driving",
    "delivered",
    "active_drivers",
)


def gold_file(folder: Path, rows: list[tuple], name: str = "gold.jsonl") -> str:
    """A consumer's per-company gold: (window start s, company, events[, start, stop, deliv,
    drivers]); short rows get start_driving = events, the rest 0 and one driver."""
    path = folder / name
    lines = []
    for row in rows:
        full = row if len(row) == 7 else (*row, row[2], 0, 0, 1 if row[2] else 0)
        item = dict(zip(COMPANY_ROW, full, strict=True))
        item["window_start"] = iso(item["window_start"])
        lines.append(json.dumps(item))
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


def grade(
    folder: Path,
    landing: Landing,
    rows: list[tuple],
    policy: str = "exact",
    trigger: str = "any",
    window_s: int = 30,
    tolerance: Tolerance | None = None,
) -> dict:
    truth, arrivals = landing.write(folder)
    job = GoldJob(
        gold=Source("gold", gold_file(folder, rows)),
        width_ms=window_s * 1000,
        policy=parse_policy(policy, trigger) if policy else Policy(),
        tolerance=tolerance or Tolerance(),
        truth_path=truth,
        arrivals_path=arrivals,
    )
    return run_gold(job)


def causes(cell: dict) -> dict[str, list[tuple]]:
    """cause -> the (batch_id, row_no, event_id) of its examples."""
    return {
        c["cause"]: [(e["batch_id"], e["row_no"], e.get("event_id")) for e in c["examples"]]
        for c in cell["causes"]
    }


def cell_of(result: dict, window_s: int, metric: str = "events", key: str = "c1") -> dict:
    return next(
        c
        for c in result["wrong_cells"]
        if c["window_start_ms"] == window_s * 1000 and c["metric"] == metric and c["key"] == key
    )
