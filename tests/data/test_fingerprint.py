"""File fingerprints: what keys the statistics and activation caches."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from steerlang.data import load_dataset, make_imagefolder_fixture
from steerlang.data.fingerprint import dataset_fingerprint, files_digest


def test_digest_follows_rows_and_file_sizes(tmp_path: Path) -> None:
    root = make_imagefolder_fixture(tmp_path / "i", n_per_class=2)
    table = load_dataset("imagefolder", root)
    every = np.arange(len(table))
    d = files_digest(table, every)
    assert d == files_digest(table, every) and d != files_digest(table, every[:-1])
    with open(table.path(0), "ab") as f:
        f.write(b"x")
    assert files_digest(table, every) != d
    table.path(1).unlink()
    assert files_digest(table, every)  # a missing file hashes, reading it is what fails


def test_dataset_fingerprint_keys(tmp_path: Path) -> None:
    table = load_dataset("imagefolder", make_imagefolder_fixture(tmp_path / "i", n_per_class=1))
    idx = np.arange(2)
    fp = dataset_fingerprint(None, table, "test", idx)
    assert fp == {
        "name": "imagefolder",
        "format": "imagefolder",
        "split": "test",
        "n": 2,
        "files": files_digest(table, idx),
    }
