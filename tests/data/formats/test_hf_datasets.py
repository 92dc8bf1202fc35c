"""The `hf_datasets` format: Hugging Face datasets saved to disk or in the local cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from steerlang.data import detect_format, load_dataset
from steerlang.errors import DatasetError

datasets = pytest.importorskip("datasets", reason="the hf_datasets format needs `datasets`")


def _images(n: int, seed: int) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)) for _ in range(n)]


def _dataset(n: int, seed: int, **extra: Any) -> Any:
    feats = datasets.Features(
        {
            "img": datasets.Image(),
            "label": datasets.ClassLabel(names=["cat", "dog"]),
            "place": datasets.Value("int64"),
            "caption": datasets.Value("string"),
            "score": datasets.Value("float32"),
            "tags": datasets.Sequence(datasets.Value("string")),
            **{k: v[0] for k, v in extra.items()},
        }
    )
    return datasets.Dataset.from_dict(
        {
            "img": _images(n, seed),
            "label": [i % 2 for i in range(n)],
            "place": [(i // 2) % 2 for i in range(n)],
            "caption": [f"c{i}" for i in range(n)],
            "score": [i / 4 for i in range(n)],
            "tags": [["a"] for _ in range(n)],
            **{k: v[1] for k, v in extra.items()},
        },
        features=feats,
    )


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, Any]:
    dd = datasets.DatasetDict({"train": _dataset(4, 0), "validation": _dataset(3, 1)})
    dd.save_to_disk(str(tmp_path / "saved"))
    return tmp_path / "saved", dd


def test_dataset_dict_on_disk(saved: tuple[Path, Any], tmp_path: Path) -> None:
    root, dd = saved
    assert detect_format(root) == "hf_datasets"
    t = load_dataset("hf_datasets", root, name="pets", cache_dir=tmp_path / "cache")
    assert t.format == "hf_datasets" and len(t) == 7
    # scalar columns kept (the list column `tags` is not a column a concept can compare)
    assert t.columns == ["label", "label_name", "place", "caption", "score", "split"]
    assert t.column("split").tolist() == [0] * 4 + [1] * 3
    assert t.column("label").tolist() == [0, 1, 0, 1, 0, 1, 0]
    assert t.column("label_name").tolist()[:2] == ["cat", "dog"]
    assert t.meta["value_names"] == {"label": ["cat", "dog"]}
    assert t.column("caption").tolist()[6] == "c2"
    # images decode to the pixels that were saved (PNG: lossless)
    for i, (split, k) in enumerate([("train", 0), ("train", 3), ("validation", 2)]):
        row = [0, 3, 6][i]
        want = np.asarray(dd[split][k]["img"].convert("RGB"))
        assert np.array_equal(np.asarray(t.image(row)), want)
    val = t.split("val")
    assert len(val) == 3 and val.column("caption").tolist() == ["c0", "c1", "c2"]
    # the image files are written once: a second load reuses them
    before = {p: Path(p).stat().st_mtime_ns for p in t.paths}
    t2 = load_dataset("hf_datasets", root, name="pets", cache_dir=tmp_path / "cache")
    assert t2.paths == t.paths
    assert {p: Path(p).stat().st_mtime_ns for p in t2.paths} == before
    assert t2.sources == t.sources and len(t.sources) == 2


def test_single_dataset_with_split_column_and_options(tmp_path: Path) -> None:
    ds = _dataset(5, 2, part=(datasets.Value("string"), ["train", "test", "val", "train", "2"]))
    ds.save_to_disk(str(tmp_path / "one"))
    t = load_dataset(
        "hf_datasets",
        tmp_path / "one",
        image_column="img",
        label_column="label",
        group_columns=["label", "place"],
        split_column="part",
        cache_dir=tmp_path / "cache",
    )
    assert t.column("split").tolist() == [0, 2, 1, 0, 2]
    assert t.classes == ["cat", "dog"] and t.meta["group_columns"] == ["label", "place"]
    no_splits = load_dataset("hf_datasets", tmp_path / "one", cache_dir=tmp_path / "cache")
    assert not no_splits.has_splits


def test_column_and_split_errors(saved: tuple[Path, Any], tmp_path: Path) -> None:
    root, _ = saved
    cache = tmp_path / "cache"
    with pytest.raises(DatasetError) as e:
        load_dataset("hf_datasets", root, image_column="image", cache_dir=cache)
    assert "image_column 'image' is not a column" in e.value.message
    assert "did you mean 'img'" in (e.value.help or "")
    with pytest.raises(DatasetError) as e:
        load_dataset("hf_datasets", root, group_columns=["plce"], cache_dir=cache)
    assert "did you mean 'place'" in (e.value.help or "")
    with pytest.raises(DatasetError, match="group column 'caption' must hold whole numbers"):
        load_dataset("hf_datasets", root, group_columns=["caption"], cache_dir=cache)
    datasets.DatasetDict({"train": _dataset(2, 0), "extra": _dataset(2, 1)}).save_to_disk(
        str(tmp_path / "odd")
    )
    with pytest.raises(DatasetError) as e:
        load_dataset("hf_datasets", tmp_path / "odd", cache_dir=cache)
    assert "split 'extra' is not a train, val or test split" in e.value.message
    no_image = datasets.Dataset.from_dict({"x": [1, 2]})
    no_image.save_to_disk(str(tmp_path / "noimg"))
    with pytest.raises(DatasetError, match=r"no Image column among x"):
        load_dataset("hf_datasets", tmp_path / "noimg", cache_dir=cache)
    with pytest.raises(DatasetError, match="not a folder written by datasets' save_to_disk"):
        load_dataset("hf_datasets", tmp_path, cache_dir=cache)


def test_cache_reference_never_downloads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(DatasetError) as e:
        load_dataset("hf_datasets", "hf:steerlang-test/not-cached", cache_dir=tmp_path / "c")
    assert "is not in the local Hugging Face cache" in e.value.message
    assert "steerlang never downloads" in (e.value.help or "")


def test_hf_reference_loads_through_load_dataset_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    offline_before = datasets.config.HF_HUB_OFFLINE
    """`hf:REF` goes through `datasets.load_dataset(REF)` with the Hub switched off: a local
    data folder (here an imagefolder layout, as `hf download --repo-type dataset` leaves one)
    loads, with its splits and class names."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hfcache"))
    for rel, colour in [("train/cat/a.png", 10), ("train/dog/b.png", 20), ("test/dog/c.png", 30)]:
        p = tmp_path / "repo" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4), (colour, 0, 0)).save(p)
    t = load_dataset("hf_datasets", f"hf:{tmp_path / 'repo'}", cache_dir=tmp_path / "c")
    assert t.column("split").tolist() == [0, 0, 2]
    assert t.column("label_name").tolist() == ["cat", "dog", "dog"]
    assert [t.image(i).getpixel((0, 0))[0] for i in range(3)] == [10, 20, 30]
    assert list(t.sources)[0].startswith(f"hf:{tmp_path / 'repo'}#")
    assert datasets.config.HF_HUB_OFFLINE == offline_before  # switched back


def test_hf_name_from_the_local_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`hf:ORG/NAME` loads what `load_dataset("ORG/NAME")` left in the cache, with the Hub off.

    The cache entry is laid out as a Hub download leaves it
    (`<cache>/<org>___<name>/default/0.0.0/<hash>/<name>-train.arrow` + `dataset_info.json`),
    built here from a local Parquet file so the test needs no network."""
    import glob
    import shutil

    cache = tmp_path / "hfcache"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(cache))
    src = _dataset(3, 4)
    src.to_parquet(str(tmp_path / "src.parquet"))
    datasets.load_dataset(
        "parquet", data_files={"train": str(tmp_path / "src.parquet")}, cache_dir=str(cache)
    )
    (built,) = glob.glob(str(cache / "parquet" / "*" / "*" / "*" / "parquet-train.arrow"))
    target = cache / "steertest___pets" / "default" / "0.0.0" / Path(built).parent.name
    target.mkdir(parents=True)
    shutil.copy(Path(built).parent / "dataset_info.json", target)
    shutil.copy(built, target / "pets-train.arrow")
    t = load_dataset("hf_datasets", "hf:steertest/pets", cache_dir=tmp_path / "c")
    assert t.column("split").tolist() == [0, 0, 0]
    assert t.column("caption").tolist() == ["c0", "c1", "c2"]
    for i in range(3):
        assert np.array_equal(np.asarray(t.image(i)), np.asarray(src[i]["img"].convert("RGB")))
