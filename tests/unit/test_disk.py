"""Low-disk warnings: when they are given, what they say, and that the log is not flooded."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from hub.config import HubSection
from hub.disk import GB, DiskReport, DiskWatch, human, low_space_warning, measure_all


@pytest.mark.parametrize(
    "free, percent, gb, reason",
    [
        (5 * GB, 10, 0, "less than 10% (hub.disk_warn_free_percent)"),
        (5 * GB, 0, 8, "less than 8 GB (hub.disk_warn_free_gb)"),
        (5 * GB, 10, 8, "less than 10% (hub.disk_warn_free_percent) and less than 8 GB (hub.disk_warn_free_gb)"),
    ],
)
def test_a_disk_under_a_threshold_gets_a_warning_that_names_it(
    free: int, percent: float, gb: float, reason: str
) -> None:
    warning = low_space_warning("data", 100 * GB, free, percent, gb)
    assert warning == (
        f"The data disk is nearly full: 5.0 GB free of 100.0 GB (5.0%), {reason}. "
        "Free space or add disk before the database or users' files fill it."
    )


@pytest.mark.parametrize("percent, gb", [(4, 4), (0, 0)])
def test_a_disk_over_the_thresholds_gets_none(percent: float, gb: float) -> None:
    assert low_space_warning("data", 100 * GB, 5 * GB, percent, gb) is None


def test_sizes_read_as_disks_are_sold() -> None:
    assert [human(n) for n in (512, 1500, 2_500_000, 78_000_000_000, 3 * 10**15)] == [
        "512 B",
        "1.5 kB",
        "2.5 MB",
        "78.0 GB",
        "3000.0 TB",
    ]


def test_paths_on_one_disk_are_reported_once(tmp_path: Path) -> None:
    settings = HubSection(data_dir=tmp_path, disk_watch_paths=[tmp_path / "..", Path("/nonexistent/x")])
    reports = measure_all(settings)
    assert [report.label for report in reports] == ["data"]
    assert 0 < reports[0].free_bytes <= reports[0].total_bytes


def test_the_log_warns_once_an_hour_while_low_and_once_on_recovery(caplog: pytest.LogCaptureFixture) -> None:
    low = DiskReport("data", Path("/d"), 100 * GB, GB, "The data disk is nearly full")
    fine = DiskReport("data", Path("/d"), 100 * GB, 50 * GB)
    watch = DiskWatch(repeat_seconds=3600)
    with caplog.at_level(logging.INFO, logger="hub.disk"):
        for report in (fine, low, low, low, fine, fine):
            watch.note([report])
    assert [record.getMessage() for record in caplog.records] == [
        "The data disk is nearly full (/d)",
        "the data disk (/d) has enough free space again: 50.0 GB",
    ]
