"""Contrastive training of the tiny CLIP on SynthWorld (what `steer zoo build` runs).

Standard CLIP training (symmetric InfoNCE, learnable temperature, AdamW, warmup + cosine) with
one change for a templated world: captions repeat ("a photo of a landbird." is common), so
every image/caption pair in a batch with the same caption counts as a positive (soft targets
spread over them). Without this the loss would push apart images that share a caption and the
model would chase whatever differs between them.

Reproducible: the world, the order of samples and the initialisation come from `seed`; the same
seed on the same device type gives the same weights.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from steerlang.zoo.world import SynthWorld, WorldConfig

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class TrainConfig:
    seed: int = 0
    steps: int = 600
    batch_size: int = 256
    n_images: int = 32_000  # distinct training images (the stream is cycled over)
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup: int = 60
    min_lr_ratio: float = 0.05

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


ProgressFn = Callable[[str, int, int, dict[str, float]], None]


def to_model_input(images: np.ndarray | Any, device: str = "cpu") -> Any:
    """uint8 [N, H, W, 3] → normalised float [N, 3, H, W], exactly as the eval preprocess does
    for a 64×64 image (ToTensor then CLIP mean/std)."""
    import torch

    x = torch.as_tensor(images, device=device).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(CLIP_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=device).view(1, 3, 1, 1)
    return (x - mean) / std


def generate(
    world: SynthWorld, n: int, progress: ProgressFn | None = None
) -> tuple[np.ndarray, list[str], list[dict[str, Any]]]:
    """The first n training samples of the world, in chunks (for a progress bar)."""
    from steerlang.zoo.world import IMAGE_SIZE

    imgs = np.empty((n, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    caps: list[str] = []
    attrs: list[dict[str, Any]] = []
    chunk = 500
    for s in range(0, n, chunk):
        k = min(chunk, n - s)
        im, c, a = world.batch(s, k)
        imgs[s : s + k] = im
        caps += c
        attrs += a
        if progress:
            progress("world", s + k, n, {})
    return imgs, caps, attrs


def tokenize_unique(captions: list[str], tokenizer: Any) -> tuple[Any, np.ndarray]:
    """Tokens of each distinct caption [U, ctx] and each sample's caption index [N]."""
    uniq = sorted(set(captions))
    index = {c: i for i, c in enumerate(uniq)}
    tokens = tokenizer(uniq)
    return tokens, np.array([index[c] for c in captions], dtype=np.int64)


def train_clip(
    cfg: TrainConfig,
    device: str = "cpu",
    world_config: WorldConfig | None = None,
    progress: ProgressFn | None = None,
    threads: int = 1,
) -> tuple[Any, dict[str, Any]]:
    """Train the tiny CLIP; returns (model in eval mode, training log).

    `threads`: CPU threads (ignored on a GPU). One is the default: the result then does not
    depend on the machine's core count (reductions split across threads round differently),
    and on a busy machine it is also the fastest. A tiny transformer runs thousands of small
    kernels per step; with more OpenMP threads than free cores every kernel's barrier waits for
    a descheduled thread (a step that took 0.6 s on one thread took 15 s on two on a shared
    2-core machine).
    """
    import torch

    if not str(device).startswith("cuda"):
        torch.set_num_threads(threads)

    from steerlang.zoo.model import create_model, get_tokenizer

    t0 = time.time()
    world = SynthWorld(cfg.seed, world_config)
    images, captions, _ = generate(world, cfg.n_images, progress)
    tokenizer = get_tokenizer()
    tokens, cap_idx = tokenize_unique(captions, tokenizer)
    t_world = time.time() - t0

    torch.manual_seed(cfg.seed)
    model, _ = create_model(device)
    model.train()
    ids, full_embedding, tokens = _compact_token_embedding(model, tokens, device)
    opt = _adamw(model, cfg)
    order_rng = np.random.default_rng([cfg.seed, 99])
    order = order_rng.permutation(cfg.n_images)
    pos = 0
    images_t = torch.from_numpy(images)
    tokens = tokens.to(device)
    losses: list[float] = []
    t1 = time.time()
    for step in range(cfg.steps):
        if pos + cfg.batch_size > len(order):
            order = order_rng.permutation(cfg.n_images)
            pos = 0
        idx = order[pos : pos + cfg.batch_size]
        pos += cfg.batch_size
        x = to_model_input(images_t[idx].to(device), device)
        ci = torch.from_numpy(cap_idx[idx]).to(device)
        for g in opt.param_groups:
            g["lr"] = _lr_at(step, cfg)
        loss = _contrastive_loss(model, x, tokens, ci)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        losses.append(float(loss.detach()))
        if progress:
            progress("clip", step + 1, cfg.steps, {"loss": float(np.mean(losses[-20:]))})
    with torch.no_grad():
        full_embedding.weight[ids.to(device)] = model.token_embedding.weight
    model.token_embedding = full_embedding
    model.eval()
    return model, {
        "train_config": cfg.to_dict(),
        "world_config": world.config.to_dict(),
        "device": device,
        "threads": torch.get_num_threads(),
        "world_seconds": round(t_world, 1),
        "train_seconds": round(time.time() - t1, 1),
        "final_loss": float(np.mean(losses[-50:])),
        "loss_curve": [float(np.mean(losses[i : i + 50])) for i in range(0, len(losses), 50)],
        "logit_scale": float(model.logit_scale.detach().exp()),
        "n_captions": int(tokens.shape[0]),
        "token_ids": [int(i) for i in ids.tolist()],
    }


def _compact_token_embedding(model: Any, tokens: Any, device: str) -> tuple[Any, Any, Any]:
    """Swap in a token embedding holding only the rows SynthWorld's captions use; returns
    (used ids, the full embedding to restore after training, tokens remapped to the rows).

    The other rows get no gradient and no weight decay, so this is the same optimisation as the
    full 49,408-row table at a fraction of the optimiser cost. Remapping keeps token order, so
    the end-of-text token stays the largest id (open_clip pools the text at argmax(id)).
    """
    import torch

    ids = torch.unique(tokens)
    remap = torch.zeros(model.vocab_size, dtype=torch.long)
    remap[ids] = torch.arange(len(ids))
    full_embedding = model.token_embedding
    model.token_embedding = torch.nn.Embedding(len(ids), full_embedding.weight.shape[1]).to(device)
    with torch.no_grad():
        model.token_embedding.weight.copy_(full_embedding.weight[ids.to(device)])
    return ids, full_embedding, remap[tokens]


def _adamw(model: Any, cfg: TrainConfig) -> Any:
    """AdamW with weight decay on matrices only (not biases, norms, embeddings, the scale)."""
    import torch

    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 or "embedding" in name or "logit_scale" in name else decay).append(
            p
        )
    return torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=cfg.lr,
        betas=(0.9, 0.98),
        eps=1e-6,
    )


def _lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup, then cosine decay to `min_lr_ratio` of the peak."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


def _contrastive_loss(model: Any, x: Any, tokens: Any, ci: Any) -> Any:
    """Symmetric InfoNCE where every pair in the batch with the same caption is a positive."""
    import torch
    import torch.nn.functional as F

    uniq, inverse = torch.unique(ci, return_inverse=True)  # encode each caption once
    same = (ci[:, None] == ci[None, :]).float()
    target = same / same.sum(1, keepdim=True)
    img_f = model.encode_image(x, normalize=True)
    txt_f = model.encode_text(tokens[uniq], normalize=True)[inverse]
    logits = model.logit_scale.exp() * img_f @ txt_f.t()
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))
