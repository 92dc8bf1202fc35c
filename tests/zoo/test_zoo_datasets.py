"""Zoo datasets: written in the real formats, loadable by the real loaders, cached atomically."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from steerlang.data.formats import load_dataset
from steerlang.errors import DatasetError
from steerlang.facts import SPLIT_NAMES
from steerlang.zoo import ZOO_DATASETS, materialize_dataset, splits
from steerlang.zoo.world import SHAPES, SynthWorld


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("zoo-cache")


def test_waterbirds_groups_per_split() -> None:
    recs = splits.waterbirds_records(SynthWorld(0))
    for split, counts in splits.WATERBIRDS_COUNTS.items():
        c = Counter(2 * r["y"] + r["place"] for r in recs if r["split"] == split)
        assert tuple(c[g] for g in range(4)) == counts
    train = [r for r in recs if r["split"] == "train"]
    assert np.mean([r["y"] == r["place"] for r in train]) == pytest.approx(0.95, abs=0.001)


def test_waterbirds_materialized_in_the_real_layout(cache: Path) -> None:
    root = materialize_dataset("waterbirds", cache)
    header = (root / "metadata.csv").read_text().splitlines()[0]
    assert header == "img_id,img_filename,y,split,place,place_filename"
    table = load_dataset("waterbirds", root)
    assert {s: len(table.split(s)) for s in SPLIT_NAMES} == {"train": 480, "val": 200, "test": 400}
    test = table.split("test")
    y, place = test.column("y"), test.column("place")
    assert Counter((2 * y + place).tolist()) == {0: 100, 1: 100, 2: 100, 3: 100}
    img = test.image(0)
    assert img.size == (64, 64)


def test_celeba_materialized_with_blond_and_male(cache: Path) -> None:
    root = materialize_dataset("celeba", cache)
    assert (root / "list_attr_celeba.txt").is_file()
    assert (root / "list_eval_partition.txt").is_file()
    table = load_dataset("celeba", root)
    train = table.split("train")
    blond, male = train.column("Blond_Hair"), train.column("Male")
    assert blond[male == 1].mean() < 0.05 < blond[male == 0].mean()
    test = table.split("test")
    g = 2 * test.column("Blond_Hair") + test.column("Male")
    assert Counter(g.tolist()) == {0: 100, 1: 100, 2: 100, 3: 100}


def test_typographic_and_shapes(cache: Path) -> None:
    typo = load_dataset("typographic", materialize_dataset("typographic", cache))
    assert typo.classes == sorted(SHAPES)
    assert len(typo) == 6 * sum(splits.SHAPES_COUNTS.values())
    assert np.all(typo.column("label") != typo.column("text"))
    assert Path(typo.paths[0]).name.startswith("label=")
    shapes = load_dataset("imagefolder", materialize_dataset("shapes", cache))
    assert shapes.classes == sorted(SHAPES)
    assert {s: len(shapes.split(s)) for s in SPLIT_NAMES} == {
        s: 6 * n for s, n in splits.SHAPES_COUNTS.items()
    }


def test_materialize_reuses_and_leaves_no_temp(cache: Path) -> None:
    root = materialize_dataset("waterbirds", cache)
    stamp = (root / "metadata.csv").stat().st_mtime_ns
    assert materialize_dataset("waterbirds", cache) == root
    assert (root / "metadata.csv").stat().st_mtime_ns == stamp
    assert not [p for p in root.parent.iterdir() if p.name.startswith(".")]
    assert "-g" in root.name and root.name.endswith("-s0")  # keyed by generator version + seed


def test_materialize_is_deterministic(tmp_path: Path, cache: Path) -> None:
    a = load_dataset("typographic", materialize_dataset("typographic", cache))
    b = load_dataset("typographic", materialize_dataset("typographic", tmp_path))
    assert np.array_equal(np.asarray(a.image(5)), np.asarray(b.image(5)))


def test_unknown_dataset_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no dataset 'waterbird'") as e:
        materialize_dataset("waterbird", tmp_path)
    assert "waterbirds" in (e.value.help or "")
    assert set(ZOO_DATASETS) == {"waterbirds", "celeba", "typographic", "shapes"}
