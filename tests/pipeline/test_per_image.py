"""Per-image results (steerlang/pipeline/per_image.py): predictions.csv's rows and the
examples the report shows, from a hand-built evaluation result."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
from PIL import Image

from steerlang.data.table import ImageTable
from steerlang.pipeline.evaluate import EvalResult
from steerlang.pipeline.per_image import PREDICTION_COLUMNS, examples, predictions_table


def _table(tmp_path: Path, n: int) -> ImageTable:
    paths = []
    for i in range(n):
        p = tmp_path / "imgs" / f"{i}.png"
        p.parent.mkdir(exist_ok=True)
        Image.new("RGB", (200, 100), (10 * i, 0, 0)).save(p)
        paths.append(str(p))
    return ImageTable(
        name="t",
        format="waterbirds",
        root=tmp_path,
        paths=paths,
        data={"y": [0, 0, 1, 1, 1, 0], "place": [0, 1, 0, 0, 1, 1]},
    )


def _result(tmp_path: Path, attacked: bool = False) -> EvalResult:
    table = _table(tmp_path, 6)
    y = np.array([0, 0, 1, 1, 1, 0])
    base = np.array([0, 1, 0, 0, 1, 0])  # rows 1, 2, 3 wrong
    steer = np.array([1, 0, 1, 0, 1, 0])  # row 0 broken, rows 1, 2 fixed
    gids = 2 * y + np.array([0, 1, 0, 0, 1, 1])
    preds = {"baseline": base, "steered": steer}
    margins = {
        "baseline": np.array([0.5, -0.2, -0.1, -0.3, 0.4, 0.2]),
        "steered": np.array([-0.1, 0.3, 0.6, -0.2, 0.5, 0.1]),
    }
    view = None
    if attacked:
        from steerlang.data.attack import attack_table

        view = attack_table(table, classes=["landbird", "waterbird"], label_column="y", seed=0)
        preds |= {"baseline_attacked": 1 - y, "steered_attacked": y}
        margins |= {"baseline_attacked": -np.ones(6), "steered_attacked": np.ones(6)}
    return EvalResult(
        n=6,
        labels=y,
        groups=gids,
        preds=preds,
        attack_words=None,
        metrics={},
        group_names=["y=0,place=0", "y=0,place=1", "y=1,place=0", "y=1,place=1"],
        margins=margins,
        table=table,
        attacked_view=view,
        classes=["landbird", "waterbird"],
        group_labels=["landbird, water=no", "landbird, water=yes", "waterbird, water=no", "wb"],
    )


def test_one_row_per_image_with_predictions_margins_and_groups(tmp_path: Path) -> None:
    ev = _result(tmp_path)
    cols = predictions_table(ev, split="test", group_columns=["y", "place"])
    assert list(cols) == [*PREDICTION_COLUMNS, "y", "place"]
    assert all(len(v) == 6 for v in cols.values())
    assert cols["image"][:2] == ["imgs/0.png", "imgs/1.png"]  # relative to the dataset root
    assert cols["label"] == [
        "landbird",
        "landbird",
        "waterbird",
        "waterbird",
        "waterbird",
        "landbird",
    ]
    assert cols["baseline_pred"][1] == "waterbird" and cols["steered_pred"][1] == "landbird"
    assert cols["baseline_margin"][1] == -0.2 and cols["steered_margin"][1] == 0.3
    assert cols["group"][2] == "waterbird, water=no" and cols["place"] == [0, 1, 0, 0, 1, 1]
    assert set(cols["attacked"]) == {0} and set(cols["split"]) == {"test"}


def test_attacked_copies_get_their_own_rows(tmp_path: Path) -> None:
    ev = _result(tmp_path, attacked=True)
    cols = predictions_table(ev, split="test", group_columns=["y", "place"])
    assert len(cols["image"]) == 12 and cols["attacked"] == [0] * 6 + [1] * 6
    assert cols["image"][6:] == cols["image"][:6]
    # The word written is a wrong class: the other one of two.
    assert cols["attack_word"][6:] == [
        "waterbird" if v == "landbird" else "landbird" for v in cols["label"][:6]
    ]
    assert cols["baseline_margin"][6:] == [-1.0] * 6


def _png(uri: str) -> Image.Image:
    assert uri.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


def test_examples_show_fixed_and_broken_images_per_group(tmp_path: Path) -> None:
    ex = examples(_result(tmp_path))
    by = {g["group"]: g for g in ex["fixed_broken"]}
    assert [i["image"] for i in by["landbird, water=no"]["broken"]] == ["imgs/0.png"]
    assert [i["image"] for i in by["landbird, water=yes"]["fixed"]] == ["imgs/1.png"]
    wb = by["waterbird, water=no"]
    assert (wb["n"], wb["n_fixed"], wb["n_broken"]) == (2, 1, 0)
    assert [i["image"] for i in wb["fixed"]] == ["imgs/2.png"]  # row 3 stays wrong
    item = wb["fixed"][0]
    assert (item["label"], item["baseline"], item["steered"]) == (
        "waterbird",
        "landbird",
        "waterbird",
    )
    assert max(_png(item["thumb"]).size) == 96  # a thumbnail, aspect kept
    assert ex["attack_pairs"] == []


def test_examples_are_capped_and_the_largest_margin_change_comes_first(tmp_path: Path) -> None:
    ev = _result(tmp_path)
    ev.groups = np.zeros(6, dtype=np.int64)
    ev.group_labels = ["all"]
    ex = examples(ev, per_kind=1)
    assert [i["image"] for i in ex["fixed_broken"][0]["fixed"]] == ["imgs/2.png"]  # +0.7 > +0.5


def test_typographic_runs_pair_each_attacked_copy_with_its_original(tmp_path: Path) -> None:
    ex = examples(_result(tmp_path, attacked=True))
    pairs = ex["attack_pairs"]
    assert len(pairs) == 4
    for p in pairs:
        assert p["word"] != p["label"]
        assert p["baseline_attacked"] == p["word"] and p["steered_attacked"] == p["label"]
        assert _png(p["thumb"]).tobytes() != _png(p["attacked_thumb"]).tobytes()
