"""Free space on the disks the hub depends on, for /hub/health: warn before the database or users' files fill one.

The data disk (``hub.data_dir``: the database and the cookie secret; under compose a Docker volume,
so it is Docker's disk, where users' volumes live too) is always watched; ``hub.disk_watch_paths``
adds more, e.g. Docker's data root for a hub on the host. A disk is low when less than
``hub.disk_warn_free_percent`` of it, or less than ``hub.disk_warn_free_gb`` gigabytes, is free.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from hub.config import HubSection

log = logging.getLogger(__name__)
LOG_AGAIN_SECONDS = 3600.0
GB = 10**9


@dataclass(frozen=True, slots=True)
class DiskReport:
    label: str
    """What the disk holds, as shown publicly ("data", or a configured path)."""
    path: Path
    total_bytes: int
    free_bytes: int
    warning: str | None = None

    @property
    def free_percent(self) -> float:
        return 100.0 * self.free_bytes / self.total_bytes if self.total_bytes else 0.0

    def as_json(self) -> dict[str, object]:
        return {
            "disk": self.label,
            "free_bytes": self.free_bytes,
            "total_bytes": self.total_bytes,
            "free_percent": round(self.free_percent, 1),
            "low": self.warning is not None,
        }

    def as_text(self) -> str:
        return (
            f"{self.label} disk: {human(self.free_bytes)} free of {human(self.total_bytes)} ({self.free_percent:.1f}%)"
        )


def human(size: float) -> str:
    """Bytes in decimal units, as disks are sold: 1.2 GB."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def low_space_warning(label: str, total: int, free: int, warn_percent: float, warn_gb: float) -> str | None:
    """A sentence for the admin when free space is under either threshold, else None."""
    percent = 100.0 * free / total if total else 0.0
    reasons = []
    if warn_percent and percent < warn_percent:
        reasons.append(f"less than {warn_percent:g}% (hub.disk_warn_free_percent)")
    if warn_gb and free < warn_gb * GB:
        reasons.append(f"less than {warn_gb:g} GB (hub.disk_warn_free_gb)")
    if not reasons:
        return None
    return (
        f"The {label} disk is nearly full: {human(free)} free of {human(total)} ({percent:.1f}%), "
        f"{' and '.join(reasons)}. Free space or add disk before the database or users' files fill it."
    )


def measure(label: str, path: Path, settings: HubSection) -> DiskReport:
    """Blocking (statvfs): call it from a thread. Space free for ordinary users counts, not root's reserve."""
    stat = os.statvfs(path)
    total, free = stat.f_blocks * stat.f_frsize, stat.f_bavail * stat.f_frsize
    warning = low_space_warning(label, total, free, settings.disk_warn_free_percent, settings.disk_warn_free_gb)
    return DiskReport(label, path, total, free, warning)


def measure_all(settings: HubSection) -> list[DiskReport]:
    """One report per watched disk (paths on the same file system count once); unreadable paths are skipped."""
    reports: list[DiskReport] = []
    seen: set[int] = set()
    for label, path in [("data", settings.data_dir), *((str(p), p) for p in settings.disk_watch_paths)]:
        try:
            device = os.stat(path).st_dev
            if device in seen:
                continue
            seen.add(device)
            reports.append(measure(label, path, settings))
        except OSError as exc:
            log.warning("cannot measure free space at %s: %s", path, exc.strerror or exc)
    return reports


class DiskWatch:
    """Puts low-disk warnings in the log: when a disk becomes low, again every hour while it stays low, and
    once when it has recovered (so a health check polled every few seconds does not flood the log)."""

    def __init__(self, repeat_seconds: float = LOG_AGAIN_SECONDS) -> None:
        self.repeat_seconds = repeat_seconds
        self._logged: dict[Path, float] = {}

    def note(self, reports: list[DiskReport]) -> None:
        now = time.monotonic()
        for report in reports:
            last = self._logged.get(report.path)
            if report.warning is not None:
                if last is None or now - last >= self.repeat_seconds:
                    log.warning("%s (%s)", report.warning, report.path)
                    self._logged[report.path] = now
            elif last is not None:
                log.info(
                    "the %s disk (%s) has enough free space again: %s",
                    report.label,
                    report.path,
                    human(report.free_bytes),
                )
                del self._logged[report.path]
