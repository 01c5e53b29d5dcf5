"""The terminal's progress line: what is being done, files done / total, the current file and
the time elapsed on a terminal; nothing at all when stderr is not one."""

from __future__ import annotations

import io

from rich.console import Console

from pipelines.ingest import INGESTED, QUARANTINED, FileOutcome
from pipelines.ingest.batch import COMPUTED, VALIDATING
from pipelines.runtime.progress import RunProgress, WorkProgress


def _sweep_of_two(console: Console) -> None:
    with WorkProgress(console) as display:
        display.doing("starting", "the Prefect server")
        run = RunProgress(display, total=2)
        run.on_step(COMPUTED, "plate_a.txt")
        run.on_step(COMPUTED, "plate_b.txt")
        run.on_step(VALIDATING, "qpcr_runs")
        run.on_outcome(FileOutcome("plate_a.txt", "a" * 64, INGESTED))
        run.on_outcome(FileOutcome("plate_b.txt", "b" * 64, QUARANTINED, reason="QC"))


def test_a_terminal_sees_each_step_with_counts_files_and_elapsed_time() -> None:
    screen = io.StringIO()
    _sweep_of_two(Console(file=screen, force_terminal=True, width=120, color_system=None))
    drawn = screen.getvalue()
    for expected in (
        "the Prefect server", "computing", "1/2 0:00:00 plate_a.txt", "2/2 0:00:00 plate_b.txt",
        "validating", "qpcr_runs", "writing",
    ):  # fmt: skip
        assert expected in drawn, expected


def test_nothing_is_drawn_when_stderr_is_not_a_terminal() -> None:
    piped = io.StringIO()
    _sweep_of_two(Console(file=piped, force_terminal=False, width=120))
    assert piped.getvalue() == ""


def test_counts_never_pass_the_total() -> None:
    """A file taken again in the same run (the same bytes under a second name) is computed
    twice; the line still ends at the run's total."""
    screen = io.StringIO()
    with WorkProgress(
        Console(file=screen, force_terminal=True, width=120, color_system=None)
    ) as display:
        run = RunProgress(display, total=1)
        run.on_step(COMPUTED, "plate_a.txt")
        run.on_step(COMPUTED, "plate_a_copy.txt")
    assert "2/1" not in screen.getvalue()
    assert "1/1 0:00:00 plate_a_copy.txt" in screen.getvalue()
