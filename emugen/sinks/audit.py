"""The landing zone audited against the store: every data file and manifest checked, and the
batches whose files must be landed again.

A landed batch is right when its data file exists with the size and sha256 recorded at landing,
and its manifest holds exactly the bytes landing writes for it (the manifest is a pure function
of the batch and its file, so any edit, truncation or foreign content differs). Every problem is
reported as a line naming the batch, the path and what is wrong; nothing here raises for a
damaged or unreadable file, so one bad manifest never hides the next batch's problem.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Engine, select

from emugen.db.models import BatchRow, LandedFile
from emugen.db.session import read_session
from emugen.errors import LandingError
from emugen.settings import Landing
from emugen.sinks import filesystem
from emugen.sinks.lander import FACTS
from emugen.sinks.landing import BatchFacts, LandingFile, manifest_file
from emugen.sinks.release import not_held

# What the reaper audits per run: a slice of the landed batches, bounded by count and by the
# bytes it reads, so a zone of a million files costs each run the same (it cycles through).
AUDIT_BATCHES = 50
AUDIT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one batch's files."""

    batch_id: str
    what: str

    def __str__(self) -> str:
        return f"{self.batch_id}: {self.what}"


@dataclass
class Audit:
    """What an audit found: batches checked, every problem, bytes read."""

    checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    bytes_read: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def damaged(self) -> list[str]:
        """The batches with any problem, each once, in the order found."""
        return list(dict.fromkeys(p.batch_id for p in self.problems))


def check_data(zone: filesystem.Zone, landed: LandedFile) -> tuple[list[str], int]:
    """The data file's problems (missing, size, sha256) and the bytes read."""
    try:
        data = filesystem.read(zone, landed.path)
    except LandingError as exc:
        return [str(exc)], 0
    if data is None:
        return [f"{landed.path} is missing"], 0
    if len(data) != landed.bytes:
        change = "truncated" if len(data) < landed.bytes else "longer than landed"
        return [f"{landed.path} is {len(data)} bytes, landed as {landed.bytes} ({change})"], len(
            data
        )
    if hashlib.sha256(data).hexdigest() != landed.sha256:
        return [f"{landed.path} does not match its sha256 (changed in place)"], len(data)
    return [], len(data)


def expected_manifest(facts: BatchFacts, landed: LandedFile) -> bytes:
    """The manifest landing writes for this batch and the file it recorded."""
    data = LandingFile(landed.path, b"", landed.rows, landed.sha256, landed.bytes)
    return manifest_file(facts, [data], landed.format).data


def check_manifest(zone: filesystem.Zone, landed: LandedFile, facts: BatchFacts) -> list[str]:
    """The manifest's problems: missing, unreadable, not a manifest, or not what was landed."""
    name = f"manifest {landed.manifest_path}"
    try:
        raw = filesystem.read(zone, landed.manifest_path)
    except LandingError as exc:
        return [str(exc)]
    if raw is None:
        return [f"{name} is missing"]
    if raw == expected_manifest(facts, landed):
        return []
    why = _manifest_shape(raw, landed)
    return [f"{name} {why}"]


def _manifest_shape(raw: bytes, landed: LandedFile) -> str:
    """Why a manifest that differs from the landed one is wrong, in a few words."""
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return "is not UTF-8 text"
    except ValueError as exc:
        return f"is not JSON ({exc.__class__.__name__}: {exc})"
    if not isinstance(body, dict):
        return f"is a JSON {type(body).__name__}, not an object"
    files = body.get("files")
    if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
        return "has no list of files"
    listed = {f.get("path"): f.get("sha256") for f in files}
    if listed.get(landed.path) != landed.sha256:
        return f"does not list {landed.path} with its sha256"
    return "differs from the manifest landed for this batch"


def _rows(
    engine: Engine, after: str | None, limit: int | None
) -> Sequence[tuple[BatchFacts, LandedFile | None]]:
    """(facts, landed row or None) of every batch in bronze, by batch id, after `after`; a
    delayed batch still waiting for its release is not due yet, so it is left out."""
    query = (
        select(*FACTS, LandedFile)
        .outerjoin(LandedFile, LandedFile.batch_id == BatchRow.batch_id)
        .where(not_held(BatchRow.batch_id))
        .order_by(BatchRow.batch_id)
    )
    if after is not None:
        query = query.where(BatchRow.batch_id > after)
    if limit is not None:
        query = query.limit(limit)
    with read_session(engine) as session:
        rows = session.execute(query).all()
        session.expunge_all()
    # a row is the facts' columns then the landed file (typed per column: Any for the splat)
    return [(BatchFacts(*cast(Any, row[:-1])), row[-1]) for row in rows]


class _Zones(dict[str, filesystem.Zone]):
    """Zones opened once per root (a batch keeps the root it was landed under)."""

    def __init__(self, landing: Landing) -> None:
        super().__init__()
        self.options = landing.storage_options

    def __missing__(self, root: str) -> filesystem.Zone:
        zone = filesystem.open_zone(root, self.options)
        self[root] = zone
        return zone


def audit(
    engine: Engine,
    landing: Landing,
    *,
    after: str | None = None,
    limit: int | None = None,
    byte_budget: int | None = None,
) -> tuple[Audit, str | None]:
    """Check the batches after `after` (all of them by default); the audit, and the last batch
    id checked (None when the end of the store was reached)."""
    result, zones, last = Audit(), _Zones(landing), None
    rows = _rows(engine, after, limit)
    for facts, landed in rows:
        result.checked += 1
        last = facts.batch_id
        if landed is None:
            result.problems.append(Problem(facts.batch_id, "not landed"))
            continue
        try:
            zone = zones[landed.root]
        except LandingError as exc:
            result.problems.append(Problem(facts.batch_id, str(exc)))
            continue
        found, read = check_data(zone, landed)
        found += check_manifest(zone, landed, facts)
        result.bytes_read += read
        result.problems.extend(Problem(facts.batch_id, what) for what in found)
        if byte_budget is not None and result.bytes_read >= byte_budget:
            return result, last
    reached_end = limit is None or len(rows) < limit
    return result, None if reached_end else last


def verify(engine: Engine, landing: Landing) -> Audit:
    """Every batch in bronze checked: its file and manifest exist and are what was landed."""
    return audit(engine, landing)[0]
