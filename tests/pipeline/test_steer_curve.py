"""Push-matched neurons and the strength curve: the matched neuron edit moves the residual by
exactly the SAE clamp's mean residual norm, per token; the matched sweep equals adding that
push through a hook; the readout scale is recorded; old cache keys are unchanged."""

from __future__ import annotations

import contextlib

import pytest
import torch

from steerlang.errors import SteerError
from steerlang.model.clip import TINY_CONFIG, random_clip
from steerlang.model.sae.core import SAE, SAEConfig, SAEHook
from steerlang.model.sites import add_site_hook
from steerlang.pipeline.steer_pass import resolve_logit_scale
from steerlang.pipeline.steerability import (
    SteerabilityConfig,
    SteerabilityResult,
    SuffixRunner,
    _neuron_pushed,
    _SaeEdit,
    matched_push_norms,
    push_norms,
    sweep,
    text_embeddings,
)

WORDS = ["apple", "river", "stone", "cloud", "tiger", "music", "green", "house"]


def _sae(d: int, m: int, norm: str, activation: str = "relu") -> SAE:
    cfg = SAEConfig(
        d_in=d,
        d_sae=m,
        input_norm=norm,
        activation=activation,
        k=3 if activation == "topk" else None,
        hook=SAEHook(layer=4, site="resid_post"),
    )
    sae = SAE.random(cfg, seed=5)
    if norm == "scalar":
        sae.cfg.norm_scale = 0.4
    with torch.no_grad():  # rows of unequal norm, so the mean over features is not trivial
        sae.W_dec.mul_(torch.linspace(0.5, 2.0, m).unsqueeze(1))
    return sae


@pytest.mark.parametrize(
    ("norm", "activation"),
    [("per_token_ln", "relu"), ("scalar", "relu"), ("none", "topk"), ("per_token_ln", "topk")],
)
@pytest.mark.parametrize("s", [0.0, 5.0, 150.0])
def test_matched_neuron_push_has_the_sae_clamps_mean_residual_norm(
    norm: str, activation: str, s: float
) -> None:
    g = torch.Generator().manual_seed(0)
    n, t, d, m = 3, 5, 16, 24
    h = 3.0 * torch.randn(n, t, d, generator=g) + 1.0
    tok = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0]).view(1, t, 1)  # two tokens out of scope
    sae = _sae(d, m, norm, activation)
    edit = _SaeEdit.prepare(sae, h, "cpu")
    feats = torch.arange(m)
    sae_delta = edit.edited(h, h, 0, feats, s, tok, "cpu") - h.unsqueeze(0)  # [M, n, T, d]
    want = sae_delta.norm(dim=-1).mean(0)  # [n, T]: the SAE clamp's move, mean over features
    push = matched_push_norms(sae, h, s, tok, "cpu")
    torch.testing.assert_close(push, want, rtol=1e-5, atol=1e-5)
    neurons = torch.tensor([0, 7, 15])
    nd = _neuron_pushed(h, neurons, push) - h.unsqueeze(0)  # [3, n, T, d]
    for i, j in enumerate(neurons.tolist()):
        torch.testing.assert_close(nd[i].norm(dim=-1), want, rtol=1e-5, atol=1e-5)
        others = torch.ones(d, dtype=torch.bool)
        others[j] = False
        assert torch.count_nonzero(nd[i][..., others]) == 0  # only coordinate j moves
        assert (nd[i][..., j] >= 0).all()  # pushed in the positive direction
    assert torch.count_nonzero(push[:, [1, 4]]) == 0  # tokens out of scope are untouched


def test_push_norms_compare_the_clamp_with_the_overwrite() -> None:
    g = torch.Generator().manual_seed(2)
    h = torch.randn(4, 6, 8, generator=g)
    sae = _sae(8, 10, "per_token_ln")
    rows = push_norms(sae, h, [2.0, 50.0])
    for r in rows:
        s = r["strength"]
        assert r["neuron_overwrite"] == pytest.approx(float((s - h).abs().mean()), rel=1e-5)
        m = matched_push_norms(sae, h, s, torch.ones(1, 6, 1), "cpu")
        assert r["sae_clamp"] == pytest.approx(float(m.mean()), rel=1e-5)
        assert r["ratio"] == pytest.approx(r["sae_clamp"] / r["neuron_overwrite"])


@pytest.fixture(scope="module")
def handle():  # type: ignore[no-untyped-def]
    return random_clip(TINY_CONFIG, seed=0)


def test_matched_sweep_equals_adding_the_push_through_a_hook(handle) -> None:  # type: ignore[no-untyped-def]
    pixels = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    T = text_embeddings(handle, WORDS)
    sae = _sae(handle.width, 12, "per_token_ln")
    cfg = SteerabilityConfig(strength=4.0, logit_scale=30.0, push="matched")
    res = sweep(
        handle,
        4,
        "resid_post",
        pixels,
        T,
        WORDS,
        match_sae=sae,
        units=[1, 6],
        cfg=cfg,
        rows_per_batch=3,
    )
    assert res.push == "matched" and res.logit_scale == 30.0
    h, _ = SuffixRunner(handle, 4, "resid_post").prepare(pixels)
    push = matched_push_norms(sae, h, 4.0, torch.ones(1, h.shape[1], 1), "cpu")

    def probs(hook: object) -> torch.Tensor:
        ctx = contextlib.nullcontext() if hook is None else _installed(handle, hook)
        with ctx, torch.inference_mode():
            e = handle.encode_image(pixels).float()
        return torch.softmax(30.0 * e @ T.T, -1).mean(0).double()

    p0 = probs(None)
    for i, j in enumerate([1, 6]):

        def add(x: torch.Tensor, j: int = j) -> torch.Tensor:
            x = x.clone()
            x[..., j] += push
            return x

        delta = (probs(add) - p0).numpy()
        assert res.steerability[i] == pytest.approx(float((delta**2).sum()), rel=1e-4, abs=1e-9)
    with pytest.raises(SteerError, match="needs the SAE"):
        sweep(handle, 4, "resid_post", pixels, T, WORDS, units=[1], cfg=cfg)


@contextlib.contextmanager
def _installed(handle, fn):  # type: ignore[no-untyped-def]
    hd = add_site_hook(handle, (4, "resid_post"), fn)
    try:
        yield
    finally:
        hd.remove()


def test_cache_keys_of_overwrite_sweeps_are_unchanged_and_matched_differs() -> None:
    plain = SteerabilityConfig(strength=5.0)
    assert plain.key() == {"strength": 5.0, "n_images": 192, "logit_scale": 100.0, "tokens": "all"}
    assert SteerabilityConfig(strength=5.0, push="matched").key()["push"] == "matched"
    # the source of the scale is not in the key: the same number reads the same sweep
    assert SteerabilityConfig(logit_scale=15.8, logit_scale_source="model").key() == (
        SteerabilityConfig(logit_scale=15.8).key()
    )


def test_logit_scale_resolution() -> None:
    assert resolve_logit_scale(100.0, 15.8) == (100.0, "fixed")
    assert resolve_logit_scale("model", 15.8) == (15.8, "model")
    with pytest.raises(SteerError, match="not loaded"):
        resolve_logit_scale("model", None)
    with pytest.raises(SteerError, match="neither a number"):
        resolve_logit_scale("modle", 15.8)


def test_summary_and_cache_carry_scale_and_push() -> None:
    import numpy as np

    res = SteerabilityResult(
        kind="neuron",
        units=np.arange(3),
        steerability=np.array([0.0, 0.2, 0.5]),
        power=np.zeros(3),
        top_concept=np.array(["a", "b", "b"], dtype=object),
        logit_scale=15.8,
        logit_scale_source="model",
        push="matched",
    )
    s = res.summary()
    assert (s["logit_scale"], s["logit_scale_source"], s["push"]) == (15.8, "model", "matched")
    assert s["fraction_steerable"] == pytest.approx(2 / 3)
    cols, meta = res.to_cache()
    back = SteerabilityResult.from_cache(cols, meta, "k")
    assert (back.logit_scale, back.logit_scale_source, back.push) == (15.8, "model", "matched")
    old = {k: v for k, v in meta.items() if k not in ("logit_scale", "logit_scale_source", "push")}
    assert SteerabilityResult.from_cache(cols, old, "k").push == "overwrite"
