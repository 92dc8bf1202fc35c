"""Parallel loading (steerlang/data/loader.py): worker processes read the same pixels as the main
process, and a corrupt image read in a worker raises the same named error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from steerlang.data import load_dataset, make_imagefolder_fixture
from steerlang.data.batches import image_batches
from steerlang.data.loader import (
    configure,
    default_workers,
    settings,
    workers_for,
)
from steerlang.errors import DatasetError, SteerError


def _preprocess() -> object:
    """open_clip's eval transform at the zoo CLIP's size (PIL resize, crop, normalise)."""
    from torchvision import transforms as T

    return T.Compose(
        [
            T.Resize(64, interpolation=T.InterpolationMode.BICUBIC),
            T.CenterCrop(64),
            T.ToTensor(),
            T.Normalize((0.481, 0.458, 0.408), (0.269, 0.261, 0.276)),
        ]
    )


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_imagefolder_fixture(tmp_path_factory.mktemp("imgs") / "i", n_per_class=4)


def test_workers_give_the_same_pixels_in_the_same_order(folder: Path) -> None:
    table = load_dataset("imagefolder", folder)
    pre = _preprocess()
    order = [7, 1, 11, 0, 5, 3, 9]
    main = list(image_batches(table, order, pre, 3, workers=0))
    par = list(image_batches(table, order, pre, 3, workers=2))
    assert [r.tolist() for r, _ in main] == [[7, 1, 11], [0, 5, 3], [9]]
    assert [r.tolist() for r, _ in par] == [r.tolist() for r, _ in main]
    for (_, a), (_, b) in zip(main, par, strict=True):
        assert a.dtype == b.dtype == torch.float32
        assert torch.equal(a, b)


def _corrupt(folder: Path, tmp_path: Path) -> tuple[object, int, Path]:
    import shutil

    row = 6
    # a truncated copy of the folder, so the module fixture stays intact
    root = tmp_path / "copy"
    shutil.copytree(folder, root)
    table = load_dataset("imagefolder", root)
    bad = Path(table.path(row))
    bad.write_bytes(bad.read_bytes()[:40])
    return table, row, bad


@pytest.mark.parametrize("workers", [0, 2])
def test_a_corrupt_image_names_the_file_and_row_from_a_worker(
    folder: Path, tmp_path: Path, workers: int
) -> None:
    table, row, bad = _corrupt(folder, tmp_path)
    pre = _preprocess()
    with pytest.raises(DatasetError) as err:
        for _ in image_batches(table, range(len(table)), pre, 2, workers=workers):
            pass
    msg = str(err.value)
    assert str(bad) in msg and f"row {row}" in msg
    assert err.value.help is not None and "corrupt or truncated" in err.value.help
    # the same message whichever process read it
    with pytest.raises(DatasetError) as ref:
        table.image(row)
    assert err.value.message == ref.value.message


def test_the_first_failing_row_in_table_order_is_reported(folder: Path, tmp_path: Path) -> None:
    table, row, _ = _corrupt(folder, tmp_path)
    other = Path(table.path(row + 1))
    other.write_bytes(b"not an image")
    pre = _preprocess()
    with pytest.raises(DatasetError, match=f"row {row} "):
        list(image_batches(table, range(len(table)), pre, 4, workers=2))


def test_worker_counts_follow_flag_env_and_size(monkeypatch: pytest.MonkeyPatch) -> None:
    saved = settings().workers
    try:
        monkeypatch.delenv("STEER_WORKERS", raising=False)
        configure(workers=None)
        settings().workers = None
        assert workers_for(10) == 0  # small passes stay in the main process
        assert workers_for(10_000) == default_workers()
        # A model on the CPU uses every core itself: the default reads in the main process.
        assert workers_for(10_000, model_on_cpu=True) == 0
        assert workers_for(10_000, 3, model_on_cpu=True) == 3
        assert workers_for(10, 3) == 3
        configure(workers=2)
        assert workers_for(10) == 2
        monkeypatch.setenv("STEER_WORKERS", "1")
        assert workers_for(10_000) == 1
        monkeypatch.setenv("STEER_WORKERS", "many")
        with pytest.raises(SteerError, match="STEER_WORKERS"):
            workers_for(1)
        with pytest.raises(SteerError, match="--workers"):
            configure(workers=-1)
    finally:
        settings().workers = saved


def test_other_errors_in_a_worker_keep_their_type(folder: Path) -> None:
    table = load_dataset("imagefolder", folder)

    def boom(im: object, row: int) -> object:
        if row == 2:
            raise ValueError(f"bad transform at {row}")
        return im

    pre = _preprocess()
    with pytest.raises(ValueError, match="bad transform at 2"):
        list(image_batches(table, np.arange(len(table)), pre, 2, transform=boom, workers=2))
