"""ImageTable: image read errors, column and split names with their did-you-mean hints."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from steerlang.data import (
    load_dataset,
)
from steerlang.errors import DatasetError


def test_missing_and_corrupt_images_name_file_and_row(wb_root: Path, tmp_path: Path) -> None:
    root = shutil.copytree(wb_root, tmp_path / "wb")
    t = load_dataset("waterbirds", root)
    t.path(3).unlink()
    with pytest.raises(DatasetError) as e:
        t.image(3)
    msg = str(e.value)
    assert str(t.path(3)) in msg and "row 3" in msg and "line 5 of" in msg
    assert e.value.help and "metadata" in e.value.help
    t.path(4).write_bytes(b"not a jpeg at all")
    with pytest.raises(DatasetError, match="cannot read image .*row 4"):
        t.image(4)
    data = t.path(5).read_bytes()
    t.path(5).write_bytes(data[: len(data) // 2])  # truncated JPEG
    with pytest.raises(DatasetError, match="row 5"):
        t.image(5)
    assert t.image(6).mode == "RGB"  # other rows still load


def test_unknown_column_did_you_mean(wb_root: Path) -> None:
    t = load_dataset("waterbirds", wb_root)
    with pytest.raises(DatasetError) as e:
        t.column("plce")
    assert "did you mean 'place'" in (e.value.help or "")
    assert "img_filename" in (e.value.help or "")


def test_split_aliases_and_unknown_split(wb_root: Path) -> None:
    t = load_dataset("waterbirds", wb_root)
    assert len(t.split("validation")) == len(t.split("val")) == len(t.split("valid"))
    with pytest.raises(DatasetError) as e:
        t.split("tset")
    assert "did you mean 'test'" in (e.value.help or "")


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width` x `height` pixels (a decompression bomb's
    shape: Pillow checks the claimed size when it opens the file, before decoding)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    idat = zlib.compress(b"\0" * 64, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bomb_is_a_dataset_error(wb_root: Path, tmp_path: Path) -> None:
    root = shutil.copytree(wb_root, tmp_path / "wb")
    t = load_dataset("waterbirds", root)
    bomb = _png_claiming(20_000, 20_000)  # 400 M pixels in a ~100-byte file
    assert len(bomb) < 200
    t.path(2).write_bytes(bomb)
    with pytest.raises(DatasetError) as e:
        t.image(2)
    assert e.value.message.startswith(f"image {t.path(2)} (row 2 (line 4 of ")
    assert "too large to decode safely" in e.value.message
    assert "decompression bomb" in (e.value.help or "")
    assert t.image(3).mode == "RGB"
