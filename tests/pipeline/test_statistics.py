"""The streaming statistics accumulator against direct numpy computation on tiny inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from steerlang.pipeline.statistics import FeatureStatsAccumulator, evaluate_concepts
from steerlang.pipeline.stats_table import StatisticsError, StatsTable
from steerlang.plan import And, Column, Compare, ConceptDef, Not, Num, Str


def _reference(acts: np.ndarray, c: np.ndarray, pooling: str) -> dict[str, np.ndarray]:
    pooled = acts.mean(axis=1) if pooling == "mean" else acts.max(axis=1)
    out = {
        "mean": pooled.mean(0),
        "freq": (acts > 0).mean(axis=(0, 1)),
        "max": acts.max(axis=(0, 1)),
        "mean:c": pooled[c].mean(0),
        "mean_not:c": pooled[~c].mean(0),
    }
    with np.errstate(invalid="ignore", divide="ignore"):  # the dead feature has no variance
        corr = np.array(
            [np.corrcoef(pooled[:, f], c.astype(float))[0, 1] for f in range(acts.shape[2])]
        )
    out["corr:c"] = np.nan_to_num(corr, nan=0.0)
    return out


@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_streaming_matches_direct_computation(pooling: str) -> None:
    rng = np.random.default_rng(0)
    acts = np.maximum(rng.normal(size=(23, 5, 6)), 0.0).astype(np.float32)
    acts[:, :, 5] = 0.0  # a dead feature: corr defined as 0
    c = rng.random(23) < 0.4
    acc = FeatureStatsAccumulator(6, ["c"], pooling=pooling)
    for lo in range(0, 23, 4):  # uneven batches exercise the parallel merge
        acc.update(torch.from_numpy(acts[lo : lo + 4]), torch.from_numpy(c[lo : lo + 4, None]))
    got = acc.finalize()
    want = _reference(acts.astype(np.float64), c, pooling)
    for k, v in want.items():
        np.testing.assert_allclose(got[k], v, rtol=1e-6, atol=1e-9, err_msg=k)
    np.testing.assert_allclose(got["corr_not:c"], -want["corr:c"], rtol=1e-6, atol=1e-9)
    assert got["corr:c"][5] == 0.0 and got["freq"][5] == 0.0


def test_hand_computed_tiny_case() -> None:
    # 4 images, 2 tokens, 1 feature. pooled (mean) = [1, 3, 0, 2]; concept = [1, 1, 0, 0].
    acts = torch.tensor([[[2.0], [0.0]], [[3.0], [3.0]], [[0.0], [0.0]], [[1.0], [3.0]]])
    c = torch.tensor([[1], [1], [0], [0]])
    acc = FeatureStatsAccumulator(1, ["c"])
    acc.update(acts, c)
    got = acc.finalize()
    assert got["mean"][0] == pytest.approx(1.5)
    assert got["freq"][0] == pytest.approx(5 / 8)
    assert got["max"][0] == 3.0
    assert got["mean:c"][0] == pytest.approx(2.0)
    assert got["mean_not:c"][0] == pytest.approx(1.0)
    # Pearson r: cov = mean((p-1.5)(c-0.5)) = ((-0.5)(0.5)+(1.5)(0.5)+(-1.5)(-0.5)+(0.5)(-0.5))/4
    #          = 0.25; std_p = sqrt(1.25), std_c = 0.5 -> r = 0.25 / (sqrt(1.25) * 0.5)
    assert got["corr:c"][0] == pytest.approx(0.25 / (1.25**0.5 * 0.5))


def test_concepts_from_columns() -> None:
    cols = {"place": [0, 1, 1, 0], "y": ["1", "1", "0", "0"], "name": ["a", "b", "a", "c"]}
    concepts = {
        "water": ConceptDef(
            name="water", expr=Compare(op="==", left=Column(name="place"), right=Num(value=1))
        ),
        "wb_land": ConceptDef(
            name="wb_land",
            expr=And(
                args=[
                    Compare(op="==", left=Column(name="y"), right=Num(value=1)),
                    Not(arg=Compare(op="==", left=Column(name="place"), right=Num(value=1))),
                ]
            ),
        ),
        "is_a": ConceptDef(
            name="is_a", expr=Compare(op="==", left=Column(name="name"), right=Str(value="a"))
        ),
    }
    out = evaluate_concepts(concepts, lambda n: cols[n], 4)
    assert out["water"].tolist() == [False, True, True, False]
    assert out["wb_land"].tolist() == [True, False, False, False]
    assert out["is_a"].tolist() == [True, False, True, False]


def test_table_rejects_wrong_length_column() -> None:
    with pytest.raises(StatisticsError):
        StatsTable(3, {"mean": np.zeros(2)})


def test_token_scopes_of_a_tower_without_cls() -> None:
    """A tower without a CLS token (SigLIP) has only patches: `patches` covers every token and
    `cls` is a clear error, never a silently dropped first patch."""
    from steerlang.errors import SteerError
    from steerlang.pipeline.statistics import _scope_slice

    a = torch.arange(2 * 5 * 3, dtype=torch.float32).reshape(2, 5, 3)
    assert torch.equal(_scope_slice(a, "patches", has_cls=False), a)
    assert torch.equal(_scope_slice(a, "patches", has_cls=True), a[:, 1:])
    assert torch.equal(_scope_slice(a, "cls", has_cls=True), a[:, :1])
    with pytest.raises(SteerError, match="no CLS token"):
        _scope_slice(a, "cls", has_cls=False)
