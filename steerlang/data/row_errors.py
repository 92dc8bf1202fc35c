"""What the two loaders (steerlang/data/loader.py and steerlang/data/gpu_decode.py) share about
their worker processes: how they start, how many batches they keep ready, and what a worker
hands back when reading a row fails (the error as data, re-raised unchanged in the main
process)."""

from __future__ import annotations

from dataclasses import dataclass

from steerlang.errors import SteerError

PREFETCH_BATCHES = 4  # batches each loader worker keeps ready


def worker_context() -> str | None:
    """Workers are forked: the table views and transforms a pass reads through (the attack
    writing on images, closures) need not be picklable. Without fork (Windows) the main
    process reads."""
    import multiprocessing

    return "fork" if "fork" in multiprocessing.get_all_start_methods() else None


@dataclass
class Failed:
    """An error raised while reading one row, carried back from a worker as data."""

    row: int
    error: BaseException | None
    kind: type[BaseException]
    message: str
    help: str | None

    @classmethod
    def of(cls, row: int, e: BaseException) -> Failed:
        from torch.utils.data import get_worker_info

        help_ = e.help if isinstance(e, SteerError) else None
        message = e.message if isinstance(e, SteerError) else str(e)
        # In the main process the error itself is kept (traceback and cause intact); from a
        # worker only what rebuilds it crosses the process boundary.
        kept = e if get_worker_info() is None else None
        return cls(row, kept, type(e), message, help_)

    def rebuild(self) -> BaseException:
        if self.error is not None:
            return self.error
        if issubclass(self.kind, SteerError):
            return self.kind(self.message, help=self.help)
        try:
            return self.kind(self.message)
        except Exception:  # noqa: BLE001 - an exception type with another constructor
            return RuntimeError(f"{self.kind.__name__}: {self.message}")
