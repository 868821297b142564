"""Terminal output: warnings and per-stage progress on stderr (rich), silenced by ``--quiet``.

Library code reports through a :class:`Reporter`; the CLI creates the rich one, tests and
other callers get :class:`NullReporter` (warnings are still collected in ``.warnings``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


def one_line(text: str) -> str:
    """``text`` on one line: control characters (a newline in a file name) shown escaped, as
    Python writes them, so an error stays one line and says exactly which name is meant."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def plural(n: int, noun: str) -> str:
    """``"1 frame"``, ``"2 frames"``: counts in messages read as English."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


class NullReporter:
    """Collects warnings, shows nothing. Stage timings are still measured."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.timings: dict[str, float] = {}

    def warn(self, msg: str) -> None:
        self.warnings.append(msg)

    def info(self, msg: str) -> None:
        pass

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - t0

    # progress: a task per stage, advanced by frames
    def start(self, stage: str, total: int | None) -> None:
        pass

    def advance(self, stage: str, n: int = 1) -> None:
        pass

    def stop(self) -> None:
        pass


class RichReporter(NullReporter):
    """Rich progress bars with ETA per stage; warnings printed in yellow on stderr."""

    def __init__(self, quiet: bool = False) -> None:
        super().__init__()
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.quiet = quiet
        self.console = Console(stderr=True, highlight=False)
        self._progress = Progress(
            TextColumn("{task.description:<12}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("elapsed"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=self.console,
            disable=quiet,
            transient=False,
        )
        self._tasks: dict[str, int] = {}
        self._started = False

    def warn(self, msg: str) -> None:
        """``msg`` is plain text (paths may hold ``[`` ``]``): never parsed as rich markup."""
        from rich.text import Text

        super().warn(msg)
        self.console.print(Text.assemble(("warning: ", "yellow"), one_line(msg)), soft_wrap=True)

    def info(self, msg: str) -> None:
        """``msg`` is plain text, printed as it is (no rich markup)."""
        if not self.quiet:
            self.console.print(msg, soft_wrap=True, markup=False)

    def start(self, stage: str, total: int | None) -> None:
        if not self._started:
            self._progress.start()
            self._started = True
        self._tasks[stage] = self._progress.add_task(stage, total=total)

    def advance(self, stage: str, n: int = 1) -> None:
        if stage in self._tasks:
            self._progress.advance(self._tasks[stage], n)

    def stop(self) -> None:
        if self._started:
            self._progress.stop()
            self._started = False
