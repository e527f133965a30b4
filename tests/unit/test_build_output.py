"""A build's own output reaches the starts that follow it: the last lines, throttled, cleared at each step."""

from __future__ import annotations

from hub.images import OUTPUT_LINES, ImageWork
from hub.progress import ProgressEvent, SpawnProgress


def test_followers_see_the_last_lines_of_the_current_step() -> None:
    progress = SpawnProgress()
    work = ImageWork("course:1")
    work.followers.append(progress.report)
    work.report("Building course:1: Step 3/4 : RUN pip install", 50)
    work.add_output([f"Collecting package{number}" for number in range(20)])
    shown = progress.latest
    assert shown is not None and shown.message == "Building course:1: Step 3/4 : RUN pip install"
    assert shown.output == tuple(f"Collecting package{number}" for number in range(20 - OUTPUT_LINES, 20))
    work.add_output(["Collecting more"])  # within the throttle: kept, not sent yet
    assert progress.latest is shown
    work.report("Building course:1: Step 4/4 : RUN true", 75)  # a new step starts with no output
    assert progress.latest is not None and progress.latest.output == ()


def test_output_is_in_the_json_only_while_there_is_some() -> None:
    assert "output" not in ProgressEvent(10, "Checking the image").as_json()
    assert ProgressEvent(20, "Building", output=("a", "b")).as_json()["output"] == ["a", "b"]
