"""The one error tree: every failure a user can cause says what was wrong and how to fix it."""

from __future__ import annotations


class EmugenError(Exception):
    """Base of every error emugen raises on purpose; the message is meant for the user."""

    exit_code = 1


class ConfigError(EmugenError):
    """A configuration file or value is invalid; `problems` holds one line per bad field."""

    exit_code = 2

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"invalid configuration in {source} ({len(problems)} problem"
            f"{'s' if len(problems) != 1 else ''}):\n{lines}"
        )


class SpecError(EmugenError):
    """A batch spec cannot be generated as asked (bad size, unknown stream, ...)."""

    exit_code = 2


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


class StoreFileGone(EmugenError):
    """Raised when the SQLite file a process has open was deleted or replaced under it."""

    exit_code = 2


class LandingError(EmugenError):
    """Raised when a batch cannot be written to the landing zone (root not writable, disk
    full, object store refusing); the batch stays in bronze and the reaper lands it later."""


class BatchNotFound(EmugenError):
    """Raised when a stage is asked for a batch id the store does not hold (cleaned or
    pruned); list the batches with `emugen status`."""


class StageOrderError(EmugenError):
    """Raised when a stage runs before the one it builds on (gold before silver); run the
    earlier stage first, as the task chain and the reaper do."""
