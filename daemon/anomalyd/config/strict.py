"""The base of every config section."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A config section: a key it does not know is an error, and it is frozen once read."""

    model_config = ConfigDict(extra="forbid", frozen=True)
