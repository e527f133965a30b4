"""Configuration of resources: the choices an image offers (memory, CPUs, GPUs) and each group's maxima.

``images[].choices`` lets a person pick, per start, from a short list the admin wrote::

    choices:
      mem_limit: {options: [1g, 2g, 4g], default: 2g}
      cpu_limit: {options: [0.5, 1, 2], default: 1}
      gpus: {options: [0, 1], default: 0}

and ``group_limits`` caps what members of a group may pick (see hub/resources.py for the rules).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MEMORY_PATTERN = r"^[0-9]{1,15}[bkmgBKMG]?$"
_MEMORY = re.compile(MEMORY_PATTERN)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
MIN_MEMORY = 6 * 1024**2  # Docker refuses a memory limit under 6 MB

GpuCount = Annotated[int, Field(ge=0, le=64)] | Literal["all"]
"""How many GPUs: a number (0 for none) or ``all`` of the host's."""


def memory_bytes(text: str) -> int | None:
    """Bytes of a Docker memory size (``512m``, ``2g``, ``1073741824``), or None when ``text`` is not one."""
    if not isinstance(text, str) or not _MEMORY.match(text):
        return None
    unit = text[-1].lower() if text[-1].isalpha() else ""
    digits = text[:-1] if unit else text
    return int(digits) * _UNITS[unit]


def gpu_number(count: int | str, host_gpus: int | None) -> float:
    """A GPU count as a number to compare: ``all`` is the host's count (infinity while unknown)."""
    if count == "all":
        return float("inf") if host_gpus is None else float(host_gpus)
    return float(count)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_default(options: list[Any], default: Any, key: Any) -> None:
    seen = [key(option) for option in options]
    if len(set(seen)) != len(seen):
        raise ValueError("an option is listed twice (perhaps in other units)")
    if default is not None and key(default) not in seen:
        shown = ", ".join(str(option) for option in options)
        raise ValueError(f"the default {default} is not one of the options ({shown})")


class MemoryChoice(_Section):
    options: list[Annotated[str, Field(pattern=MEMORY_PATTERN)]] = Field(min_length=1, max_length=20)
    """Memory sizes offered, e.g. [1g, 2g, 4g] (b, k, m, g)."""
    default: str | None = Field(None, pattern=MEMORY_PATTERN)
    """The one selected at first; default: the first option."""

    @model_validator(mode="after")
    def _valid(self) -> MemoryChoice:
        for option in self.options:
            if (memory_bytes(option) or 0) < MIN_MEMORY:
                raise ValueError(f"memory {option} is less than Docker's minimum of 6m")
        _check_default(self.options, self.default, memory_bytes)
        return self

    @property
    def chosen_default(self) -> str:
        return self.default or self.options[0]


class CpuChoice(_Section):
    options: list[Annotated[float, Field(gt=0, le=1024)]] = Field(min_length=1, max_length=20)
    """CPUs offered, e.g. [0.5, 1, 2]."""
    default: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _valid(self) -> CpuChoice:
        _check_default(self.options, self.default, float)
        return self

    @property
    def chosen_default(self) -> float:
        return self.default if self.default is not None else self.options[0]


class GpuChoice(_Section):
    options: list[GpuCount] = Field(min_length=1, max_length=20)
    """GPU counts offered, e.g. [0, 1] or [0, 1, all]."""
    default: GpuCount | None = None

    @model_validator(mode="after")
    def _valid(self) -> GpuChoice:
        _check_default(self.options, self.default, str)
        return self

    @property
    def chosen_default(self) -> int | Literal["all"]:
        return self.default if self.default is not None else self.options[0]


class ResourceChoices(_Section):
    """What a person may pick for one image; a resource left out keeps the image's fixed value."""

    mem_limit: MemoryChoice | None = None
    cpu_limit: CpuChoice | None = None
    gpus: GpuChoice | None = None

    @property
    def asks_for_gpus(self) -> bool:
        return self.gpus is not None and any(option != 0 for option in self.gpus.options)


class GroupLimits(_Section):
    """The most a member of one group may pick; a resource left out (null) has no maximum."""

    mem_limit: str | None = Field(None, pattern=MEMORY_PATTERN)
    cpu_limit: float | None = Field(None, gt=0)
    gpus: GpuCount | None = None


def check_fixed_or_choice(fixed: Mapping[str, object], choices: ResourceChoices | None) -> None:
    """An image sets each resource one way: a fixed value or a choice, not both (which would win is unclear)."""
    if choices is None:
        return
    for key, value in fixed.items():
        if value is not None and getattr(choices, key) is not None:
            raise ValueError(f"set either {key} or choices.{key}, not both (a choice has its own default)")
