"""Evaluation: metric values against hand-computed ones, label mapping, classifiers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from steerlang.pipeline.evaluate import (
    EvaluationError,
    GroupSpec,
    score,
    task_labels,
    train_linear_probe,
    zero_shot_classifier,
)


def test_group_and_attack_metrics_by_hand() -> None:
    # 8 images, groups 0..3 (two each), labels and predictions chosen by hand.
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    g = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    preds = {
        "baseline": np.array([0, 0, 1, 1, 0, 1, 1, 1]),  # group acc 1, 0, .5, 1
        "steered": np.array([0, 0, 0, 1, 1, 1, 1, 0]),  # group acc 1, .5, 1, .5
        "baseline_attacked": np.array([1, 1, 1, 1, 0, 0, 1, 1]),  # 2/8 correct
        "steered_attacked": np.array([0, 1, 1, 1, 0, 1, 1, 1]),  # 4/8 correct
    }
    words = np.array([1, 1, 1, 1, 0, 0, 0, -1])  # -1: written word is not a class
    spec = GroupSpec(["y", "place"], [2, 2], train_counts=[70, 4, 1, 25])
    m = score(preds, y, g, spec, words, attacked=True)
    b, s = m["baseline"], m["steered"]
    assert b["accuracy"] == pytest.approx(5 / 8) and s["accuracy"] == pytest.approx(6 / 8)
    assert b["per_group"] == [1.0, 0.0, 0.5, 1.0] and s["per_group"] == [1.0, 0.5, 1.0, 0.5]
    assert (b["worst_group"], b["worst_group_id"]) == (0.0, 1)
    assert s["worst_group"] == 0.5
    assert b["average_plain"] == pytest.approx(5 / 8)
    # adjusted: (70*1 + 4*0 + 1*.5 + 25*1) / 100
    assert b["average_adjusted"] == pytest.approx(0.955)
    a = m["attack"]
    assert a["baseline"]["clean"] == pytest.approx(5 / 8)
    assert a["baseline"]["attacked"] == pytest.approx(2 / 8)
    assert a["baseline"]["drop"] == pytest.approx(3 / 8)
    # text rate over the 7 images whose word is a class: baseline_attacked == words at
    # indices 0,1,2,3 (pred 1 == 1) and 4,5 (0 == 0) and 6 (1 vs 0: no) -> 6/7
    assert a["baseline"]["text_rate"] == pytest.approx(6 / 7)
    # recovered = (4/8 - 2/8) / (5/8 - 2/8) = 2/3
    assert a["recovered"] == pytest.approx(2 / 3)
    assert spec.names() == ["y=0,place=0", "y=0,place=1", "y=1,place=0", "y=1,place=1"]


def test_text_rate_on_a_typographic_dataset() -> None:
    y = np.array([0, 1, 2])
    words = np.array([1, 2, 0])
    preds = {"baseline": np.array([1, 1, 0]), "steered": np.array([0, 1, 2])}
    m = score(preds, y, None, None, words, attacked=False)
    assert m["baseline"]["text_rate"] == pytest.approx(2 / 3)
    assert m["steered"]["text_rate"] == 0.0 and m["steered"]["accuracy"] == 1.0


class _Table:
    def __init__(self, cols: dict, meta: dict | None = None) -> None:
        self.cols = cols
        self.meta = meta or {}
        self.name = "t"

    @property
    def columns(self) -> list[str]:
        return list(self.cols)

    def column(self, name: str) -> np.ndarray:
        return np.asarray(self.cols[name])


def test_labels_map_by_name_where_the_dataset_names_its_classes() -> None:
    # Typographic sets / ImageFolder: `label` indexes the dataset's classes, `label_name`
    # names them, and the task's classes are matched by those names in any order.
    t = _Table({"label": [0, 1, 2], "label_name": ["boat", "car", "cat"]})
    assert task_labels(t, "label", ["cat", "boat", "car"]).tolist() == [1, 2, 0]
    with pytest.raises(EvaluationError, match="not one of the task's classes") as e:
        task_labels(t, "label", ["cat", "boat"])
    assert "`label_name`" in str(e.value) and "boat, car, cat" in str(e.value)
    names = _Table({"label_name": ["dog", "cat"]})
    assert task_labels(names, "label_name", ["cat", "dog"]).tolist() == [1, 0]


def test_labels_map_by_index_on_integer_columns_without_names() -> None:
    wb = _Table({"y": [0, 1, 1]})
    assert task_labels(wb, "y", ["landbird", "waterbird"]).tolist() == [0, 1, 1]
    assert task_labels(wb, "y", ["a land bird", "a water bird"]).tolist() == [0, 1, 1]
    with pytest.raises(EvaluationError, match="column `y`.*values 0, 1.*1 classes"):
        task_labels(wb, "y", ["landbird"])


def test_a_class_count_that_does_not_fit_the_declared_values_names_them() -> None:
    wb = _Table({"y": [0, 1, 1]}, meta={"value_names": {"y": ["landbird", "waterbird"]}})
    with pytest.raises(EvaluationError) as e:
        task_labels(wb, "y", ["land", "water", "sky"])
    msg = str(e.value)
    assert "3 classes for column `y`" in msg and "0 landbird, 1 waterbird" in msg


def test_linear_probe_is_deterministic_and_fits_separable_data() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)
    p1 = train_linear_probe(torch.tensor(x), y, 2, seed=3)
    p2 = train_linear_probe(torch.tensor(x), y, 2, seed=3)
    assert torch.equal(p1.weight, p2.weight) and torch.equal(p1.bias, p2.bias)
    assert (p1.predict(torch.tensor(x, dtype=torch.float32)) == y).mean() >= 0.95
    assert p1.info["train_accuracy"] >= 0.95


class _TextHandle:
    """encode_text returns fixed vectors per string (to check prompt ensembling)."""

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        out = []
        for t in texts:
            g = torch.Generator().manual_seed(sum(map(ord, t)))
            out.append(torch.randn(4, generator=g))
        return torch.stack(out)


def test_zero_shot_averages_normalised_prompt_embeddings() -> None:
    h = _TextHandle()
    clf = zero_shot_classifier(h, ["cat", "dog"], ["a photo of a {}.", "a {} in the wild"])
    for i, c in enumerate(["cat", "dog"]):
        e = h.encode_text([f"a photo of a {c}.", f"a {c} in the wild"])
        e = torch.nn.functional.normalize(e, dim=-1).mean(0)
        torch.testing.assert_close(clf.weight[i], torch.nn.functional.normalize(e, dim=-1))
    emb = clf.weight.clone()
    assert clf.predict(emb).tolist() == [0, 1]


def test_shared_prefix_predictions_are_those_of_two_full_forwards(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Evaluation with the shared prefix (steerlang/model/prefix.py) predicts bit for bit what
    two full forwards per batch predict, in fp32."""
    import steerlang.model.prefix as prefix
    from steerlang.model.clip import TINY_CONFIG, random_clip
    from steerlang.model.sae.core import SAE, SAEConfig, SAEHook
    from steerlang.pipeline.evaluate import Classifier, _predictions
    from steerlang.plan import FeatureEdit, InterventionPlan, SitePlan

    h = random_clip(TINY_CONFIG, seed=4)
    g = torch.Generator().manual_seed(4)
    pixels = torch.randn(21, 3, 32, 32, generator=g)

    class Pixels:
        def __len__(self) -> int:
            return len(pixels)

        def image(self, i: int) -> torch.Tensor:
            return pixels[i]

    sae = SAE.random(SAEConfig(d_in=64, d_sae=64, hook=SAEHook(layer=5, site="mlp_out")), seed=1)
    edits = [
        FeatureEdit(feature=f, op="scale", value=6.0, rule="r", rule_index=0)  # type: ignore[arg-type]
        for f in range(0, 64, 3)
    ]
    plan = InterventionPlan(
        recipe="t",
        model="m",
        sites=[SitePlan(layer=5, site="mlp_out", sae="mem", edits=edits)],  # type: ignore[arg-type]
    )
    clf = Classifier("zero_shot", [str(i) for i in range(7)], torch.randn(7, 32, generator=g))

    def predict() -> dict[str, np.ndarray]:
        return _predictions(
            h, plan, {(5, "mlp_out"): sae}, Pixels(), Pixels(), clf,
            batch_size=8, device="cpu", progress=None,
        )  # fmt: skip

    shared = predict()
    monkeypatch.setattr(prefix, "first_hooked_layer", lambda _plan: None)
    full = predict()
    assert set(shared) == set(full) == {
        "baseline", "steered", "baseline_attacked", "steered_attacked"
    }  # fmt: skip
    for k in full:
        assert np.array_equal(shared[k], full[k]), k
    assert not np.array_equal(shared["baseline"], shared["steered"])  # the plan changes answers
