"""JPEG decoding and preprocessing on the device (steerlang/data/gpu_decode.py): checked on the
CPU against open_clip's PIL path to the stated tolerance; the CUDA (nvJPEG) test is skipped
without a GPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from test_loader import _preprocess

from steerlang.data import load_dataset
from steerlang.data.batches import image_batches
from steerlang.data.loader import loader_batches
from steerlang.errors import DatasetError


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real-size JPEGs (500x375, as in Waterbirds) in an ImageFolder."""
    from PIL import Image

    root = tmp_path_factory.mktemp("jpg") / "i"
    rng = np.random.default_rng(1)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for k in range(3):
            walk = np.cumsum(rng.normal(0, 9, (375, 500, 3)), axis=1) + 128
            noise = rng.random((375, 500, 3)) * 255
            pixels = walk if k % 2 else noise
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
                root / c / f"{k}.jpg", quality=90
            )
    return root


def _open_clip_eval(size: int) -> object:
    import open_clip

    return open_clip.image_transform(size, is_train=False)


def test_tensor_preprocessing_matches_open_clip_within_the_stated_tolerance(jpegs: Path) -> None:
    from steerlang.data.gpu_decode import MAX_ABS_DIFF, MEAN_ABS_DIFF, TensorPreprocess

    pre = _open_clip_eval(224)
    tp = TensorPreprocess.from_transform(pre)
    assert tp is not None and tp.size == 224 and tp.crop == (224, 224) and tp.bicubic
    table = load_dataset("imagefolder", jpegs)
    ref = list(image_batches(table, range(len(table)), pre, 4, workers=0, device="cpu"))
    got = list(
        loader_batches(
            table, range(len(table)), pre, 4, workers=1, device="cpu", decode_on_device=True
        )
    )
    std = torch.tensor(tp.std).view(1, 3, 1, 1)
    for (ra, a), (rb, b) in zip(ref, got, strict=True):
        assert ra.tolist() == rb.tolist() and a.shape == b.shape
        diff = ((a - b) * std).abs()  # back in [0, 1] pixel units
        assert float(diff.max()) <= MAX_ABS_DIFF
        assert float(diff.mean()) <= MEAN_ABS_DIFF


def test_unknown_transforms_fall_back_to_the_pil_path() -> None:
    from steerlang.data.gpu_decode import TensorPreprocess

    assert TensorPreprocess.from_transform(lambda im: im) is None
    assert TensorPreprocess.from_transform(_preprocess()) is not None  # ToTensor is fine
    from torchvision import transforms as T

    odd = T.Compose([T.Resize(64), T.CenterCrop(64), T.Grayscale(), T.ToTensor()])
    assert TensorPreprocess.from_transform(odd) is None


def test_a_corrupt_jpeg_decoded_on_the_device_names_the_file_and_row(
    jpegs: Path, tmp_path: Path
) -> None:
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(jpegs, root)
    table = load_dataset("imagefolder", root)
    bad = Path(table.path(4))
    bad.write_bytes(bad.read_bytes()[:300])
    pre = _open_clip_eval(64)
    with pytest.raises(DatasetError) as err:
        list(loader_batches(table, range(6), pre, 3, device="cpu", decode_on_device=True))
    assert str(bad) in str(err.value) and "row 4" in str(err.value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (nvJPEG decoding)")
def test_gpu_decoding_matches_open_clip_on_cuda(jpegs: Path) -> None:
    from steerlang.data.gpu_decode import CUDA_MAX_ABS_DIFF, TensorPreprocess

    pre = _open_clip_eval(224)
    tp = TensorPreprocess.from_transform(pre)
    assert tp is not None
    table = load_dataset("imagefolder", jpegs)
    ref = torch.cat([b for _, b in image_batches(table, range(6), pre, 3, workers=0)])
    got = torch.cat(
        [
            b.cpu()
            for _, b in loader_batches(
                table, range(6), pre, 3, device="cuda", decode_on_device=True
            )
        ]
    )
    std = torch.tensor(tp.std).view(1, 3, 1, 1)
    assert float(((ref - got) * std).abs().max()) <= CUDA_MAX_ABS_DIFF
