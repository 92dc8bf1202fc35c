"""Fingerprints: what keys the statistics and sweep caches (image files, the table files the
loader read, column values, preprocessing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from steerlang.data import load_dataset, make_imagefolder_fixture
from steerlang.data.fingerprint import (
    columns_digest,
    dataset_fingerprint,
    files_digest,
    preprocess_fingerprint,
    sources_digest,
)
from steerlang.data.fixtures import relabel_waterbirds
from steerlang.files import sha256_file


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
        "sources": [],  # labels come from the folder names, which `files` covers
    }


def test_relabelled_metadata_of_the_same_size_changes_the_fingerprint(wb_root: Path) -> None:
    meta = wb_root / "metadata.csv"
    table = load_dataset("waterbirds", wb_root)
    # The loader records the table file it read, and splits and subsets keep the record.
    assert table.sources == {str(meta): sha256_file(meta)}
    test = table.split("test")
    assert test.sources == table.sources and test.subset([0, 1]).sources == table.sources
    idx = np.arange(len(test))
    before = dataset_fingerprint(None, test, "test", idx)
    assert before["sources"] == [["metadata.csv", sha256_file(meta)]]
    original = meta.read_bytes()
    try:
        relabel_waterbirds(meta.parent, ("y",))
        relabelled = load_dataset("waterbirds", wb_root).split("test")
        after = dataset_fingerprint(None, relabelled, "test", idx)
        # Same images, same sizes: the old key saw no difference; the table file's bytes do.
        assert after["files"] == before["files"]
        assert after["sources"] != before["sources"]
        assert columns_digest({"y": relabelled.column("y")}) != columns_digest(
            {"y": test.column("y")}
        )
    finally:
        meta.write_bytes(original)


def test_celeba_and_disentangling_record_their_table_files(
    celeba_root: Path, tmp_path: Path
) -> None:
    from steerlang.data import make_disentangling_fixture

    celeba = load_dataset("celeba", celeba_root)
    names = sorted(Path(p).name for p in celeba.sources)
    assert len(names) == 2 and names[0].startswith("list_attr_celeba")
    assert names[1].startswith("list_eval_partition")
    dis = load_dataset("disentangling", make_disentangling_fixture(tmp_path / "d"))
    assert "annotations.json" in {Path(p).name for p in dis.sources}
    assert all(sha256_file(p) == h for p, h in {**celeba.sources, **dis.sources}.items())
    assert sources_digest(celeba) == sorted(
        [Path(p).relative_to(celeba.root).as_posix(), h] for p, h in celeba.sources.items()
    )


def test_columns_digest_follows_values_not_mapping_order() -> None:
    a = {"place": np.array([0, 1, 1]), "name": np.array(["x", "y", "z"], dtype=object)}
    assert columns_digest(a) == columns_digest(dict(reversed(list(a.items()))))
    assert columns_digest(a) != columns_digest({**a, "place": np.array([1, 0, 1])})
    assert columns_digest(a) != columns_digest({**a, "name": np.array(["x", "y", "w"])})
    # The same values as text are a different column (a parser change misses, never hits).
    assert columns_digest({"c": np.array([1])}) != columns_digest({"c": np.array(["1"])})


def test_preprocess_fingerprint_names_size_and_normalisation() -> None:
    from torchvision import transforms

    def t(size: int, mean: float) -> object:
        return transforms.Compose(
            [transforms.Resize(size), transforms.Normalize((mean,) * 3, (0.5,) * 3), lambda x: x]
        )

    fp = preprocess_fingerprint(t(64, 0.5))
    assert fp == preprocess_fingerprint(t(64, 0.5))  # no memory address in it
    assert "0x" not in fp and "64" in fp
    assert fp != preprocess_fingerprint(t(32, 0.5))
    assert fp != preprocess_fingerprint(t(64, 0.4))
