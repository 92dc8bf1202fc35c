"""The tiny CLIP's config, its compact checkpoint format, and training plumbing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from steerlang.errors import CheckpointError
from steerlang.training.zoo.train import TrainConfig, to_model_input, train_clip
from steerlang.zoo import model as M


def test_import_is_torch_free() -> None:
    code = "import sys, steerlang.zoo, steerlang.zoo.world; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_config_is_registered_with_open_clip_and_has_12_blocks() -> None:
    import open_clip

    model, preprocess = M.create_model()
    assert M.ZOO_MODEL_NAME in open_clip.list_models()
    assert len(model.visual.transformer.resblocks) == 12
    assert tuple(model.visual.grid_size) == (4, 4)  # 64 px in 16 px patches: 16 + CLS tokens
    x = preprocess(__import__("PIL.Image", fromlist=["Image"]).new("RGB", (64, 64)))
    assert x.shape == (3, 64, 64)


def test_preprocess_matches_training_input() -> None:
    import numpy as np
    from PIL import Image

    _, preprocess = M.create_model()
    img = np.random.default_rng(0).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    a = preprocess(Image.fromarray(img))
    b = to_model_input(img[None])[0]
    assert torch.allclose(a, b, atol=1e-6)


def test_tokenizer_works_offline() -> None:
    tok = M.get_tokenizer()
    ids = tok(["a photo of a waterbird."])
    assert ids.shape == (1, json.loads(M.CONFIG_PATH.read_text())["text_cfg"]["context_length"])
    assert ids[0, 0].item() == 49406 and 49407 in ids[0].tolist()


@pytest.fixture(scope="module")
def tiny_trained() -> tuple[object, dict]:
    cfg = TrainConfig(steps=2, batch_size=16, n_images=48, warmup=1)
    return train_clip(cfg, "cpu", threads=1)


def test_compact_checkpoint_roundtrip(tmp_path: Path, tiny_trained: tuple) -> None:
    model, log = tiny_trained
    path = M.save_weights(model, log["token_ids"], tmp_path / "w.safetensors", {"k": "v"})
    assert path.stat().st_size < 10e6  # the 49,408-row token table is not stored
    fresh, _ = M.create_model()
    meta = M.load_weights(fresh, path)
    assert meta["k"] == "v"
    tok = M.get_tokenizer()(["a photo of a landbird."])
    img = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref_t = model.half().float().encode_text(tok)  # fp16 storage: compare at fp16 precision
        ref_i = model.encode_image(img)
        assert torch.allclose(fresh.encode_text(tok), ref_t, atol=1e-5)
        assert torch.allclose(fresh.encode_image(img), ref_i, atol=1e-5)
    # rows of tokens SynthWorld never uses load as zeros
    assert fresh.token_embedding.weight[1000].abs().sum() == 0


def test_training_moves_the_loss(tiny_trained: tuple) -> None:
    _, log = tiny_trained
    assert log["threads"] == 1
    assert log["n_captions"] > 5 and log["final_loss"] > 0


def test_missing_and_corrupt_checkpoints_are_clear_errors(tmp_path: Path) -> None:
    fresh, _ = M.create_model()
    with pytest.raises(CheckpointError, match="not found"):
        M.load_weights(fresh, tmp_path / "nope.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(CheckpointError, match="cannot read"):
        M.load_weights(fresh, bad)
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(2)}, str(other))
    with pytest.raises(CheckpointError, match="not a zoo CLIP checkpoint"):
        M.load_weights(fresh, other)


def test_truncated_checkpoint(tmp_path: Path, tiny_trained: tuple) -> None:
    model, log = tiny_trained
    path = M.save_weights(model, log["token_ids"], tmp_path / "w.safetensors", {})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    fresh, _ = M.create_model()
    with pytest.raises(CheckpointError):
        M.load_weights(fresh, path)
