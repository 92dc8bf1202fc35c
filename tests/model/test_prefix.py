"""Shared-prefix evaluation (steerlang/model/prefix.py): the steered forward that replays the
recorded prefix gives bit-for-bit the embeddings of a full steered forward, in fp32, for every
site kind and both block layouts, and the blocks before the first steered one run once."""

from __future__ import annotations

import pytest
import torch
from test_hooks_steer import make_sae

from steerlang.facts import SITE_KINDS
from steerlang.model.clip import TINY_CONFIG, random_clip
from steerlang.model.hooks import steer
from steerlang.model.prefix import SharedPrefix, first_hooked_layer
from steerlang.plan import FeatureEdit, InterventionPlan, SitePlan


def _plan(*sites: tuple[int, str]) -> InterventionPlan:
    def edits(k: int) -> list[FeatureEdit]:
        return [
            FeatureEdit(feature=f, op=op, value=v, tokens="all", rule="r", rule_index=0)  # type: ignore[arg-type]
            for f, op, v in [(k, "scale", 4.0), (k + 7, "suppress", None), (k + 3, "add", 2.0)]
        ]

    return InterventionPlan(
        recipe="t",
        model="m",
        sites=[
            SitePlan(layer=layer, site=site, sae="mem", edits=edits(i))  # type: ignore[arg-type]
            for i, (layer, site) in enumerate(sites)
        ],
    )


@pytest.fixture(scope="module")
def models() -> dict[bool, object]:
    return {bf: random_clip(TINY_CONFIG, seed=1, batch_first=bf) for bf in (True, False)}


@pytest.fixture(scope="module")
def pixels() -> torch.Tensor:
    return torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize(
    ("batch_first", "site"), [(True, k) for k in SITE_KINDS] + [(False, "resid_pre")]
)
def test_replayed_prefix_is_bit_identical(
    batch_first: bool, site: str, pixels: torch.Tensor, models: dict[bool, object]
) -> None:
    h = models[batch_first]
    plan = _plan((4, site), (9, "resid_post"))
    saes = {(4, site): make_sae(4, site), (9, "resid_post"): make_sae(9, seed=2)}
    assert first_hooked_layer(plan) == 4
    with torch.inference_mode():
        base_full = h.encode_image(pixels)
        with steer(h, plan, saes):
            steered_full = h.encode_image(pixels)
        shared = SharedPrefix(h, first_hooked_layer(plan))
        with shared.capture():
            base = h.encode_image(pixels)
        with steer(h, plan, saes), shared.replay():
            steered = h.encode_image(pixels)
    assert torch.equal(base, base_full)
    assert torch.equal(steered, steered_full)
    assert not torch.equal(steered, base)  # the plan does change the embeddings
    # the model is restored: a plain forward afterwards is the baseline again
    with torch.inference_mode():
        assert torch.equal(h.encode_image(pixels), base_full)


def test_prefix_blocks_run_once_per_batch(pixels: torch.Tensor, models: dict) -> None:
    h = models[True]
    plan = _plan((6, "resid_post"))
    saes = {(6, "resid_post"): make_sae(6)}
    calls = [0] * h.n_layers
    blocks = h.visual.transformer.resblocks
    hooks = [
        blk.register_forward_hook(lambda *_a, i=i: calls.__setitem__(i, calls[i] + 1))
        for i, blk in enumerate(blocks)
    ]
    try:
        shared = SharedPrefix(h, first_hooked_layer(plan))
        with torch.inference_mode():
            with shared.capture():
                h.encode_image(pixels)
            with steer(h, plan, saes), shared.replay():
                h.encode_image(pixels)
    finally:
        for hk in hooks:
            hk.remove()
    assert calls == [1] * 6 + [2] * (h.n_layers - 6)


def test_no_sharing_at_layer_zero_or_without_a_capture(pixels: torch.Tensor, models: dict) -> None:
    h = models[True]
    assert first_hooked_layer(_plan((0, "resid_pre"), (5, "mlp_out"))) == 0
    assert first_hooked_layer(InterventionPlan(recipe="t", model="m", sites=[])) is None
    assert not SharedPrefix(h, 0).active and not SharedPrefix(h, None).active
    shared = SharedPrefix(h, 3)
    blocks = list(h.visual.transformer.resblocks)
    with shared.replay():  # nothing recorded: nothing replaced
        assert list(h.visual.transformer.resblocks) == blocks
    with torch.inference_mode():
        with shared.capture():
            h.encode_image(pixels)
        with shared.replay(), pytest.raises(RuntimeError, match="same pixels"):
            h.encode_image(pixels[:2])
    assert list(h.visual.transformer.resblocks) == blocks  # restored after the error
