"""JPEG decoding and preprocessing on the GPU (`--gpu-decode`), matching open_clip's eval
transform to a stated tolerance.

On a GPU machine PIL decoding is the bottleneck of every pass (a 500x375 JPEG costs milliseconds
on one core; the model's forward costs microseconds per image). Here loader workers only read
the files' bytes; `torchvision.io.decode_jpeg(device="cuda")` decodes a whole batch with nvJPEG
and `TensorPreprocess` resizes (shortest side, bicubic, antialiased), centre-crops and
normalises on the same device.

The same code runs on the CPU (`device="cpu"`), which is how the tests check it against the
PIL path: pixels in [0, 1] before normalisation differ by at most `MAX_ABS_DIFF` (the resize
kernels round differently; measured: 1/255 on 500x375 JPEGs) and by `MEAN_ABS_DIFF` on
average; on CUDA nvJPEG's IDCT differs from libjpeg-turbo's, so the CUDA test allows
`CUDA_MAX_ABS_DIFF` (docs/scale.md). Files that are not JPEG (PNG fixtures, the zoo) are decoded
on the CPU by `torchvision.io.decode_image` and preprocessed on the device in the same way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from steerlang.data.row_errors import PREFETCH_BATCHES, Failed, worker_context
from steerlang.errors import DatasetError

if TYPE_CHECKING:
    import torch

MAX_ABS_DIFF = 2 / 255  # per pixel, in [0, 1] units before normalisation (CPU decode)
MEAN_ABS_DIFF = 0.1 / 255
# nvJPEG's IDCT is not libjpeg-turbo's: the CUDA test allows this much (not measured here).
CUDA_MAX_ABS_DIFF = 6 / 255

_JPEG_MAGIC = b"\xff\xd8\xff"


@dataclass(frozen=True)
class TensorPreprocess:
    """open_clip's eval transform (Resize shortest side -> CenterCrop -> RGB -> Normalize) on
    uint8 image tensors, on whatever device they live on."""

    size: int
    crop: tuple[int, int]
    bicubic: bool
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def from_transform(cls, preprocess: Any) -> TensorPreprocess | None:
        """Read the parameters from an open_clip eval `Compose`; None when it holds steps this
        class does not reproduce (then the CPU path is used)."""
        from torchvision import transforms as T

        steps = getattr(preprocess, "transforms", None)
        if not steps:
            return None
        size = crop = mean = std = None
        bicubic = True
        for t in steps:
            name = type(t).__name__
            if isinstance(t, T.Resize):
                if t.max_size is not None or not isinstance(t.size, int | Sequence):
                    return None
                s = t.size if isinstance(t.size, int) else list(t.size)
                if isinstance(s, list):
                    if len(s) != 1:
                        return None
                    s = s[0]
                size = int(s)
                if t.interpolation == T.InterpolationMode.BILINEAR:
                    bicubic = False
                elif t.interpolation != T.InterpolationMode.BICUBIC:
                    return None
            elif isinstance(t, T.CenterCrop):
                c = t.size
                crop = (int(c[0]), int(c[1])) if isinstance(c, Sequence) else (int(c), int(c))
            elif isinstance(t, T.Normalize):
                mean = tuple(float(v) for v in t.mean)
                std = tuple(float(v) for v in t.std)
            elif name in ("MaybeConvertMode", "MaybeToTensor", "ToTensor") or (
                name == "function" or getattr(t, "__name__", "") == "_convert_to_rgb"
            ):
                continue
            else:
                return None
        if size is None or crop is None or mean is None or std is None:
            return None
        return cls(size, crop, bicubic, mean, std)  # type: ignore[arg-type]

    def resize_crop(self, img: torch.Tensor) -> torch.Tensor:
        """uint8 [3, H, W] -> uint8 [3, crop] (shortest side to `size`, centre crop)."""
        from torchvision.transforms.v2 import InterpolationMode
        from torchvision.transforms.v2 import functional as F

        mode = InterpolationMode.BICUBIC if self.bicubic else InterpolationMode.BILINEAR
        img = F.resize(img, [self.size], interpolation=mode, antialias=True)
        return F.center_crop(img, list(self.crop))

    def normalize(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 [N, 3, h, w] -> float32 normalised pixels."""
        import torch

        x = batch.to(torch.float32).div_(255.0)
        mean = torch.tensor(self.mean, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
        return x.sub_(mean).div_(std)

    def __call__(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        import torch

        return self.normalize(torch.stack([self.resize_crop(_rgb(im)) for im in images]))


def _rgb(img: torch.Tensor) -> torch.Tensor:
    """uint8 [C, H, W] with C in 1, 3, 4 -> [3, H, W] (grey repeated, alpha dropped)."""
    if img.shape[0] == 1:
        return img.expand(3, -1, -1)
    if img.shape[0] == 4:
        return img[:3]
    return img


def _unreadable(table: Any, row: int, path: Path, e: BaseException) -> DatasetError:
    """The same error `ImageTable.image` raises for an unreadable file."""
    return DatasetError(
        f"cannot read image {path} ({table.where(row)} of dataset '{table.name}'): {e}",
        help="the file is corrupt or truncated; re-extract it from the original "
        "archive, or remove its row from the metadata",
    )


class RowBytes:
    """`Dataset` over chosen rows: item j is (row, the file's bytes as a uint8 tensor)."""

    def __init__(self, table: Any, rows: Sequence[int] | np.ndarray) -> None:
        self.table = table
        self.rows = np.asarray(rows, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, j: int) -> tuple[int, Any]:
        import torch

        row = int(self.rows[j])
        path = Path(self.table.path(row))
        if not path.is_file():
            try:
                self.table.image(row)  # raises the table's own "image not found"
            except Exception as e:  # noqa: BLE001 - carried to the main process
                return row, Failed.of(row, e)
        try:
            data = path.read_bytes()
        except OSError as e:
            return row, Failed.of(row, _unreadable(self.table, row, path, e))
        return row, torch.frombuffer(bytearray(data), dtype=torch.uint8)


def _collate(items: list[tuple[int, Any]]) -> tuple[np.ndarray, list[Any]]:
    return np.asarray([r for r, _ in items], dtype=np.int64), [x for _, x in items]


def decode_batch(
    table: Any, rows: np.ndarray, data: list[torch.Tensor], device: torch.device
) -> list[torch.Tensor]:
    """Decode one batch of file bytes: JPEGs together on `device`, others on the CPU; a file
    that fails is reported by row, as `ImageTable.image` reports it."""
    import warnings

    with warnings.catch_warnings():
        # torchvision 0.29 marks its decoders deprecated in favour of TorchCodec; they are
        # still the ones with nvJPEG batch decoding.
        warnings.simplefilter("ignore", DeprecationWarning)
        from torchvision.io import ImageReadMode, decode_image, decode_jpeg

    out: list[Any] = [None] * len(data)
    jpeg = [i for i, d in enumerate(data) if bytes(d[:3].tolist()) == _JPEG_MAGIC]
    if jpeg:
        try:
            dec = decode_jpeg([data[i] for i in jpeg], mode=ImageReadMode.RGB, device=device)
            for i, im in zip(jpeg, dec, strict=True):
                out[i] = im
        except RuntimeError:
            pass  # one bad file fails the batch: decode one by one below to name it
    for i, d in enumerate(data):
        if out[i] is not None:
            continue
        row = int(rows[i])
        try:
            out[i] = decode_image(d, mode=ImageReadMode.RGB).to(device)
        except RuntimeError as e:
            raise _unreadable(table, row, Path(table.path(row)), e) from e
    return out


def gpu_decode_batches(
    table: Any,
    indices: Sequence[int] | np.ndarray,
    tp: TensorPreprocess,
    batch_size: int,
    *,
    device: torch.device | str,
    workers: int = 0,
) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
    """(rows, normalised pixels on `device`) in the order of `indices`: workers read bytes,
    the device decodes and preprocesses."""
    import torch
    from torch.utils.data import DataLoader

    dev = torch.device(device)
    idx = np.asarray(indices, dtype=np.int64)
    context = worker_context() if workers else None
    workers = workers if context is not None else 0
    loader = DataLoader(
        RowBytes(table, idx),
        batch_size=max(1, int(batch_size)),
        shuffle=False,
        num_workers=workers,
        collate_fn=_collate,
        prefetch_factor=PREFETCH_BATCHES if workers else None,
        multiprocessing_context=context,
    )
    it = iter(loader)
    try:
        for rows, data in it:
            for x in data:
                if isinstance(x, Failed):
                    raise x.rebuild()
            yield rows, tp(decode_batch(table, rows, data, dev))
    finally:
        shutdown = getattr(it, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()


def can_gpu_decode(table: Any, preprocess: Any, transform: Any) -> TensorPreprocess | None:
    """The tensor preprocessing when this pass can decode on the device: a plain table of
    image files (no attack view writing on the images), and an open_clip eval transform."""
    if transform is not None or not hasattr(table, "path") or not hasattr(table, "where"):
        return None
    if type(table).__name__ != "ImageTable":
        return None
    return TensorPreprocess.from_transform(preprocess)
