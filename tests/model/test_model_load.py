"""Model references: open_clip tags (cache / offline), local checkpoints, zoo, handle API."""

from __future__ import annotations

import os

import open_clip
import pytest
import torch
from safetensors.torch import save_file

import steerlang.zoo
from steerlang.errors import CheckpointError, OfflineError, SteerError
from steerlang.model.clip import TINY_CONFIG, load_model, random_clip, set_batch_first


@pytest.fixture(scope="module")
def tiny():
    return random_clip(TINY_CONFIG, seed=3)


@pytest.fixture(scope="module")
def pixels() -> torch.Tensor:
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def _name(handle) -> str:
    return handle.ref.removeprefix("openclip:").split("@")[0]


def test_handle_properties(tiny, pixels) -> None:
    assert (tiny.n_layers, tiny.width, tiny.n_tokens, tiny.image_size) == (12, 64, 17, 32)
    assert tiny.batch_first and tiny.device == torch.device("cpu")
    assert tiny.logit_scale == pytest.approx(1 / 0.07, rel=1e-4)  # open_clip init: log(1/0.07)
    img = tiny.encode_image(pixels)
    txt = tiny.encode_text(["a photo of a bird.", "water"])
    assert img.shape == (2, 32) and txt.shape == (2, 32)
    torch.testing.assert_close(img.norm(dim=-1), torch.ones(2))
    torch.testing.assert_close(txt.norm(dim=-1), torch.ones(2))
    h = tiny.content_hash
    assert h.startswith("sha256:") and h == random_clip(TINY_CONFIG, seed=3).content_hash
    assert h != random_clip(TINY_CONFIG, seed=4).content_hash
    x = tiny.preprocess(__import__("PIL.Image", fromlist=["Image"]).new("RGB", (50, 40)))
    assert x.shape == (3, 32, 32)


def test_seq_first_model_matches_batch_first(tiny, pixels) -> None:
    other = random_clip(TINY_CONFIG, seed=3, batch_first=False)
    assert not other.batch_first
    torch.testing.assert_close(other.encode_image(pixels), tiny.encode_image(pixels))
    set_batch_first(other.model, True)
    assert torch.equal(other.encode_image(pixels), tiny.encode_image(pixels))


@pytest.mark.parametrize("suffix", [".safetensors", ".pt", ".bin"])
def test_local_checkpoint(tmp_path, tiny, pixels, suffix: str) -> None:
    path = tmp_path / f"ckpt{suffix}"
    state = {k: v.clone() for k, v in tiny.model.state_dict().items()}
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    h = load_model(f"openclip:{_name(tiny)}@{path}")
    assert torch.equal(h.encode_image(pixels), tiny.encode_image(pixels))
    assert h.weights_file == path
    assert h.content_hash.startswith("sha256:") and h.content_hash != tiny.content_hash


class Evil:
    def __reduce__(self):  # noqa: ANN204
        return (os.system, ("echo pwned > /tmp/steer_model_pwned",))


def test_bad_checkpoints(tmp_path, tiny) -> None:
    name = _name(tiny)
    evil = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, evil)
    with pytest.raises(CheckpointError, match="cannot be loaded safely") as ei:
        load_model(f"openclip:{name}@{evil}")
    assert "evil.pt" in str(ei.value)
    assert not os.path.exists("/tmp/steer_model_pwned")

    good = tmp_path / "good.safetensors"
    save_file({k: v.clone() for k, v in tiny.model.state_dict().items()}, str(good))
    trunc = tmp_path / "trunc.safetensors"
    trunc.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="trunc.safetensors"):
        load_model(f"openclip:{name}@{trunc}")
    with pytest.raises(CheckpointError, match="do not match the open_clip ViT-B-32"):
        load_model(f"openclip:ViT-B-32@{good}")
    with pytest.raises(CheckpointError, match="not found"):
        load_model(f"openclip:{name}@{tmp_path / 'missing.pt'}")


def test_reference_errors() -> None:
    with pytest.raises(SteerError, match="did you mean ViT-B-32"):
        load_model("openclip:ViT-B-23@openai")
    with pytest.raises(SteerError, match="(?s)no pretrained tag 'datacomp_xl' .*did you mean"):
        load_model("openclip:ViT-B-32@datacomp_xl")
    with pytest.raises(SteerError, match="NAME@TAG"):
        load_model("openclip:ViT-B-32")
    with pytest.raises(SteerError, match="unknown model reference"):
        load_model("clip-vit-b-32")


def test_pretrained_tag_offline_error(tmp_path) -> None:
    with pytest.raises(OfflineError) as ei:
        load_model(
            "openclip:ViT-B-32@datacomp_xl_s13b_b90k",
            allow_download=False,
            cache_dir=str(tmp_path),
        )
    msg = str(ei.value)
    assert "laion/CLIP-ViT-B-32-DataComp.XL-s13B-b90K" in msg
    assert "/path/to/weights" in msg
    assert (
        "`hf download laion/CLIP-ViT-B-32-DataComp.XL-s13B-b90K open_clip_pytorch_model.bin`"
        in ei.value.help
    )


def test_pretrained_tag_from_local_hf_cache(tmp_path, tiny, pixels, monkeypatch) -> None:
    """A tag whose weights are already in the HF cache loads without any network access."""
    name = _name(tiny)
    repo = "steer-test/tiny-clip"
    sha = "89abcdef0123456789abcdef0123456789abcdef"
    root = tmp_path / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(sha)
    snap = root / "snapshots" / sha
    snap.mkdir(parents=True)
    save_file(
        {k: v.clone() for k, v in tiny.model.state_dict().items()},
        str(snap / "open_clip_model.safetensors"),
    )
    cfg = {"hf_hub": f"{repo}/", "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}
    monkeypatch.setattr(
        open_clip, "list_pretrained_tags_by_model", lambda m: ["synth"] if m == name else []
    )
    monkeypatch.setattr(open_clip, "get_pretrained_cfg", lambda m, t: cfg if t == "synth" else {})
    h = load_model(f"openclip:{name}@synth", allow_download=False, cache_dir=str(tmp_path))
    assert torch.equal(h.encode_image(pixels), tiny.encode_image(pixels))
    assert h.weights_file is not None and h.weights_file.name == "open_clip_model.safetensors"
    # The tag's own normalisation constants drive preprocessing.
    from PIL import Image

    x = h.preprocess(Image.new("RGB", (32, 32), (255, 255, 255)))
    torch.testing.assert_close(x, torch.full((3, 32, 32), 2.0))


def test_random_reference_and_real_vit_b32() -> None:
    h = load_model("openclip:ViT-B-32@random")
    assert (h.n_layers, h.width, h.n_tokens, h.image_size) == (12, 768, 50, 224)
    assert h.ref == "openclip:ViT-B-32@random"


def test_default_model_is_the_zoo() -> None:
    if hasattr(steerlang.zoo, "load_zoo_clip"):
        try:
            h = load_model("default")
        except SteerError as e:  # the zoo exists but is not built in this checkout
            assert "steer zoo build" in str(e)
            return
        assert h.n_layers == 12 and h.ref == "default"
        assert h.encode_image(torch.zeros(1, 3, h.image_size, h.image_size)).shape[0] == 1
    else:
        with pytest.raises(SteerError, match="steer zoo build"):
            load_model("zoo:tiny-clip")
