"""Request bodies: strict pydantic models, so a bad field gets a 422 that names it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from emugen.vocabulary import Mode


class ModeChange(BaseModel):
    """Switch the config file's `mode:`; beat applies it within about a second."""

    model_config = ConfigDict(extra="forbid")

    mode: Mode = Field(description="production | emulated")


class Problem(BaseModel):
    """Every error but a 422: what was wrong and how to fix it."""

    detail: str
