"""The limits a server gets: the image's fixed values or the person's choice, within their groups' maxima.

The rules, in one place:

- An image sets each resource (``mem_limit``, ``cpu_limit``, ``gpus``) either as a fixed value or as a
  choice (``choices:`` with ``options`` and a ``default``). A person may pick only an offered option;
  anything else (a tampered form, a hand-written API body) is a 400 that names what is offered, and
  nothing starts.
- ``group_limits`` gives each group maxima. A person's maximum is the most generous among the listed
  groups they belong to; a resource a group leaves out has no maximum for its members. People in no
  listed group, and admins, have no maximum: they get the image's options as offered.
- Options above a person's maximum are not offered to them. When the default is above it, the largest
  option within it is pre-selected. An image with no option (or a fixed value) within the maximum
  cannot be started by that person (403, in words). An image with no limit at all gets the maximum.

Values arrive in JupyterHub's ``user_options`` shape: the body of ``POST /hub/api/users/{name}/server``
(``{"image": "jupyterlab", "mem_limit": "2g", "cpu_limit": "1", "gpus": "0"}``), or form fields, which
are strings (one-item lists, as JupyterHub's ``options_from_form`` makes, count as their item).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from multidict import MultiMapping

from hub.config import ImageSpec, Settings
from hub.errors import BadRequest, Forbidden
from hub.i18n import L_, LN_, N_, Text, joined
from hub.names import truncate
from hub.resource_config import gpu_number, memory_bytes

RESOURCE_KEYS = ("mem_limit", "cpu_limit", "gpus")
LABELS = {"mem_limit": N_("Memory"), "cpu_limit": N_("CPUs"), "gpus": N_("GPUs")}
NEEDS_MORE = {
    "mem_limit": N_(
        "You may not start %(image)s: it needs more memory than your groups allow (at most %(most)s). "
        "Ask an admin if you need it."
    ),
    "cpu_limit": N_(
        "You may not start %(image)s: it needs more cpus than your groups allow (at most %(most)s). "
        "Ask an admin if you need it."
    ),
    "gpus": N_(
        "You may not start %(image)s: it needs more gpus than your groups allow (at most %(most)s). "
        "Ask an admin if you need it."
    ),
}
NO_CHOICE = {
    "mem_limit": N_("%(image)s offers no choice of memory (it gets %(value)s)."),
    "cpu_limit": N_("%(image)s offers no choice of cpus (it gets %(value)s)."),
    "gpus": N_("%(image)s offers no choice of gpus (it gets %(value)s)."),
}
NO_CHOICE_NO_LIMIT = {
    "mem_limit": N_("%(image)s offers no choice of memory (it has no limit)."),
    "cpu_limit": N_("%(image)s offers no choice of cpus (it has no limit)."),
    "gpus": N_("%(image)s offers no choice of gpus (it has no limit)."),
}
_CPU_TEXT = re.compile(r"^[0-9]{1,6}(\.[0-9]{1,6})?$")
_GPU_TEXT = re.compile(r"^([0-9]{1,3}|all)$")
MAX_VALUE_LENGTH = 32

Gpus = int | Literal["all"]


@dataclass(frozen=True, slots=True)
class Limits:
    """What one server gets; None is no limit, 0 GPUs is none."""

    mem_limit: str | None = None
    """A Docker memory size as configured, e.g. ``2g``."""
    cpu_limit: float | None = None
    gpus: Gpus = 0

    @property
    def mem_bytes(self) -> int | None:
        return memory_bytes(self.mem_limit) if self.mem_limit else None

    @property
    def nano_cpus(self) -> int | None:
        return int(self.cpu_limit * 1_000_000_000) if self.cpu_limit else None

    @property
    def wants_gpus(self) -> bool:
        return self.gpus != 0

    def as_user_options(self) -> dict[str, str]:
        """The chosen values as strings, for the API's ``user_options`` and the admin panel."""
        options = {"gpus": format_value("gpus", self.gpus)}
        if self.mem_limit:
            options["mem_limit"] = self.mem_limit
        if self.cpu_limit:
            options["cpu_limit"] = format_value("cpu_limit", self.cpu_limit)
        return options

    def describe(self) -> Text:
        """In words, for the home page and the admin panel: ``Memory 2g · 1 CPU · 1 GPU`` (a page translates it)."""
        memory = L_("Memory %(size)s", size=self.mem_limit) if self.mem_limit else N_("No memory limit")
        cpus: str
        if self.cpu_limit:
            count = 1 if self.cpu_limit == 1 else 2  # the plural form of a share of CPUs (0.5) is "CPUs"
            cpus = LN_("%(cpus)g CPU", "%(cpus)g CPUs", count, cpus=self.cpu_limit)
        else:
            cpus = N_("no CPU limit")
        parts = [memory, cpus]
        if self.gpus == "all":
            parts.append(N_("all GPUs"))
        elif self.gpus:
            parts.append(LN_("%(num)d GPU", "%(num)d GPUs", self.gpus))
        return joined(parts, " · ")


@dataclass(frozen=True, slots=True)
class Offer:
    """One select of the spawn form: a resource, its options (as sent back) and the one pre-selected."""

    key: str
    label: str
    options: tuple[str, ...]
    default: str


@dataclass(frozen=True, slots=True)
class _Cap:
    number: float
    label: str


def format_value(key: str, value: object) -> str:
    """An option as the form shows and sends it: ``2g``, ``0.5``, ``1``, ``all``."""
    if key == "cpu_limit" and isinstance(value, int | float):
        return f"{value:g}"
    return str(value)


def _number(key: str, value: object, host_gpus: int | None) -> float:
    if key == "mem_limit":
        return float(memory_bytes(str(value)) or 0)
    if key == "gpus":
        return gpu_number(value if value == "all" else int(str(value)), host_gpus)
    return float(str(value))


def maximum(groups: frozenset[str], admin: bool, settings: Settings) -> dict[str, _Cap | None]:
    """The person's maxima per resource (None: no maximum): the most generous of their listed groups."""
    listed = [settings.group_limits[group] for group in sorted(groups) if group in settings.group_limits]
    caps: dict[str, _Cap | None] = dict.fromkeys(RESOURCE_KEYS)
    if admin or not listed:
        return caps
    for key in RESOURCE_KEYS:
        values = [getattr(limits, key) for limits in listed]
        if any(value is None or value == "all" for value in values):
            continue
        best = max(values, key=partial(_number, key, host_gpus=None))
        caps[key] = _Cap(_number(key, best, None), format_value(key, best))
    return caps


def _within(key: str, options: Sequence[str], cap: _Cap | None, host_gpus: int | None) -> list[str]:
    if cap is None:
        return list(options)
    return [option for option in options if _number(key, option, host_gpus) <= cap.number]


def _spoken(options: Sequence[str]) -> str:
    if len(options) == 1:
        return options[0]
    return L_("%(options)s or %(last)s", options=", ".join(options[:-1]), last=options[-1])


def _nothing_within(image: ImageSpec, key: str, cap: _Cap) -> Forbidden:
    return Forbidden(
        Text(NEEDS_MORE[key], names={"image": image.title, "most": cap.label}),
        f"image {image.name}: {key} above the person's maximum {cap.label}",
    )


def _choice_of(image: ImageSpec, key: str) -> tuple[list[str], str] | None:
    choice = getattr(image.choices, key) if image.choices is not None else None
    if choice is None:
        return None
    return [format_value(key, option) for option in choice.options], format_value(key, choice.chosen_default)


def offered(
    image: ImageSpec, groups: frozenset[str], admin: bool, settings: Settings, *, host_gpus: int | None = None
) -> tuple[Offer, ...]:
    """The selects the spawn form shows beside ``image`` for this person (resources with a choice only).

    Raises Forbidden when the person may not start the image with any option (see the module's rules).
    """
    caps = maximum(groups, admin, settings)
    offers = []
    for key in RESOURCE_KEYS:
        choice = _choice_of(image, key)
        if choice is None:
            _fixed(image, key, caps[key], host_gpus)  # raises when the fixed value is above the maximum
            continue
        options, default = choice
        allowed = _within(key, options, caps[key], host_gpus)
        if not allowed:
            raise _nothing_within(image, key, caps[key] or _Cap(0, "0"))
        if default not in allowed:
            default = max(allowed, key=partial(_number, key, host_gpus=host_gpus))
        offers.append(Offer(key, LABELS[key], tuple(allowed), default))
    return tuple(offers)


def fits(image: ImageSpec, groups: frozenset[str], admin: bool, settings: Settings) -> bool:
    """Whether the person may start ``image`` with some option (else the form should leave it out)."""
    try:
        offered(image, groups, admin, settings)
    except Forbidden:
        return False
    return True


def _fixed(image: ImageSpec, key: str, cap: _Cap | None, host_gpus: int | None) -> str | None:
    """The image's fixed value of ``key`` for this person: the maximum when it sets none."""
    value = getattr(image, key)
    if value is None or value == 0:
        if key == "gpus":
            return "0"
        return cap.label if cap is not None else None
    shown = format_value(key, value)
    if cap is not None and _number(key, shown, host_gpus) > cap.number:
        raise _nothing_within(image, key, cap)
    return shown


def _given(user_options: Mapping[str, object], key: str) -> str | None:
    """The value the person sent for ``key`` as text, None when absent or empty; odd shapes are a 400."""
    value = user_options.get(key)
    if isinstance(value, list | tuple) and len(value) == 1:
        value = value[0]
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadRequest(L_("%(key)s must be one of the offered values, as text or a number.", key=key))
    if isinstance(value, float) and not math.isfinite(value):
        raise BadRequest(L_("%(key)s must be one of the offered values.", key=key))
    return format_value(key, value) if not isinstance(value, str) else value


def options_from_form(form: MultiMapping[Any]) -> dict[str, object]:
    """``user_options`` from the spawn form's fields (image and the resource selects); one sent twice is a 400."""
    options: dict[str, object] = {}
    for key in ("image", *RESOURCE_KEYS):
        values = form.getall(key, [])
        if len(values) > 1:
            raise BadRequest(L_("The form sent %(key)s %(count)d times; send one value.", key=key, count=len(values)))
        if values:
            if not isinstance(values[0], str):
                raise BadRequest(L_("%(key)s must be text.", key=key))
            options[key] = values[0]
    return options


def _parses(key: str, text: str) -> bool:
    if len(text) > MAX_VALUE_LENGTH or not text.isascii():
        return False
    checks: dict[str, Callable[[str], bool]] = {
        "mem_limit": lambda value: memory_bytes(value) is not None,
        "cpu_limit": lambda value: bool(_CPU_TEXT.match(value)),
        "gpus": lambda value: bool(_GPU_TEXT.match(value)),
    }
    return checks[key](text)


def _not_offered(image: ImageSpec, key: str, text: str, options: Sequence[str]) -> BadRequest:
    return BadRequest(
        L_(
            "%(what)s %(value)s is not offered for %(image)s: choose %(options)s.",
            what=Text(LABELS[key]),
            value=truncate(text, 20),
            image=image.title,
            options=_spoken(options),
        ),
        f"refused {key}={truncate(text, 20)!r} for image {image.name}",
    )


def resolve(
    image: ImageSpec,
    user_options: Mapping[str, object],
    groups: frozenset[str],
    admin: bool,
    settings: Settings,
    *,
    host_gpus: int | None = None,
) -> Limits:
    """The limits of a server of ``image`` started with ``user_options``; a value not offered is a BadRequest."""
    caps = maximum(groups, admin, settings)
    chosen: dict[str, str | None] = {}
    offers = {offer.key: offer for offer in offered(image, groups, admin, settings, host_gpus=host_gpus)}
    for key in RESOURCE_KEYS:
        given = _given(user_options, key)
        offer = offers.get(key)
        if offer is None:
            fixed = _fixed(image, key, caps[key], host_gpus)
            if given is not None and not (
                _parses(key, given)
                and fixed is not None
                and _number(key, given, host_gpus) == _number(key, fixed, host_gpus)
            ):
                raise BadRequest(
                    Text(NO_CHOICE[key], names={"image": image.title, "value": fixed})
                    if fixed is not None
                    else Text(NO_CHOICE_NO_LIMIT[key], names={"image": image.title}),
                    f"refused {key}={truncate(given, 20)!r} for image {image.name} (fixed)",
                )
            chosen[key] = fixed
            continue
        if given is None:
            chosen[key] = offer.default
            continue
        if not _parses(key, given):
            raise _not_offered(image, key, given, offer.options)
        number = _number(key, given, host_gpus)
        match = next((option for option in offer.options if _number(key, option, host_gpus) == number), None)
        if match is None:
            raise _not_offered(image, key, given, offer.options)
        chosen[key] = match
    return _limits(chosen)


def _limits(chosen: Mapping[str, str | None]) -> Limits:
    cpu, gpus = chosen.get("cpu_limit"), chosen.get("gpus") or "0"
    return Limits(
        mem_limit=chosen.get("mem_limit"),
        cpu_limit=float(cpu) if cpu is not None else None,
        gpus="all" if gpus == "all" else int(gpus),
    )


def stored_options(text: str | None) -> dict[str, str]:
    """The resource choices a server row keeps (``servers.user_options``, JSON); {} for none or unreadable."""
    try:
        loaded = json.loads(text) if text else {}
    except ValueError:
        return {}
    if not isinstance(loaded, dict):
        return {}
    return {key: str(value) for key, value in loaded.items() if key in RESOURCE_KEYS and value is not None}


def limits_of(options: Mapping[str, str]) -> Limits | None:
    """The limits that stored choices describe; None when there are none (a server from before choices)."""
    if not options:
        return None
    cpu, gpus = options.get("cpu_limit"), options.get("gpus") or "0"
    try:
        return Limits(
            mem_limit=options.get("mem_limit") or None,
            cpu_limit=float(cpu) if cpu else None,
            gpus="all" if gpus == "all" else int(gpus),
        )
    except ValueError:
        return None
