"""SAELens files written by sae-lens itself load here and match its encode/decode; files we
write load in sae-lens; our defaults table is sae-lens' own. Skipped when sae-lens is absent
(it is in the `test` extra, so CI runs these)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from steerlang.model.sae.core import SAE, SAEConfig, SAEHook
from steerlang.model.sae.load import load_sae, save_sae
from steerlang.model.sae.saelens import SAELENS_DEFAULTS

sae_lens = pytest.importorskip(
    "sae_lens", reason="sae-lens is not installed (pip install sae-lens)"
)

D, M = 16, 40
HOOK = "blocks.3.hook_resid_post"


def _randomise(sae: torch.nn.Module, seed: int) -> None:
    """Random values in every parameter (decoder rows with norms far from 1), so that the
    bias terms, the norm rescaling and the thresholds all matter."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sae.named_parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=g))
            if name == "W_dec":
                p.mul_(0.2 + 3 * torch.rand(p.shape[0], 1, generator=g))
            if name == "threshold":
                p.copy_(0.05 + 0.2 * torch.rand(p.shape, generator=g))


def _x(n: int = 64, seed: int = 7) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 1.5 * torch.randn(n, D, generator=g) + 0.4


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


def _compare(theirs: torch.nn.Module, path: Path) -> SAE:
    ours = load_sae(path)
    x = _x()
    with torch.no_grad():
        a_ref = theirs.encode(x)
        xhat_ref = theirs.decode(a_ref)
        a, ctx = ours.encode_with_ctx(x)
        xhat = ours.decode(a, ctx)
    assert (a_ref != 0).any() and (a_ref == 0).any()
    assert _rel(a, a_ref) < 1e-6
    assert _rel(xhat, xhat_ref) < 1e-6
    # the same latents fire (no near-ties in these random draws)
    assert torch.equal(a != 0, a_ref != 0)
    return ours


def _meta() -> object:
    return sae_lens.saes.sae.SAEMetadata(hook_name=HOOK, model_name="tiny")


@pytest.mark.parametrize("norm", ["none", "layer_norm", "constant_norm_rescale"])
@pytest.mark.parametrize("b_dec_in", [True, False])
def test_standard_written_by_saelens(tmp_path: Path, norm: str, b_dec_in: bool) -> None:
    cfg = sae_lens.StandardSAEConfig(
        d_in=D,
        d_sae=M,
        apply_b_dec_to_input=b_dec_in,
        normalize_activations=norm,
        metadata=_meta(),
    )
    theirs = sae_lens.StandardSAE(cfg)
    _randomise(theirs, 1)
    theirs.save_model(tmp_path / "s")
    ours = _compare(theirs, tmp_path / "s")
    assert ours.cfg.hook == SAEHook(layer=3, site="resid_post", model="tiny")


def test_jumprelu_written_by_saelens(tmp_path: Path) -> None:
    cfg = sae_lens.JumpReLUSAEConfig(d_in=D, d_sae=M, metadata=_meta())
    theirs = sae_lens.JumpReLUSAE(cfg)
    _randomise(theirs, 2)
    theirs.save_model(tmp_path / "j")
    assert load_sae(tmp_path / "j").cfg.activation == "jumprelu"
    _compare(theirs, tmp_path / "j")


@pytest.mark.parametrize("rescale", [True, False])
def test_topk_written_by_saelens(tmp_path: Path, rescale: bool) -> None:
    """The inference TopK class, unfolded (decoder norms far from 1, rescale in the config)."""
    cfg = sae_lens.TopKSAEConfig(
        d_in=D, d_sae=M, k=7, rescale_acts_by_decoder_norm=rescale, metadata=_meta()
    )
    theirs = sae_lens.TopKSAE(cfg)
    _randomise(theirs, 3)
    theirs.save_model(tmp_path / "t")
    assert (
        json.loads((tmp_path / "t" / "cfg.json").read_text())["rescale_acts_by_decoder_norm"]
        is rescale
    )
    ours = _compare(theirs, tmp_path / "t")
    assert ours.cfg.activation == "topk" and ours.cfg.k == 7
    if rescale:  # folded at load time: unit decoder rows (zero rows excepted)
        torch.testing.assert_close(ours.W_dec.norm(dim=-1), torch.ones(M))


def test_topk_training_default_saved_for_inference(tmp_path: Path) -> None:
    """A TopK SAE trained with sae-lens' defaults (rescale_acts_by_decoder_norm=True), saved
    with save_inference_model (sae-lens folds the norms there), and the same SAE loaded with
    sae-lens' own fold_W_dec_norm=True."""
    cfg = sae_lens.TopKTrainingSAEConfig(d_in=D, d_sae=M, k=5, metadata=_meta())
    assert cfg.rescale_acts_by_decoder_norm is True  # the default this test is about
    trainer = sae_lens.TopKTrainingSAE(cfg)
    _randomise(trainer, 4)
    trainer.save_inference_model(tmp_path / "t")
    theirs = sae_lens.SAE.load_from_disk(tmp_path / "t")
    _compare(theirs, tmp_path / "t")
    folded = sae_lens.SAE.load_from_disk(tmp_path / "t", fold_W_dec_norm=True)
    _compare(folded, tmp_path / "t")


def test_batchtopk_saved_for_inference(tmp_path: Path) -> None:
    cfg = sae_lens.BatchTopKTrainingSAEConfig(d_in=D, d_sae=M, k=5, metadata=_meta())
    trainer = sae_lens.BatchTopKTrainingSAE(cfg)
    _randomise(trainer, 5)
    trainer.topk_threshold.fill_(0.3)
    trainer.save_inference_model(tmp_path / "b")
    theirs = sae_lens.SAE.load_from_disk(tmp_path / "b")
    ours = _compare(theirs, tmp_path / "b")
    assert ours.cfg.activation == "jumprelu"


@pytest.mark.parametrize(
    "activation,k,norm,tokens",
    [
        ("relu", None, "none", "cls"),
        ("topk", 6, "per_token_ln", "patches"),
        ("jumprelu", None, "constant_norm_rescale", "all"),
        ("relu", None, "scalar", "all"),
    ],
)
def test_our_saelens_files_load_in_saelens(
    tmp_path: Path, activation: str, k: int | None, norm: str, tokens: str
) -> None:
    cfg = SAEConfig(
        d_in=D,
        d_sae=M,
        activation=activation,  # type: ignore[arg-type]
        k=k,
        pre_center=True,
        input_norm=norm,  # type: ignore[arg-type]
        norm_scale=0.5,
        hook=SAEHook(layer=3, site="resid_post", tokens=tokens),  # type: ignore[arg-type]
    )
    ours = SAE.random(cfg, seed=9, threshold=0.05)
    save_sae(ours, tmp_path / "o", format="saelens")
    theirs = sae_lens.SAE.load_from_disk(tmp_path / "o")
    x = _x()
    with torch.no_grad():
        a, ctx = ours.encode_with_ctx(x)
        a_ref = theirs.encode(x)
        xhat_ref = theirs.decode(a_ref)
        xhat = ours.decode(a, ctx)
    assert _rel(a_ref, a) < 1e-5  # the scalar norm is folded into the weights (rounding)
    assert _rel(xhat_ref, xhat) < 1e-5
    back = load_sae(tmp_path / "o")
    assert back.cfg.hook.tokens == tokens  # the token scope survives the round trip


def test_defaults_table_is_saelens_own() -> None:
    """Every default in SAELENS_DEFAULTS equals the default of sae-lens' config class."""

    def defaults(cls: type) -> dict[str, object]:
        return {
            f.name: f.default
            for f in dataclasses.fields(cls)
            if f.default is not dataclasses.MISSING
        }

    base = defaults(sae_lens.saes.sae.SAEConfig)
    for key, value in SAELENS_DEFAULTS["common"].items():
        assert base[key] == value, key
    classes = {
        "standard": sae_lens.StandardSAEConfig,
        "jumprelu": sae_lens.JumpReLUSAEConfig,
        "topk": sae_lens.TopKSAEConfig,
    }
    for arch, cls in classes.items():
        own = defaults(cls)
        assert cls.architecture() == arch
        for key, value in (SAELENS_DEFAULTS["common"] | SAELENS_DEFAULTS[arch]).items():
            assert own[key] == value, (arch, key)
        # every field that changes the maths has its default in the table
        maths = {
            "apply_b_dec_to_input",
            "normalize_activations",
            "k",
            "rescale_acts_by_decoder_norm",
        }
        assert maths & set(own) <= set(SAELENS_DEFAULTS["common"] | SAELENS_DEFAULTS[arch])


def test_v6_config_without_b_dec_key_loads_as_saelens(tmp_path: Path) -> None:
    """The issue's case: a v6 cfg.json without apply_b_dec_to_input (sae-lens: True)."""
    cfg = sae_lens.StandardSAEConfig(d_in=D, d_sae=M, metadata=_meta())
    theirs = sae_lens.StandardSAE(cfg)
    _randomise(theirs, 6)
    theirs.save_model(tmp_path / "s")
    doc = json.loads((tmp_path / "s" / "cfg.json").read_text())
    del doc["apply_b_dec_to_input"]
    (tmp_path / "s" / "cfg.json").write_text(json.dumps(doc))
    reloaded = sae_lens.SAE.load_from_disk(tmp_path / "s")
    assert reloaded.cfg.apply_b_dec_to_input is True
    assert load_sae(tmp_path / "s").cfg.pre_center is True
    _compare(reloaded, tmp_path / "s")
