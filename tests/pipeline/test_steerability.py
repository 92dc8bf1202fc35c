"""Steerability: the batched suffix path equals hooks in a full forward, and a planted
steerable feature is found while weak features are not."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from steerlang.model.clip import TINY_CONFIG, random_clip
from steerlang.model.hooks import steer
from steerlang.model.sae.core import SAE, SAEConfig, SAEHook
from steerlang.model.sites import add_site_hook
from steerlang.pipeline.steerability import (
    SteerabilityConfig,
    SuffixRunner,
    load_vocabulary,
    parse_sample,
    sweep,
    text_embeddings,
)
from steerlang.plan import FeatureEdit, InterventionPlan, SitePlan

WORDS = ["apple", "river", "stone", "cloud", "tiger", "music", "green", "house"]


@pytest.fixture(scope="module")
def handle():  # type: ignore[no-untyped-def]
    return random_clip(TINY_CONFIG, seed=0)


@pytest.fixture(scope="module")
def pixels() -> torch.Tensor:
    return torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def _sae(layer: int, site: str, d: int, m: int = 12, norm: str = "none") -> SAE:
    cfg = SAEConfig(d_in=d, d_sae=m, input_norm=norm, hook=SAEHook(layer=layer, site=site))
    return SAE.random(cfg, seed=3)


@pytest.mark.parametrize("site", ["resid_post", "resid_pre", "attn_out", "mlp_out"])
def test_suffix_runner_reproduces_the_full_forward(handle, pixels, site: str) -> None:  # type: ignore[no-untyped-def]
    runner = SuffixRunner(handle, 5, site)
    _, resid = runner.prepare(pixels)
    got = runner.run(resid)
    want = handle.encode_image(pixels)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def _hooked_probs(handle, pixels, T, scale, install):  # type: ignore[no-untyped-def]
    with install():
        e = handle.encode_image(pixels).float()
    return torch.softmax(scale * e @ T.T, -1).mean(0).double()


@pytest.mark.parametrize(
    ("site", "norm"),
    [
        ("resid_post", "none"),
        ("mlp_out", "per_token_ln"),
        ("attn_out", "none"),
        ("resid_pre", "scalar"),
    ],
)
def test_sae_sweep_equals_clamping_through_hooks(handle, pixels, site: str, norm: str) -> None:  # type: ignore[no-untyped-def]
    import contextlib

    sae = _sae(6, site, handle.width, norm=norm)
    if norm == "scalar":
        sae.cfg.norm_scale = 0.5
    T = text_embeddings(handle, WORDS)
    cfg = SteerabilityConfig(strength=7.0, logit_scale=100.0)
    res = sweep(
        handle,
        6,
        site,
        pixels,
        T,
        WORDS,
        sae=sae,
        units=[0, 3, 11],
        cfg=cfg,
        promote_words=["river"],
        rows_per_batch=8,
    )  # forces feature and image chunks
    p0 = _hooked_probs(handle, pixels, T, 100.0, contextlib.nullcontext)
    for i, f in enumerate([0, 3, 11]):
        plan = InterventionPlan(
            recipe="t",
            model="m",
            sites=[
                SitePlan(
                    layer=6,
                    site=site,
                    sae="x",
                    edits=[FeatureEdit(feature=f, op="clamp", value=7.0, rule="r", rule_index=0)],
                )
            ],
        )
        ps = _hooked_probs(
            handle, pixels, T, 100.0, lambda plan=plan: steer(handle, plan, {(6, site): sae})
        )
        delta = (ps - p0).numpy()
        assert res.steerability[i] == pytest.approx(float((delta**2).sum()), rel=1e-4, abs=1e-9)
        assert res.power[i] == pytest.approx(float(delta.max()), rel=1e-4, abs=1e-7)
        assert res.top_concept[i] == WORDS[int(delta.argmax())]
        assert res.promotes["river"][i] == pytest.approx(float(delta[1]), rel=1e-4, abs=1e-7)


def test_neuron_sweep_equals_overwriting_the_coordinate(handle, pixels) -> None:  # type: ignore[no-untyped-def]
    import contextlib

    T = text_embeddings(handle, WORDS)
    cfg = SteerabilityConfig(strength=3.0)
    res = sweep(handle, 4, "resid_post", pixels, T, WORDS, units=[2, 9], cfg=cfg, rows_per_batch=5)
    p0 = _hooked_probs(handle, pixels, T, 100.0, contextlib.nullcontext)
    for i, j in enumerate([2, 9]):

        def overwrite(h: torch.Tensor, j: int = j) -> torch.Tensor:
            h = h.clone()
            h[..., j] = 3.0
            return h

        @contextlib.contextmanager
        def install():  # type: ignore[no-untyped-def]
            hd = add_site_hook(handle, (4, "resid_post"), overwrite)
            try:
                yield
            finally:
                hd.remove()

        delta = (_hooked_probs(handle, pixels, T, 100.0, install) - p0).numpy()
        assert res.steerability[i] == pytest.approx(float((delta**2).sum()), rel=1e-4, abs=1e-9)


def test_planted_steerable_feature_is_found(handle, pixels) -> None:  # type: ignore[no-untyped-def]
    """Last block, so only ln_post and proj follow the edit: feature 5's decoder row is built
    so that LN(row) @ proj points at the text embedding of "tiger"; every other feature has a
    tiny decoder row. At s = 150 feature 5 must be steerable with top concept "tiger" and the
    others not (S_f <= 0.10)."""
    d = handle.width
    T = text_embeddings(handle, WORDS)
    sae = _sae(11, "resid_post", d, m=16)
    proj = handle.model.visual.proj.detach()
    target = T[WORDS.index("tiger")]
    u = proj @ target
    u = u - u.mean()
    with torch.no_grad():
        sae.W_dec.mul_(1e-4)
        sae.W_dec[5] = u / u.norm()
    res = sweep(
        handle,
        11,
        "resid_post",
        pixels,
        T,
        WORDS,
        sae=sae,
        cfg=SteerabilityConfig(),
        promote_words=["tiger"],
    )
    assert res.steerable.tolist() == [i == 5 for i in range(16)]
    assert res.top_concept[5] == "tiger"
    assert res.steerability[5] > 0.5
    assert res.promotes["tiger"][5] == pytest.approx(res.power[5])
    assert np.all(np.delete(res.steerability, 5) < 0.01)
    assert res.fraction_steerable == pytest.approx(1 / 16)
    cols = res.columns(16)
    assert cols["top_concept"][5] == "tiger" and cols["steerability"][5] == res.steerability[5]


def test_vocabulary_and_sampling() -> None:
    words = load_vocabulary("default", extra=["zzzplanted"])
    assert len(words) >= 5000 and words[0] == "the" and words[-1] == "zzzplanted"
    assert len(set(words)) == len(words)
    assert parse_sample("1/20", 100).tolist() == list(range(0, 100, 20))
    assert parse_sample("3:6", 100).tolist() == [3, 4, 5]
    from steerlang.pipeline.steerability import SteerabilityError

    with pytest.raises(SteerabilityError):
        parse_sample("2/20", 100)
    with pytest.raises(SteerabilityError, match="out of range"):
        parse_sample("5,100", 100)
