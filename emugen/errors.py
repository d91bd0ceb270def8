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


class LandingError(EmugenError):
    """Raised when a batch cannot be written to the landing zone (root not writable, disk
    full, object store refusing); the batch stays in bronze and the reaper lands it later."""
