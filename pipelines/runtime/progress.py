"""Progress on the technician's terminal: what is being done, files done / total, the current
file, and the time elapsed.

Drawn on stderr, and only when stderr is a terminal: piped, redirected, under cron or in tests
the command prints its one line per file and nothing else. The display is transient: when the
work ends it disappears, leaving the per-file lines and the summary. The command's own lines
(stdout) are printed above it when stdout is the terminal too, and go untouched where stdout
was redirected (`cartflow run > run.log` keeps every line in the log).
"""

from __future__ import annotations

import sys
from datetime import timedelta
from time import monotonic
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
)
from rich.text import Text

from pipelines.ingest import FileOutcome
from pipelines.ingest.batch import COMPUTED


class _SinceStart(ProgressColumn):
    """Time since the display started, whatever step it shows (rich's own elapsed column
    stops when a step's count is complete)."""

    def __init__(self) -> None:
        super().__init__()
        self._started = monotonic()

    def render(self, task: Task) -> Text:
        elapsed = timedelta(seconds=int(monotonic() - self._started))
        return Text(str(elapsed), style="progress.elapsed")


class WorkProgress:
    """One line of progress: a spinner, what is being done, a bar, `12/90`, elapsed, the file."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description:<12}"),
            BarColumn(bar_width=30),
            TextColumn("{task.fields[count]:>9}"),
            _SinceStart(),
            TextColumn("{task.fields[current]}"),
            console=console,
            transient=True,
            redirect_stdout=sys.stdout.isatty(),
            redirect_stderr=False,
            disable=not console.is_terminal,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> WorkProgress:
        self._progress.__enter__()
        self._task = self._progress.add_task("", total=None, count="", current="")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._progress.__exit__(kind, error, traceback)

    def doing(self, description: str, current: str = "") -> None:
        """Work whose size is unknown (starting the Prefect server, the derived tables)."""
        self._update(description=description, total=None, completed=0, count="", current=current)

    def counted(self, description: str, done: int, total: int, current: str = "") -> None:
        """`done` of `total` items, the last one `current`."""
        done = min(done, total)
        self._update(
            description=description, total=total, completed=done, count=f"{done}/{total}",
            current=current,
        )  # fmt: skip

    def _update(self, **fields: object) -> None:
        if self._task is not None:
            self._progress.update(self._task, refresh=True, **fields)


class RunProgress:
    """A sweep's progress from the flow's callbacks: files computed, each table validated, files
    written (taken or quarantined), then the run summary and derived tables."""

    def __init__(self, display: WorkProgress, total: int) -> None:
        self._display = display
        self._total = total
        self._computed = 0
        self._finished = 0

    def on_step(self, step: str, what: str) -> None:
        """A step of the run (`pipelines.ingest.batch`, `pipelines.flows`), shown by its name."""
        if step == COMPUTED:
            self._computed += 1
            self._display.counted("computing", self._computed, self._total, what)
        else:
            self._display.doing(step, what)

    def on_outcome(self, outcome: FileOutcome) -> None:
        self._finished += 1
        self._display.counted("writing", self._finished, self._total, outcome.name)
