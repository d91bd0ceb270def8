"""The one error tree: every failure a user can cause says what was wrong and how to fix it.

    EmugenError                  exit 1 unless a class says otherwise
    ├── ConfigError              exit 2  a config file or value is invalid
    ├── InitRefused              exit 2  `emugen init` would overwrite a config
    ├── MissingExtra             exit 2  an optional dependency (an extra) is not installed
    ├── YamlShapeError                   internal: parse_yaml turns it into a ConfigError
    ├── SpecError                exit 2  a batch spec cannot be generated as asked
    │   └── ExclusionsUnknown    exit 2  a spec's excluded companies are not loaded here
    ├── ExportError              exit 2  `emugen export` asked for something unknown
    ├── GradeInputError          exit 2  a grading input is missing or unreadable
    │   └── GradeInputMissing    exit 2  an input vanished (`grade --follow` retries)
    ├── OutputRefused            exit 2  a path given to write to may not or cannot be written
    ├── LandingError                     a batch cannot be written to the landing zone
    ├── DatabaseError                    the database URL is unusable or unreachable
    ├── StoreRefused             exit 2  the database refuses a write or a read
    ├── StoreFileGone            exit 2  the SQLite file was deleted under a process
    ├── StoreUnknown             exit 2  an invalid config file and no store recorded by a fleet
    ├── BatchNotFound                    no batch has that id
    │   └── BatchPruned                  retention deleted that batch
    ├── PageOutOfRange                   a page number past the last page of a listing
    ├── StageOrderError                  a stage ran before the one it builds on
    ├── NotPaused                exit 3  `clean` while the fleet is generating
    ├── BrokerError                      no usable Redis at the broker URL
    ├── BeatAlreadyRunning       exit 3  another beat holds the lease
    ├── FleetError                       a process `emugen up` needs died or did not start
    ├── PortTaken                exit 2  a port `emugen up` would serve on is in use
    ├── FleetStartError                  a process of the lab's private fleet did not start
    ├── FlowerLoginMissing       exit 2  Flower would start without a login
    ├── FlowerAuthError          exit 2  FLOWER_BASIC_AUTH is malformed
    ├── InsecureBinding          exit 2  listening beyond loopback without a control token
    ├── BackfillInputError       exit 2  `emugen backfill` was given a range it cannot run
    ├── BackfillConflict         exit 2  the store holds other batches at a backfill's seqs
    ├── BackfillNotReady                 internal: an event tick's companies are not in silver
    ├── BackfillIncomplete               a backfill ended with ticks not in gold
    ├── BackfillRefused          exit 2  a backfill would not fit, or needs --yes
    └── SeqContention                    internal: racing generators took every seq tried

The CLI prints the message of any EmugenError on one line and exits with its `exit_code`;
the web API answers 4xx with the message as JSON. No other module defines an exception
(tests/test_errors.py checks both).
"""

from __future__ import annotations

import importlib
from types import ModuleType


class EmugenError(Exception):
    """Raised when anything emugen checks on purpose fails; the base of the tree, whose message
    is meant for the user and names the fix."""

    exit_code = 1


class ConfigError(EmugenError):
    """Raised when a configuration file or value is invalid; `problems` holds one line per bad
    field (the dotted field, the value, what is allowed)."""

    exit_code = 2

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"invalid configuration in {source} ({len(problems)} problem"
            f"{'s' if len(problems) != 1 else ''}):\n{lines}"
        )


class InitRefused(EmugenError):
    """Raised when `emugen init` would overwrite a config file that is already there (without
    --force) or cannot write one where it was asked to."""

    exit_code = 2


class MissingExtra(EmugenError):
    """Raised when a feature needs an optional dependency that is not installed; the message
    names the `pip install 'emugen[extra]'` that brings it."""

    exit_code = 2


def import_extra(module: str, extra: str, purpose: str) -> ModuleType:
    """`module`, imported; MissingExtra naming the extra to install when it is not there.

    Optional dependencies are imported through this, where they are used, so that a plain
    `pip install emugen` runs everything that does not need them.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if (exc.name or "").split(".")[0] != module.split(".")[0]:
            raise  # the package is there but broken: its own error says more
        raise MissingExtra(
            f"{purpose} needs the Python package {module.split('.')[0]!r}, which is not "
            f"installed: pip install 'emugen[{extra}]' (or uv pip install 'emugen[{extra}]')"
        ) from None


class SpecError(EmugenError):
    """Raised when a batch spec cannot be generated as asked (bad size, unknown stream, ...)."""

    exit_code = 2


class ExclusionsUnknown(SpecError):
    """Raised when an event spec names its excluded companies by reference and this process
    has not loaded that list (from the store that holds its run, or a backfill's plan), or the
    store's list differs; regenerate it through its own store (`emugen replay`)."""


class FlowerLoginMissing(EmugenError):
    """Raised when Flower would start without a login (its UI can revoke and kill tasks)."""

    exit_code = 2


class StoreRefused(EmugenError):
    """Raised when the database refuses a write or a read (disk full, read-only, unreachable)."""

    exit_code = 2


class ExportError(EmugenError):
    """Raised when `emugen export` is asked for an unknown table, stream, format or time."""

    exit_code = 2


class GradeInputError(EmugenError):
    """Raised when a grading input (kept, rejected, truth) is missing, unreadable or has no ids."""

    exit_code = 2


class GradeInputMissing(GradeInputError):
    """Raised when a grading input names no file, or one vanished while it was read:
    `grade --follow` reports it and tries again next round."""


class OutputRefused(EmugenError):
    """Raised when a command is given a path to write that it must not write (the store, a
    database, a device, a folder, a kernel file, an existing file without --force, a name
    whose suffix contradicts --format) or cannot write (an OS error); nothing was changed."""

    exit_code = 2


class StoreFileGone(EmugenError):
    """Raised when the SQLite file a process has open was deleted or replaced under it."""

    exit_code = 2


class StoreUnknown(EmugenError):
    """Raised when a store command runs under an invalid or missing config file and no fleet
    recorded the store it runs on (nor does $EMUGEN_DATABASE_URL or the file name one), so
    there is no store to open but a default that nobody runs."""

    exit_code = 2


class LandingError(EmugenError):
    """Raised when a batch cannot be written to the landing zone (root not writable, disk
    full, object store refusing); the batch stays in bronze and the reaper lands it later."""


class YamlShapeError(EmugenError):
    """Raised when a config file is valid YAML but no config could look like it (too deep, too
    many values, aliases); parse_yaml turns it into a ConfigError naming the file."""


class DatabaseError(EmugenError):
    """Raised when the database URL is unusable, the database is not reachable, or it holds
    another schema version than this emugen expects."""


class BatchNotFound(EmugenError):
    """Raised when a stage, replay or the API is given a batch id the store does not hold
    (cleaned or pruned); list the batches with `emugen status`."""


class BatchPruned(BatchNotFound):
    """Raised when a batch id names a batch that retention deleted (fleet.retain_batches_for);
    its gold contribution stays, its rows are gone."""


class PageOutOfRange(EmugenError):
    """Raised when a listing (a batch's records) is asked for a page past its last one; the
    message names the last page."""


class StageOrderError(EmugenError):
    """Raised when a stage runs before the one it builds on (gold before silver); run the
    earlier stage first, as the task chain and the reaper do."""


class NotPaused(EmugenError):
    """Raised when `clean` is asked for while the fleet is generating; pause it first."""

    exit_code = 3


class BrokerError(EmugenError):
    """Raised when there is no usable Redis at the configured broker URL and emugen cannot
    start one there."""


class BeatAlreadyRunning(EmugenError):
    """Raised when a second beat starts while another one holds the lease on this broker."""

    exit_code = 3


class FleetError(EmugenError):
    """Raised when a process the fleet cannot run without (`emugen up`) died or could not be
    started."""


class PortTaken(EmugenError):
    """Raised when a port `emugen up` would serve the dashboard or Flower on is already in use;
    the message names the port and the option that chooses another."""

    exit_code = 2


class FleetStartError(EmugenError):
    """Raised when a process of the lab's private fleet (bench, soak, chaos) did not start."""


class FlowerAuthError(EmugenError):
    """Raised when FLOWER_BASIC_AUTH is set but is not `user:password` pairs."""

    exit_code = 2


class InsecureBinding(EmugenError):
    """Raised when the dashboard is asked to listen beyond loopback without a control token."""

    exit_code = 2


class BackfillInputError(EmugenError):
    """Raised when `emugen backfill` is given a bad range or stream (naive time, --from after
    --to, too many ticks, an unknown stream); the message names the option and what is allowed."""

    exit_code = 2


class BackfillConflict(EmugenError):
    """Raised when the store already holds a batch at a backfill tick's stream and seq whose
    spec differs (another config, clock or seed made it): backfill never mixes histories."""

    exit_code = 2


class BackfillNotReady(EmugenError):
    """Raised when a backfill event tick runs before the company batches it references are in
    silver; the task retries it shortly (the command dispatches it only after them anyway)."""


class BackfillRefused(EmugenError):
    """Raised when `emugen backfill` will not start writing: its estimated bytes exceed the
    free space on the store's or the landing root's filesystem, or its records exceed
    --confirm-above and nobody confirmed (--yes, or a yes on a terminal)."""

    exit_code = 2


class BackfillIncomplete(EmugenError):
    """Raised when a backfill ends with ticks that did not reach gold (failed, blocked behind a
    failed company batch, or no worker made progress); the message says which and why."""


class SeqContention(EmugenError):
    """Raised when generators racing for one stream lose the seq allocation on every attempt
    (a worker on a slow link behind a faster one); the generate task retries the tick with
    backoff and, out of retries, records it as a failed tick, so it is never silently lost."""
