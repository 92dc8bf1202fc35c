"""Training checkpoints: our SAE format plus optimiser state, atomic, resumable, and a clear
error for a damaged file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from steerlang.errors import CheckpointError
from steerlang.model.sae.load import load_sae
from steerlang.training.activations import TensorTokens
from steerlang.training.trainer import TrainConfig, load_checkpoint, train_sae


def _cfg(tmp_path: Path, **kw: object) -> TrainConfig:
    base = {"arch": "topk", "k": 3, "expansion": 2, "steps": 30, "batch_tokens": 64}
    base |= {"warmup_steps": 5, "checkpoint_every": 10, "checkpoint_dir": str(tmp_path / "ck")}
    return TrainConfig(**(base | kw))  # type: ignore[arg-type]


class _Dies(TensorTokens):
    """A token source that fails after `n` batches, like a killed run."""

    def __init__(self, x: torch.Tensor, n: int) -> None:
        super().__init__(x)
        self.n = n

    def batches(self, batch_tokens: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
        for i, b in enumerate(super().batches(batch_tokens, generator)):
            if i == self.n:
                raise KeyboardInterrupt
            yield b


def test_checkpoints_round_trip_in_our_format(planted, tmp_path: Path) -> None:  # noqa: ANN001
    x, _ = planted
    sae, _ = train_sae(x[:2000], _cfg(tmp_path))
    steps = sorted(p.name for p in (tmp_path / "ck").iterdir())
    assert steps == ["step-0000020", "step-0000030"]  # keep_checkpoints=2
    last = load_sae(tmp_path / "ck" / "step-0000030")
    for name, t in sae.tensors().items():
        assert torch.equal(last.tensors()[name], t.detach())
    _, doc, tensors = load_checkpoint(tmp_path / "ck" / "step-0000030")
    assert doc["step"] == 30 and doc["tokens_seen"] == 30 * 64
    assert "since_fired" in tensors and any(k.startswith("opt.") for k in tensors)


def test_truncated_checkpoint_is_a_clear_error(planted, tmp_path: Path) -> None:  # noqa: ANN001
    x, _ = planted
    train_sae(x[:2000], _cfg(tmp_path))
    ck = tmp_path / "ck" / "step-0000030"
    w = ck / "sae.safetensors"
    w.write_bytes(w.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="sae.safetensors"):
        load_sae(ck)
    with pytest.raises(CheckpointError, match="sae.safetensors") as err:
        train_sae(x[:2000], _cfg(tmp_path), resume=True)
    assert err.value.help  # says how to fix it
    state = tmp_path / "ck" / "step-0000020" / "trainer_state.safetensors"
    state.write_bytes(state.read_bytes()[:50])
    with pytest.raises(CheckpointError, match="trainer_state"):
        load_checkpoint(tmp_path / "ck" / "step-0000020")


def test_killed_run_resumes_from_last_checkpoint(planted, tmp_path: Path) -> None:  # noqa: ANN001
    x, _ = planted
    with pytest.raises(KeyboardInterrupt):
        train_sae(_Dies(x[:2000], 25), _cfg(tmp_path))
    ck = tmp_path / "ck"
    assert sorted(p.name for p in ck.iterdir()) == ["step-0000010", "step-0000020"]
    sae, metrics = train_sae(x[:2000], _cfg(tmp_path), resume=True)
    assert metrics.resumed_from_step == 20
    assert metrics.tokens_seen == 30 * 64
    assert [h["step"] for h in metrics.history][-1] == 30
    norms = sae.W_dec.norm(dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)
    with pytest.raises(Exception, match="different configuration"):
        train_sae(x[:2000], _cfg(tmp_path, k=4), resume=True)
