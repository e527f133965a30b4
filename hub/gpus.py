"""The host's NVIDIA GPUs: which there are, the check at start-up, and who holds which.

**Which GPUs.** ``spawner.gpu_ids`` lists them (indexes or UUIDs, as ``nvidia-smi -L`` shows them);
else ``spawner.gpus: N`` means ids ``0`` .. ``N-1``. ``auto`` takes the GPUs Docker itself lists: from
Docker 28, with CDI on and the NVIDIA Container Toolkit's CDI spec written, ``docker info`` has
``DiscoveredDevices`` such as ``{"Source": "cdi", "ID": "nvidia.com/gpu=0"}``. Older daemons list no
devices at all: counting GPUs there needs a container or ``nvidia-smi`` on the host, and the hub runs
neither, so ``auto`` then asks for the number in the configuration (at start-up, in words).

**Whether Docker can pass them.** A GPU reaches a container as a device request of the ``nvidia``
driver (what ``docker run --gpus`` sends). Docker has that driver when the NVIDIA Container Toolkit is
installed; ``nvidia-ctk runtime configure --runtime=docker`` also registers the ``nvidia`` runtime,
which ``docker info`` lists under ``Runtimes``: that is what the start-up check looks for (or
discovered NVIDIA devices). Without it, Docker creates the container but refuses to start it
(``could not select device driver "nvidia"``), so an image that asks for GPUs on such a host is a
configuration error at start-up, not a failed spawn later.

**Who holds which.** ``GPUAllocator`` hands out whole GPUs: two servers never share one unless
``spawner.gpu_sharing`` is on (then each start gets the least used ones). ``all`` takes every GPU and,
without sharing, only when none is in use. Servers are keyed by a string (the server's key: the user
name, or ``user/server`` for named servers). The ids go on the container as the label ``hub.gpus``, so
after a restart the hub learns them again from the running containers (``adopt``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from hub.config import ConfigError, Settings, SpawnerSection
from hub.errors import LimitReached
from hub.i18n import L_, LN_, N_

log = logging.getLogger(__name__)

GPU_LABEL = "hub.gpus"
NVIDIA_RUNTIME = "nvidia"
CDI_GPU_PREFIX = "nvidia.com/gpu="
TOOLKIT_HINT = (
    "install the NVIDIA Container Toolkit, run `nvidia-ctk runtime configure --runtime=docker` and restart "
    "Docker; or remove the GPU requests (gpus, choices.gpus) from these images"
)


class NoGPUFree(LimitReached):
    """Every GPU a start needs is held by other servers (429)."""

    title = N_("No GPU is free")


def gpu_label(ids: Sequence[str]) -> str:
    """The value of the ``hub.gpus`` label: ids joined by commas."""
    return ",".join(ids)


def parse_gpu_label(value: str | None) -> tuple[str, ...]:
    """The ids in a ``hub.gpus`` label (empty for none or a missing label)."""
    return tuple(part for part in (value or "").split(",") if part)


# -- what the host has -----------------------------------------------------------------------


def has_nvidia_support(info: Mapping[str, Any]) -> bool:
    """Whether ``docker info`` shows that Docker can hand NVIDIA GPUs to containers."""
    runtimes = info.get("Runtimes") or {}
    return NVIDIA_RUNTIME in runtimes or bool(discovered_gpu_ids(info))


def discovered_gpu_ids(info: Mapping[str, Any]) -> tuple[str, ...]:
    """The NVIDIA GPUs Docker lists itself (``DiscoveredDevices``, Docker 28 with CDI); ``=all`` is skipped."""
    found = []
    for device in info.get("DiscoveredDevices") or []:
        ident = str(device.get("ID", "")) if isinstance(device, Mapping) else ""
        if ident.startswith(CDI_GPU_PREFIX) and ident != f"{CDI_GPU_PREFIX}all":
            found.append(ident.removeprefix(CDI_GPU_PREFIX))
    return tuple(dict.fromkeys(found))


def host_gpu_ids(settings: SpawnerSection, info: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    """The GPU ids the hub hands out: configured ids, 0..n-1, or (auto) those Docker lists."""
    if settings.gpu_ids:
        return tuple(settings.gpu_ids)
    if settings.gpus == "auto":
        return discovered_gpu_ids(info or {})
    return tuple(str(index) for index in range(settings.gpus))


def gpu_problems(settings: Settings, info: Mapping[str, Any]) -> list[str]:
    """What keeps the GPU requests of the configured images from working on this Docker, in words."""
    wanting = [image.name for image in settings.images if image.asks_for_gpus]
    if not wanting:
        return []
    which = f"image{'s' if len(wanting) > 1 else ''} {', '.join(wanting)} ask{'' if len(wanting) > 1 else 's'}"
    if not has_nvidia_support(info):
        runtimes = ", ".join(sorted(info.get("Runtimes") or {})) or "none"
        return [
            f"{which} for GPUs, but Docker on this host has no NVIDIA runtime (its runtimes: {runtimes}): "
            f"{TOOLKIT_HINT}."
        ]
    if host_gpu_ids(settings.spawner, info):
        return []
    if settings.spawner.gpus == "auto":
        return [
            f"{which} for GPUs and spawner.gpus is auto, but Docker does not list the host's GPUs (it does "
            "from Docker 28 with CDI on): set spawner.gpus to their number (`nvidia-smi -L` lists them)."
        ]
    return [f"{which} for GPUs, but spawner.gpus is 0: set it to the number of GPUs on this host, or to auto."]


def check_gpus(settings: Settings, info: Mapping[str, Any]) -> GPUAllocator:
    """The allocator over this host's GPUs; a configuration Docker here cannot serve is a ConfigError."""
    problems = gpu_problems(settings, info)
    if problems:
        raise ConfigError("\n".join(problems))
    ids = host_gpu_ids(settings.spawner, info)
    if ids:
        log.info(
            "%d GPUs to hand out (%s)%s", len(ids), gpu_label(ids), "; shared" if settings.spawner.gpu_sharing else ""
        )
    return GPUAllocator(ids, sharing=settings.spawner.gpu_sharing)


# -- who holds which --------------------------------------------------------------------------


class GPUAllocator:
    """Whole GPUs for servers, never one GPU to two servers unless sharing is on.

    Every change happens in plain (non-async) code, so on the event loop two starts cannot take the
    same GPU: whichever runs first takes it, and the other sees it held.
    """

    def __init__(self, ids: Iterable[str], *, sharing: bool = False) -> None:
        self.ids = tuple(dict.fromkeys(ids))
        self.sharing = sharing
        self._held: dict[str, tuple[str, ...]] = {}
        self._changed: list[asyncio.Future[None]] = []

    @property
    def total(self) -> int:
        return len(self.ids)

    def in_use(self) -> dict[str, tuple[str, ...]]:
        """Server key -> the GPU ids it holds."""
        return dict(self._held)

    def holding(self, server_key: str) -> tuple[str, ...]:
        return self._held.get(server_key, ())

    def _users(self) -> dict[str, int]:
        counts = dict.fromkeys(self.ids, 0)
        for ids in self._held.values():
            for ident in ids:
                counts[ident] = counts.get(ident, 0) + 1
        return counts

    def free(self) -> list[str]:
        """The host's GPUs no server holds, in order."""
        users = self._users()
        return [ident for ident in self.ids if users[ident] == 0]

    def try_allocate(self, server_key: str, want: int | Literal["all"]) -> list[str]:
        """Take ``want`` GPUs for ``server_key`` now, or raise NoGPUFree. Asking again returns what it holds."""
        count = self.total if want == "all" else want
        held = self.holding(server_key)
        if held and len(held) == count:
            return list(held)
        self.release(server_key)
        if count == 0:
            return []
        if count > self.total:
            have = L_("only %(count)d", count=self.total) if self.total else N_("none")
            raise NoGPUFree(
                LN_(
                    "This server needs %(num)d GPU, but this hub has %(have)s. Pick fewer GPUs or an image without a "
                    "GPU.",
                    "This server needs %(num)d GPUs, but this hub has %(have)s. Pick fewer GPUs or an image without a "
                    "GPU.",
                    count,
                    have=have,
                ),
                f"{server_key} asked for {want} GPUs; the hub has {self.total}",
            )
        users = self._users()
        if self.sharing:
            chosen = sorted(self.ids, key=lambda ident: users[ident])[:count]  # stable: the least used first
        else:
            free = [ident for ident in self.ids if users[ident] == 0]
            if len(free) < count:
                raise self._none_free(server_key, want, len(free))
            chosen = free[:count]
        taken = tuple(ident for ident in self.ids if ident in chosen)
        self._held[server_key] = taken
        log.info("gpus %s for %s", gpu_label(taken), server_key)
        return list(taken)

    def _none_free(self, server_key: str, want: int | Literal["all"], free: int) -> NoGPUFree:
        if free == 0:
            message = LN_(
                "All %(num)d GPU is in use; try again later or pick an image without a GPU.",
                "All %(num)d GPUs are in use; try again later or pick an image without a GPU.",
                self.total,
            )
        elif want == "all":
            message = L_(
                "This server needs all %(total)d GPUs, but %(busy)d of them are in use; try again later or pick "
                "fewer GPUs.",
                total=self.total,
                busy=self.total - free,
            )
        else:
            message = LN_(
                "Only %(num)d of %(total)d GPUs is free and this server needs %(want)s; try again later or pick "
                "fewer GPUs.",
                "Only %(num)d of %(total)d GPUs are free and this server needs %(want)s; try again later or pick "
                "fewer GPUs.",
                free,
                total=self.total,
                want=want,
            )
        return NoGPUFree(message, f"{server_key} asked for {want} GPUs; {free} of {self.total} free")

    async def allocate(self, server_key: str, want: int | Literal["all"], *, wait: float = 0) -> list[str]:
        """Like ``try_allocate``, but wait up to ``wait`` seconds for GPUs to come free before refusing."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            try:
                return self.try_allocate(server_key, want)
            except NoGPUFree:
                remaining = deadline - loop.time()
                if remaining <= 0 or (want == "all" and self.total == 0) or (want != "all" and want > self.total):
                    raise
            changed: asyncio.Future[None] = loop.create_future()
            self._changed.append(changed)
            try:
                await asyncio.wait({changed}, timeout=remaining)
            finally:
                if changed in self._changed:
                    self._changed.remove(changed)

    def release(self, server_key: str) -> tuple[str, ...]:
        """Give back what ``server_key`` holds (nothing held is fine); returns the ids released."""
        released = self._held.pop(server_key, ())
        if released:
            log.info("gpus %s released by %s", gpu_label(released), server_key)
            waiting, self._changed = self._changed, []
            for changed in waiting:
                if not changed.done():
                    changed.set_result(None)
        return released

    def adopt(self, server_key: str, ids: Iterable[str]) -> None:
        """Record GPUs a running container already has (its ``hub.gpus`` label), e.g. after a restart."""
        taken = tuple(dict.fromkeys(ids))
        if not taken:
            return
        unknown = [ident for ident in taken if ident not in self.ids]
        if unknown:
            log.warning("server %s runs with GPUs %s that the hub does not hand out", server_key, gpu_label(unknown))
        others = {ident for key, held in self._held.items() if key != server_key for ident in held}
        shared = [ident for ident in taken if ident in others]
        if shared and not self.sharing:
            log.warning("server %s shares GPUs %s with another server", server_key, gpu_label(shared))
        self._held[server_key] = taken
