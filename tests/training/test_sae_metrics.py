"""SAE metrics against hand-computed values, and the splice evaluation on a tiny CLIP."""

from __future__ import annotations

import pytest
import torch

from steerlang.model.sae.core import SAE, SAEConfig, SAEHook
from steerlang.model.zero_shot import class_embeddings
from steerlang.training.sae_metrics import (
    ReconAccumulator,
    evaluate_saes,
    reconstruction_metrics,
)


def _relu_sae(tokens: str = "all") -> SAE:
    """d=2, M=3: latents 0/1 = relu(x), latent 2 never fires; x_hat = relu(x)."""
    cfg = SAEConfig(d_in=2, d_sae=3, hook=SAEHook(layer=0, tokens=tokens))  # type: ignore[arg-type]
    sae = SAE(cfg)
    with torch.no_grad():
        sae.W_enc.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
        sae.W_dec.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    return sae


# two images x three tokens (CLS first) x two dims
ACTS = torch.tensor(
    [
        [[1.0, -1.0], [2.0, 0.0], [0.0, 3.0]],
        [[-1.0, -2.0], [1.0, 1.0], [0.0, 0.0]],
    ]
)


def test_metrics_equal_hand_computed_values() -> None:
    m = reconstruction_metrics(_relu_sae(), ACTS, dense_threshold=0.4)
    # errors x - relu(x): [0,-1] and [-1,-2] -> SSE 6; per-dim variance sums 5.5 + 89/6
    assert m.n_tokens == 6
    assert m.fvu == pytest.approx(18 / 61, abs=1e-12)
    assert m.explained_variance == pytest.approx(1 - 18 / 61, abs=1e-12)
    assert m.mse == pytest.approx(1.0)
    assert m.l0 == pytest.approx(5 / 6)
    assert m.l0_cls == pytest.approx(0.5)
    assert m.l0_patches == pytest.approx(1.0)
    assert m.dead_fraction == pytest.approx(1 / 3)  # latent 2
    assert m.dense_fraction == pytest.approx(1 / 3)  # latent 0 fires on 3/6 > 0.4
    assert m.freq == pytest.approx([0.5, 2 / 6, 0.0])


def test_fvu_uses_per_dimension_mean_not_a_global_scalar() -> None:
    """Constant per-dimension offsets are not variance: a global-mean R² would count them."""
    sae = _relu_sae()
    x = torch.tensor([[10.0, 0.0], [12.0, 0.0], [10.0, 2.0], [12.0, 2.0]])
    with torch.no_grad():
        sae.b_dec.copy_(torch.tensor([0.0, -1.0]))  # x_hat = relu(x) - (0, 1): error (0, 1)
    m = reconstruction_metrics(sae, x)
    # per-dim variance: 4 * 1 + 4 * 1 = 8; SSE = 4 tokens * 1 = 4
    assert m.fvu == pytest.approx(0.5)


def test_streaming_chunks_equal_one_pass() -> None:
    sae = _relu_sae()
    whole = reconstruction_metrics(sae, ACTS)
    chunked = reconstruction_metrics(sae, [ACTS[:1], ACTS[1:]])
    assert chunked.fvu == pytest.approx(whole.fvu, abs=1e-12)
    assert chunked.l0_cls == whole.l0_cls and chunked.dead_fraction == whole.dead_fraction
    flat = reconstruction_metrics(sae, ACTS.reshape(-1, 2))
    assert flat.fvu == pytest.approx(whole.fvu, abs=1e-12)
    assert flat.l0_cls is None and flat.l0 == whole.l0


def test_token_scope_of_the_sae_selects_tokens() -> None:
    patches = reconstruction_metrics(_relu_sae("patches"), ACTS)
    assert patches.n_tokens == 4 and patches.l0_cls is None
    assert patches.l0 == pytest.approx(1.0)
    cls = ReconAccumulator(_relu_sae("cls"))
    cls.update(ACTS)
    r = cls.result()
    assert r.n_tokens == 2 and r.l0_patches is None and r.l0 == pytest.approx(0.5)


def _identity_sae(d: int, layer: int) -> SAE:
    """relu(x) - relu(-x) = x: a perfect reconstruction (d_sae = 2d)."""
    sae = SAE(SAEConfig(d_in=d, d_sae=2 * d, hook=SAEHook(layer=layer)))
    eye = torch.eye(d)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([eye, -eye], dim=1))
        sae.W_dec.copy_(torch.cat([eye, -eye], dim=0))
    return sae.requires_grad_(False)


def _hook_count(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_splice_of_a_perfect_sae_recovers_everything(tiny_clip, tiny_pixels) -> None:  # noqa: ANN001
    classes = ["cat", "dog", "car"]
    labels = torch.arange(tiny_pixels.shape[0]) % 3
    hooks_before = _hook_count(tiny_clip.model)
    with torch.no_grad():
        clf = class_embeddings(tiny_clip.encode_text, classes)
        logits = tiny_clip.model.encode_image(tiny_pixels, normalize=True) @ clf.T
    acc_clean = float((logits.argmax(-1) == labels).float().mean())
    res = evaluate_saes(
        tiny_clip,
        [_identity_sae(64, 2), _relu_sae_wide(64, 5)],
        tiny_pixels,
        labels=labels,
        classes=classes,
        batch_size=20,
    )
    perfect = res["blocks.2.hook_resid_post"]
    assert perfect.recon.fvu == pytest.approx(0.0, abs=1e-10)
    assert perfect.splice is not None
    assert perfect.splice.acc_clean == pytest.approx(acc_clean)
    assert perfect.splice.acc_spliced == pytest.approx(acc_clean)
    assert perfect.splice.kl_spliced == pytest.approx(0.0, abs=1e-6)
    assert perfect.splice.acc_zero != acc_clean  # so "recovered" is defined here
    assert perfect.splice.recovered == pytest.approx(1.0)
    lossy = res["blocks.5.hook_resid_post"]
    assert lossy.recon.fvu > 0.1 and lossy.splice is not None and lossy.splice.kl_spliced > 0
    assert _hook_count(tiny_clip.model) == hooks_before  # every splice hook removed


def _relu_sae_wide(d: int, layer: int) -> SAE:
    """Keeps only the positive part of x: a lossy reconstruction."""
    sae = SAE(SAEConfig(d_in=d, d_sae=d, hook=SAEHook(layer=layer)))
    with torch.no_grad():
        sae.W_enc.copy_(torch.eye(d))
        sae.W_dec.copy_(torch.eye(d))
    return sae.requires_grad_(False)


def test_zero_ablation_matches_a_manual_hook(tiny_clip, tiny_pixels) -> None:  # noqa: ANN001
    from steerlang.model.sites import add_site_hook

    classes = ["cat", "dog", "car"]
    labels = torch.arange(tiny_pixels.shape[0]) % 3
    res = evaluate_saes(
        tiny_clip, [_relu_sae_wide(64, 3)], tiny_pixels, labels=labels, classes=classes
    )
    clf = class_embeddings(tiny_clip.encode_text, classes)
    h = add_site_hook(tiny_clip.model, "blocks.3.hook_resid_post", torch.zeros_like)
    try:
        with torch.no_grad():
            logits = tiny_clip.model.encode_image(tiny_pixels, normalize=True) @ clf.T
    finally:
        h.remove()
    splice = res["blocks.3.hook_resid_post"].splice
    assert splice is not None
    assert splice.acc_zero == pytest.approx(float((logits.argmax(-1) == labels).float().mean()))


def test_hooks_are_removed_when_the_forward_raises(tiny_clip, tiny_pixels) -> None:  # noqa: ANN001
    class Boom(SAE):
        calls = 0

        def encode_with_ctx(self, x):  # noqa: ANN001, ANN202
            raise RuntimeError("boom")

    sae = Boom(SAEConfig(d_in=64, d_sae=64, hook=SAEHook(layer=1)))
    before = _hook_count(tiny_clip.model)
    with pytest.raises(RuntimeError, match="boom"):
        evaluate_saes(
            tiny_clip, [sae], tiny_pixels, labels=torch.zeros(48, dtype=torch.long), classes=["a"]
        )
    assert _hook_count(tiny_clip.model) == before


def test_too_few_labels_is_a_clear_error(tiny_clip, tiny_pixels) -> None:  # noqa: ANN001
    from steerlang.errors import DatasetError

    with pytest.raises(DatasetError, match="labels"):
        evaluate_saes(
            tiny_clip, [_relu_sae_wide(64, 1)], tiny_pixels, labels=[0, 1], classes=["a", "b"]
        )
