"""Activation capture for training: one pass for many sites, the content-keyed disk cache,
and the token sources the trainer consumes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from steerlang.model.sites import capture
from steerlang.training.activations import (
    ShardTokens,
    StreamingTokens,
    TensorTokens,
    collect_activations,
    iter_pixel_batches,
)

SITES = ["blocks.1.hook_resid_post", "blocks.4.hook_mlp_out", "blocks.4.hook_resid_post"]


def _count_forwards(model: torch.nn.Module) -> list[int]:
    calls = [0]

    def pre(_m, _a):  # noqa: ANN001, ANN202
        calls[0] += 1

    model.visual.register_forward_pre_hook(pre)
    return calls


def test_many_sites_in_one_pass_equal_separate_captures(tiny_clip, tiny_pixels) -> None:  # noqa: ANN001
    calls = _count_forwards(tiny_clip.model)
    got = collect_activations(tiny_clip, SITES, tiny_pixels, batch_size=20)
    assert calls[0] == 3  # 48 images / 20 per batch: one pass serves all three sites
    for name in SITES:
        with torch.no_grad(), capture(tiny_clip.model, [name]) as cap:
            tiny_clip.model.visual(tiny_pixels)
            ref = cap[name]
        a = got[name]
        assert (a.n_images, a.n_tokens, a.d) == (48, 17, 64)
        assert torch.allclose(a.load(), ref, atol=1e-5)
    tiny_clip.model.visual._forward_pre_hooks.clear()


def test_cache_is_reused_and_keyed_by_content(tiny_clip, tiny_pixels, tmp_path: Path) -> None:  # noqa: ANN001
    logs: list[str] = []
    first = collect_activations(
        tiny_clip, SITES[:2], tiny_pixels, cache_dir=tmp_path, log=logs.append
    )
    assert not logs and first[SITES[0]].shards  # computed, written as shards
    calls = _count_forwards(tiny_clip.model)
    again = collect_activations(
        tiny_clip, SITES[:2], tiny_pixels, cache_dir=tmp_path, log=logs.append
    )
    assert calls[0] == 0 and len(logs) == 2 and "reusing cache" in logs[0]
    assert torch.equal(again[SITES[0]].load(), first[SITES[0]].load())
    # a third site on the same images: only it is computed, the others come from disk
    more = collect_activations(tiny_clip, SITES, tiny_pixels, cache_dir=tmp_path)
    assert torch.equal(more[SITES[1]].load(), first[SITES[1]].load())
    # different pixels -> a different key -> recomputed
    changed = tiny_pixels.clone()
    changed[0, 0, 0, 0] += 1
    calls[0] = 0
    collect_activations(tiny_clip, SITES[:1], changed, cache_dir=tmp_path)
    assert calls[0] > 0
    tiny_clip.model.visual._forward_pre_hooks.clear()
    assert not list(tmp_path.rglob(".*.tmp")) and not [
        p for p in tmp_path.rglob(".blocks*") if p.is_dir()
    ]


def test_truncated_cache_shard_is_recomputed(tiny_clip, tiny_pixels, tmp_path: Path) -> None:  # noqa: ANN001
    first = collect_activations(tiny_clip, SITES[:1], tiny_pixels, cache_dir=tmp_path)
    shard = first[SITES[0]].shards[0]
    shard.write_bytes(shard.read_bytes()[:100])
    logs: list[str] = []
    again = collect_activations(
        tiny_clip, SITES[:1], tiny_pixels, cache_dir=tmp_path, log=logs.append
    )
    assert not logs  # not trusted: recomputed
    fresh = collect_activations(tiny_clip, SITES[:1], tiny_pixels)[SITES[0]].load()
    assert torch.equal(again[SITES[0]].load(), fresh)


def test_token_sources_cover_every_token_once_per_epoch(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    x = torch.arange(5 * 4 * 3, dtype=torch.float32).reshape(5, 4, 3)  # 5 images, 4 tokens
    gen = torch.Generator().manual_seed(0)
    src = TensorTokens(x)
    epoch = torch.cat([next(b) for b in [src.batches(4, gen)] for _ in range(5)])
    assert sorted(epoch[:, 0].tolist()) == sorted(x.reshape(-1, 3)[:, 0].tolist())
    paths = []
    for i in range(5):
        p = tmp_path / f"s{i}.safetensors"
        save_file({"acts": x[i : i + 1].contiguous()}, str(p))
        paths.append(p)
    shard = ShardTokens(paths, "patches", 3, buffer_bytes=1)
    it = shard.batches(3, gen)
    seen = torch.cat([next(it) for _ in range(5)])  # 15 patch tokens = one epoch
    assert sorted(seen[:, 0].tolist()) == sorted(x[:, 1:].reshape(-1, 3)[:, 0].tolist())
    cls = ShardTokens(paths, "cls", 3).sample(10, gen)
    assert sorted(cls[:, 0].tolist()) == sorted(x[:, 0, 0].tolist())


def test_streaming_tokens_match_collected(tiny_clip, tiny_pixels) -> None:  # noqa: ANN001
    stream = StreamingTokens(tiny_clip, SITES[0], tiny_pixels, tokens="cls", batch_size=16)
    full = collect_activations(tiny_clip, SITES[:1], tiny_pixels)[SITES[0]].load()[:, 0]
    got = stream.sample(48, torch.Generator().manual_seed(0))
    key = lambda t: sorted(round(v, 4) for v in t[:, 0].tolist())  # noqa: E731
    assert key(got) == key(full)
    batch = next(stream.batches(32, torch.Generator().manual_seed(0)))
    assert batch.shape == (32, 64)


def test_pixel_batches_from_tables_and_image_lists(tmp_path: Path) -> None:
    from PIL import Image

    from steerlang.data import load_dataset, make_imagefolder_fixture

    root = make_imagefolder_fixture(tmp_path / "if", n_per_class=2, image_size=16)
    table = load_dataset("imagefolder", root)
    seen: list[tuple[int, int]] = []

    def pre(img: Image.Image) -> torch.Tensor:
        seen.append(img.size)
        return torch.zeros(3, 8, 8)

    batches = list(iter_pixel_batches(table, pre, 4))
    assert [b.shape[0] for b in batches] == [4, 2] and seen == [(16, 16)] * 6
    imgs = [Image.new("RGB", (5, 5)) for _ in range(3)]
    assert [b.shape[0] for b in iter_pixel_batches(iter(imgs), pre, 2, limit=3)] == [2, 1]
    with pytest.raises(Exception, match="batch size"):
        list(iter_pixel_batches(imgs, pre, 0))
