"""Parallel image loading: a dataset table's rows as a `torch.utils.data.Dataset`, read through a
`DataLoader` with worker processes, pinned memory and prefetching.

Every pass that embeds images reads them through `steerlang.data.batches.image_batches`, which
hands the work to `loader_batches` here. How many worker processes decode images is one process-
wide setting (`configure(workers=...)`, set from `--workers` or `STEER_WORKERS`; the default
follows the core count, docs/scale.md).

Errors: an unreadable image raises `DatasetError` (naming the file and the row) inside a worker.
A `DataLoader` would re-raise it in the main process as a new exception built from the worker's
formatted traceback, losing the `help` line; so a worker catches every error while reading a row
and hands it back as data (`Failed`), and the main process raises the original error, for the
first failing row in table order, exactly as the single-process path does. The loader's workers
are shut down before the error propagates.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from steerlang.data.row_errors import PREFETCH_BATCHES, Failed, worker_context
from steerlang.errors import SteerError

if TYPE_CHECKING:
    import torch

# Below this many images a pass reads in the main process: starting workers (fork, import,
# first batch) costs more than decoding a few hundred small images.
MIN_IMAGES_FOR_WORKERS = 256
MAX_DEFAULT_WORKERS = 8


@dataclass
class LoadSettings:
    """How passes read images. `workers=None`: from the core count (`default_workers`)."""

    workers: int | None = None
    gpu_decode: bool = False


_SETTINGS = LoadSettings()


def configure(*, workers: int | None = None, gpu_decode: bool | None = None) -> LoadSettings:
    """Set the process-wide loading settings (the `--workers` / `--gpu-decode` flags)."""
    if workers is not None:
        if workers < 0:
            raise SteerError(
                f"--workers must be 0 or more, found {workers}",
                help="0 reads images in the main process; N starts N loader processes",
            )
        _SETTINGS.workers = int(workers)
    if gpu_decode is not None:
        _SETTINGS.gpu_decode = bool(gpu_decode)
    return _SETTINGS


def settings() -> LoadSettings:
    return _SETTINGS


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_workers() -> int:
    """One worker per usable core but one (the main process drives the model), at most 8."""
    return max(0, min(MAX_DEFAULT_WORKERS, usable_cores() - 1))


def workers_for(n_images: int, workers: int | None = None, *, model_on_cpu: bool = False) -> int:
    """Worker processes for a pass over `n_images`: the explicit value, else `STEER_WORKERS`,
    else the configured setting, else the core-count default for passes large enough to pay for
    starting workers. With the model on the CPU the default is 0: its forward already uses every
    core, so loader processes only compete with it (benchmarks/e2e_throughput.py on 2 cores:
    files ÷ preloaded 0.96 read in the main process, 0.76 with one worker)."""
    if workers is not None:
        return max(0, int(workers))
    env = os.environ.get("STEER_WORKERS", "").strip()
    if env:
        try:
            return max(0, int(env))
        except ValueError:
            raise SteerError(
                f"STEER_WORKERS={env!r} is not a whole number",
                help="set STEER_WORKERS to 0 (main process) or a number of loader processes",
            ) from None
    if _SETTINGS.workers is not None:
        return _SETTINGS.workers
    if model_on_cpu:
        return 0
    return default_workers() if n_images >= MIN_IMAGES_FOR_WORKERS else 0


class RowImages:
    """`Dataset` over chosen rows of a table: item j is (row, preprocessed pixels [3, H, W]).

    `table` is anything with `.image(i)`; images that are already tensors pass through. With
    `decode`, items are the file's raw bytes instead (GPU decoding, steerlang/data/gpu_decode.py).
    """

    def __init__(
        self,
        table: Any,
        rows: Sequence[int] | np.ndarray,
        preprocess: Callable[[Any], torch.Tensor] | None,
        transform: Callable[[Any, int], Any] | None = None,
    ) -> None:
        self.table = table
        self.rows = np.asarray(rows, dtype=np.int64)
        self.preprocess = preprocess
        self.transform = transform

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, j: int) -> tuple[int, Any]:
        import torch

        row = int(self.rows[j])
        try:
            im = self.table.image(row)
            if self.transform is not None:
                im = self.transform(im, row)
            if isinstance(im, torch.Tensor) or self.preprocess is None:
                return row, im
            return row, self.preprocess(im)
        except Exception as e:  # noqa: BLE001 - carried to the main process, raised there
            return row, Failed.of(row, e)


def collate_rows(items: list[tuple[int, Any]]) -> tuple[np.ndarray, Any]:
    """(rows, stacked pixels), or (rows, the first failure in row order)."""
    import torch

    rows = np.asarray([r for r, _ in items], dtype=np.int64)
    for _, x in items:
        if isinstance(x, Failed):
            return rows, x
    return rows, torch.stack([x for _, x in items])


def loader_batches(
    table: Any,
    indices: Sequence[int] | np.ndarray,
    preprocess: Callable[[Any], torch.Tensor],
    batch_size: int,
    *,
    device: torch.device | str | None = None,
    transform: Callable[[Any, int], Any] | None = None,
    workers: int | None = None,
    decode_on_device: bool | None = None,
) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
    """Yield (row indices, pixel batch) in the order of `indices`, read by a `DataLoader`.

    With 0 workers the main process reads (the reference path); with N, N processes decode and
    preprocess ahead, each keeping `PREFETCH_BATCHES` batches ready, into pinned memory when the
    batches go to a CUDA device (so the copy overlaps the model).

    `decode_on_device` (default: the `--gpu-decode` setting, on CUDA only) decodes JPEGs and
    preprocesses on `device` (steerlang/data/gpu_decode.py) when the pass reads plain image
    files through an open_clip eval transform; otherwise the PIL path runs.
    """
    import torch
    from torch.utils.data import DataLoader

    idx = np.asarray(indices, dtype=np.int64)
    bs = max(1, int(batch_size))
    on_cpu = device is None or torch.device(device).type == "cpu"
    n_workers = workers_for(len(idx), workers, model_on_cpu=on_cpu)
    n_workers = min(n_workers, max(0, -(-len(idx) // bs)))
    context = worker_context() if n_workers else None
    if context is None:
        n_workers = 0
    to_cuda = device is not None and torch.device(device).type == "cuda"
    if decode_on_device is None:
        decode_on_device = _SETTINGS.gpu_decode and to_cuda
    if decode_on_device and device is not None:
        from steerlang.data.gpu_decode import can_gpu_decode, gpu_decode_batches

        tp = can_gpu_decode(table, preprocess, transform)
        if tp is not None:
            yield from gpu_decode_batches(table, idx, tp, bs, device=device, workers=n_workers)
            return
    loader = DataLoader(
        RowImages(table, idx, preprocess, transform),
        batch_size=bs,
        shuffle=False,
        num_workers=n_workers,
        collate_fn=collate_rows,
        pin_memory=to_cuda,
        prefetch_factor=PREFETCH_BATCHES if n_workers else None,
        persistent_workers=False,
        multiprocessing_context=context,
    )
    it = iter(loader)
    try:
        for rows, batch in it:
            if isinstance(batch, Failed):
                raise batch.rebuild()
            yield rows, batch if device is None else batch.to(device, non_blocking=True)
    finally:
        # Stop the workers now, not when the iterator is collected: an error stops cleanly.
        shutdown = getattr(it, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()
