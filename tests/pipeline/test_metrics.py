"""Metric values against hand-computed ones on tiny inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from steerlang.data import load_dataset, make_waterbirds_fixture
from steerlang.pipeline.metrics import (
    accuracy,
    adjusted_average_accuracy,
    attack_metrics,
    fraction_recovered,
    group_ids,
    group_metrics,
    metrics_dict,
    per_group_accuracy,
    table_group_ids,
)

# Waterbirds-style toy: groups 2*y + place = [0, 1, 0, 3, 2, 3, 1, 3]
Y = np.array([0, 0, 0, 1, 1, 1, 0, 1])
PLACE = np.array([0, 1, 0, 1, 0, 1, 1, 1])
PRED = np.array([0, 1, 0, 1, 1, 0, 0, 1])  # correct: 1 0 1 1 1 0 1 1
TRAIN = [3498, 184, 56, 1057]  # Waterbirds train group counts


def test_accuracy_and_groups_by_hand() -> None:
    assert accuracy(PRED, Y) == 0.75
    g, n = group_ids([Y, PLACE])
    assert g.tolist() == [0, 1, 0, 3, 2, 3, 1, 3] and n == 4
    acc = per_group_accuracy(PRED, Y, g, n)
    assert acc.tolist() == [1.0, 0.5, 1.0, pytest.approx(2 / 3)]
    assert float(np.nanmin(acc)) == 0.5


def test_adjusted_average_weights_by_train_counts() -> None:
    g, _ = group_ids([Y, PLACE])
    # (3498*1 + 184*0.5 + 56*1 + 1057*2/3) / 4795 = (13052/3) / 4795
    assert adjusted_average_accuracy(PRED, Y, g, TRAIN) == pytest.approx(13052 / 14385, abs=1e-15)
    # a group with no evaluated images is left out and the weights renormalised
    assert adjusted_average_accuracy(PRED, Y, g, [1, 1, 1, 1, 10]) == pytest.approx(
        (1 + 0.5 + 1 + 2 / 3) / 4
    )


def test_group_metrics_bundle_and_empty_groups() -> None:
    g, _ = group_ids([Y, PLACE])
    m = group_metrics(PRED, Y, g, 5, TRAIN + [0])
    assert m.counts == [2, 2, 1, 3, 0]
    assert math.isnan(m.per_group[4]) and m.worst_group == 0.5 and m.worst_group_id == 1
    assert m.accuracy == m.average_plain == 0.75
    assert m.average_adjusted == pytest.approx(13052 / 14385)
    d = metrics_dict(m.to_dict())
    assert d["per_group"][4] is None and d["worst_group"] == 0.5
    # the empty group is named, so the worst group (over 4 of 5) is known to be incomplete
    assert m.empty == [4] and not m.complete and d["empty"] == [4]
    full = group_metrics(PRED, Y, g, 4, TRAIN)
    assert full.empty == [] and full.complete and full.worst_group == m.worst_group


def test_mixed_radix_three_columns_and_fixed_radices() -> None:
    a, b, c = np.array([1, 0, 1]), np.array([2, 1, 0]), np.array([1, 0, 0])
    g, n = group_ids([a, b, c])
    assert g.tolist() == [(1 * 3 + 2) * 2 + 1, (0 * 3 + 1) * 2 + 0, (1 * 3 + 0) * 2 + 0]
    assert n == 12
    # a split without the value 1 in its second column still numbers groups like the others
    g2, n2 = group_ids([np.array([1, 1]), np.array([0, 0])], radices=[2, 2])
    assert g2.tolist() == [2, 2] and n2 == 4
    with pytest.raises(ValueError, match="outside"):
        group_ids([np.array([2])], radices=[2])


def test_table_group_ids_on_waterbirds_fixture(tmp_path) -> None:
    t = load_dataset("waterbirds", make_waterbirds_fixture(tmp_path, scale=400, image_size=16))
    g, n = table_group_ids(t, ["y", "place"])
    assert n == 4
    assert (g == 2 * t.column("y") + t.column("place")).all()


def test_attack_metrics_by_hand() -> None:
    y = [0, 1, 2, 0]
    clean = [0, 1, 2, 1]  # 3/4
    attacked = [2, 1, 0, 1]  # 1/4
    m = attack_metrics(clean, attacked, y, attack_labels=[2, 0, 0, 1])
    assert (m.clean, m.attacked, m.drop, m.n) == (0.75, 0.25, 0.5, 4)
    assert m.text_rate == 0.75  # rows 0, 2, 3 predict the written word
    m2 = attack_metrics(clean, attacked, y, attack_labels=[2, -1, 0, 1])
    assert m2.text_rate == 1.0  # -1: word outside the class list is not counted
    assert fraction_recovered(0.25, 0.6, 0.75) == pytest.approx(0.7)
    assert math.isnan(fraction_recovered(0.5, 0.6, 0.5))


def test_input_checks() -> None:
    with pytest.raises(ValueError, match="3 entries but y has 2"):
        accuracy([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="integers"):
        accuracy([0.5], [0])
    assert math.isnan(accuracy([], []))
