"""steerlang/files.py: atomic writes and the modes of what we write.

Files and folders steerlang writes (cache entries, SAE folders, dataset copies, schemas) get the
modes the user's umask gives, although they are first written under a temporary name that
`tempfile` creates 0600 / 0700.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from steerlang import files


@pytest.fixture(params=[0o022, 0o027, 0o077])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_current_umask_reads_the_process_umask(umask: int) -> None:
    assert files.current_umask() == umask
    assert files.file_mode() == 0o666 & ~umask
    assert files.dir_mode() == 0o777 & ~umask


def test_atomic_writes_follow_the_umask(tmp_path: Path, umask: int) -> None:
    files.atomic_write_text(tmp_path / "a.txt", "x")
    files.atomic_write_json(tmp_path / "b.json", {"k": 1})
    assert _mode(tmp_path / "a.txt") == 0o666 & ~umask
    assert _mode(tmp_path / "b.json") == 0o666 & ~umask
    assert (tmp_path / "b.json").read_text() == '{\n  "k": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.json"]  # no temp left


def test_temp_dir_and_path_writers_follow_the_umask(tmp_path: Path, umask: int) -> None:
    d = files.temp_dir(tmp_path, ".x.")
    assert d.is_dir() and _mode(d) == 0o777 & ~umask

    def private_writer(tmp: Path) -> None:  # like safetensors: a fresh 0600 file
        tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, b"data")
        os.close(fd)

    out = files.atomic_write_with(tmp_path / "w.bin", private_writer)
    assert out.read_bytes() == b"data" and _mode(out) == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([d.name, "w.bin"])


def test_a_failing_path_writer_leaves_the_old_file(tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(b"old")

    def broken(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        files.atomic_write_with(tmp_path / "w.bin", broken)
    assert [p.name for p in tmp_path.iterdir()] == ["w.bin"]
    assert (tmp_path / "w.bin").read_bytes() == b"old"


def test_cache_entries_follow_the_umask(tmp_path: Path, umask: int) -> None:
    from steerlang.pipeline.cache import TableCache

    cache = TableCache(tmp_path)
    cache.store("stats", "k1", {"mean": np.arange(4.0)}, {"what": "test"})
    entry = next(p for p in (tmp_path / "stats").iterdir() if not p.name.startswith("."))
    assert _mode(entry) == 0o777 & ~umask
    for f in entry.iterdir():
        assert _mode(f) == 0o666 & ~umask, f.name


@pytest.mark.parametrize("fmt", ["steerlang", "saelens"])
def test_saved_sae_folders_follow_the_umask(tmp_path: Path, umask: int, fmt: str) -> None:
    import torch

    from steerlang.model.sae.core import SAE, SAEConfig
    from steerlang.model.sae.load import save_sae

    torch.manual_seed(0)
    sae = SAE(SAEConfig(d_in=8, d_sae=16))
    out = save_sae(sae, tmp_path / "sae", format=fmt)
    written = [p for p in Path(out).iterdir()]
    assert written and all(_mode(p) == 0o666 & ~umask for p in written), [
        (p.name, oct(_mode(p))) for p in written
    ]
