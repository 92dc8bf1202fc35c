"""One progress-bar helper for the long loops of training and evaluation (rich, optional)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def progress_bar(
    enabled: bool, description: str, total: int | None
) -> Iterator[Callable[[int], None]]:
    """Yield `advance(n)`; draws a transient rich bar on stderr when `enabled`, else nothing.

    Library calls default to no bar (tests, `steer zoo build` composes its own output); the CLI
    turns it on, and it only draws on a terminal.
    """
    if not enabled:
        yield lambda n: None
        return
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:  # a log file or a pipe: no live bar, no stray blank lines
        yield lambda n: None
        return
    with rich_progress(console) as p:
        task = p.add_task(description, total=total)
        yield lambda n: p.advance(task, n)


def rich_progress(console: Any) -> Any:
    """The one bar layout (count, elapsed, remaining) of every long loop, CLI and library alike;
    transient so that finished bars leave no lines behind."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
