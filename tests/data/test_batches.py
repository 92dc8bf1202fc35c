"""Row subsets and pixel batches shared by steer run's passes and SAE training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from steerlang.data import load_dataset, make_imagefolder_fixture
from steerlang.data.batches import image_batches, subset_indices


def test_subset_indices_all_or_a_sorted_seeded_subset() -> None:
    assert subset_indices(5, 0, 0).tolist() == [0, 1, 2, 3, 4]
    assert subset_indices(5, 9, 0).tolist() == [0, 1, 2, 3, 4]
    a = subset_indices(100, 10, 3)
    assert len(a) == 10 and a.tolist() == sorted(a.tolist())
    assert a.tolist() == subset_indices(100, 10, 3).tolist()


def test_image_batches_keep_order_transform_and_pass_tensors(tmp_path: Path) -> None:
    table = load_dataset("imagefolder", make_imagefolder_fixture(tmp_path / "i", n_per_class=2))

    def pre(im: object) -> torch.Tensor:
        return torch.from_numpy(np.asarray(im, dtype=np.float32)).permute(2, 0, 1)

    seen: list[int] = []

    def mark(im: object, row: int) -> object:
        seen.append(row)
        return im

    out = list(image_batches(table, [5, 0, 3], pre, 2, transform=mark))
    assert [c.tolist() for c, _ in out] == [[5, 0], [3]] and seen == [5, 0, 3]
    assert out[0][1].shape[0] == 2 and out[0][1].device.type == "cpu"

    class Pixels:
        def image(self, i: int) -> torch.Tensor:
            return torch.full((3, 2, 2), float(i))

    ((chunk, px),) = image_batches(Pixels(), [1, 2], pre, 8)
    assert chunk.tolist() == [1, 2] and px[:, 0, 0, 0].tolist() == [1.0, 2.0]
