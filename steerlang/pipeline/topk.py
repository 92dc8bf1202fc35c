"""The running top-k of the statistics pass: for each tracked SAE feature, the k images of the
statistics split on which it fires most, with the feature's activation on every patch of each.

Why inside the statistics pass: the images a feature card shows must be the strongest of the
whole statistics split, and a second pass over the split would double the cost of a run. The
pass already holds each batch's latents, so keeping the k best per feature costs one small
sort per batch (measured by `benchmarks/gallery_cost.py`).

Order, exactly: by pooled activation (the statistic `mean` pools: the mean, or with
`set pooling = "max"` the max, over the rule's token scope), highest first, ties broken by the
lower row index. Because the order is total and each state holds the best k of the rows it saw,
merging two states (batches, or two processes of a data-parallel pass) gives exactly the state
one pass over all their rows would have given, whatever the split (`merge`).

Memory is k x F x (2 + P) numbers for F tracked features and P patches (7 x 7 for ViT-B/32):
at k = 8 and 49,152 features 4.7 MB for the ids and activations and 77 MB for the patch maps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from steerlang.errors import SteerError

if TYPE_CHECKING:  # pragma: no cover
    import torch

# Row index of an empty slot: sorts after every real row, so empty slots stay last.
_EMPTY_ROW = np.iinfo(np.int64).max


class TopKError(SteerError):
    """Two running top-k states that cannot be merged, or an unusable stored one."""


def patch_grid(n_tokens: int) -> int:
    """The side of the square patch grid behind `n_tokens` tokens (CLS first): 7 for ViT-B/32
    (50 tokens), 4 for the zoo model (17 tokens); 0 when the patches do not form a square."""
    n = n_tokens - 1
    side = int(round(n**0.5)) if n > 0 else 0
    return side if side * side == n else 0


class RunningTopK:
    """The best `k` rows per tracked feature, their pooled activations and patch maps.

    `features` are the SAE feature ids tracked (None: every one of `n_features`). After
    `update`s, `rows[i, j]` is the j-th strongest row for `features[i]` (-1 when fewer than j+1
    rows were seen), `values[i, j]` its pooled activation and `maps[i, j]` its activation on
    each patch token (row-major over the grid).
    """

    def __init__(
        self,
        n_features: int,
        k: int,
        *,
        features: Any = None,
        n_patches: int | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        import torch

        if k < 1:
            raise TopKError(f"a running top-k needs k >= 1, got {k}")
        self.n_features = int(n_features)
        self.k = int(k)
        dev = torch.device(device)
        if features is None:
            self.features = torch.arange(self.n_features, dtype=torch.int64, device=dev)
        else:
            self.features = torch.as_tensor(features, dtype=torch.int64, device=dev).reshape(-1)
            bad = self.features[(self.features < 0) | (self.features >= self.n_features)]
            if bad.numel():
                raise TopKError(
                    f"feature {int(bad[0])} is out of range for an SAE with {n_features} features",
                    help=f"use feature ids 0..{n_features - 1}",
                )
        self.all_features = features is None
        f = len(self.features)
        self.values = torch.full((f, self.k), -torch.inf, dtype=torch.float32, device=dev)
        self.rows = torch.full((f, self.k), _EMPTY_ROW, dtype=torch.int64, device=dev)
        self.n_patches = n_patches
        self.maps: torch.Tensor | None = (
            torch.zeros((f, self.k, n_patches), dtype=torch.float32, device=dev)
            if n_patches
            else None
        )
        self.n_rows = 0

    # ---- updating ------------------------------------------------------------------------

    def update(self, pooled: torch.Tensor, acts: torch.Tensor, rows: Any) -> None:
        """Fold in one batch: `pooled` [B, M] per-image pooled activations of every feature,
        `acts` [B, T, M] the latents of every token (CLS first; the patch maps read tokens
        1..T-1), `rows` the B row indices of the batch's images."""
        import torch

        b = pooled.shape[0]
        if b == 0:
            return
        dev = self.values.device
        feats = self.features.to(pooled.device)
        new_vals = (pooled if self.all_features else pooled[:, feats]).to(dev, torch.float32).T
        row_t = torch.as_tensor(np.asarray(rows, dtype=np.int64), device=dev)
        new_rows = row_t.expand(len(self.features), b)
        new_maps = None
        if self.maps is not None:
            if acts.shape[1] - 1 != self.n_patches:
                raise TopKError(
                    f"the running top-k expects {self.n_patches} patch tokens, the batch has "
                    f"{acts.shape[1] - 1}"
                )
            new_maps = _LazyBatchMaps(acts, feats)
        self._fold(new_vals, new_rows, new_maps)
        self.n_rows += b

    def merge(self, other: RunningTopK) -> RunningTopK:
        """Fold another state over the same features in (e.g. a second process's partial
        top-k over other rows); the result equals one pass over both states' rows."""
        if (
            other.k != self.k
            or other.n_features != self.n_features
            or other.n_patches != self.n_patches
            or not bool((other.features.cpu() == self.features.cpu()).all())
        ):
            raise TopKError(
                "cannot merge running top-k states with different k, features or patch grids"
            )
        maps = None
        if self.maps is not None and other.maps is not None:
            maps = _StoredMaps(other.maps.to(self.values.device))
        self._fold(
            other.values.to(self.values.device),
            other.rows.to(self.values.device),
            maps,
        )
        self.n_rows += other.n_rows
        return self

    def _fold(self, new_vals: torch.Tensor, new_rows: torch.Tensor, new_maps: Any) -> None:
        import torch

        k = self.k
        cand_vals = torch.cat([self.values, new_vals], dim=1)
        cand_rows = torch.cat([self.rows, new_rows], dim=1)
        # Total order: value descending, then row ascending (two stable sorts, minor key first).
        by_row = torch.sort(cand_rows, dim=1, stable=True).indices
        vals_by_row = torch.gather(cand_vals, 1, by_row)
        by_val = torch.sort(vals_by_row, dim=1, descending=True, stable=True).indices[:, :k]
        pick = torch.gather(by_row, 1, by_val)  # [F, k] positions among the candidates
        self.values = torch.gather(cand_vals, 1, pick)
        self.rows = torch.gather(cand_rows, 1, pick)
        if self.maps is not None and new_maps is not None:
            old = pick < k
            fi, sj = torch.nonzero(~old, as_tuple=True)
            kept = torch.gather(
                self.maps, 1, pick.clamp(max=k - 1)[:, :, None].expand(-1, -1, self.maps.shape[2])
            )
            if fi.numel():
                kept[fi, sj] = new_maps.take(fi, pick[fi, sj] - k)
            self.maps = kept

    # ---- reading -------------------------------------------------------------------------

    def index_of(self, feature: int) -> int:
        if self.all_features:
            return int(feature)
        hits = (self.features == int(feature)).nonzero()
        if not hits.numel():
            raise TopKError(f"feature {feature} is not tracked by this running top-k")
        return int(hits[0, 0])

    def top(self, feature: int) -> list[tuple[int, float, np.ndarray | None]]:
        """(row, pooled activation, patch map or None) of the feature's best rows, best first."""
        i = self.index_of(feature)
        rows = self.rows[i].cpu().numpy()
        vals = self.values[i].cpu().numpy()
        maps = self.maps[i].cpu().numpy() if self.maps is not None else None
        return [
            (int(r), float(v), maps[j] if maps is not None else None)
            for j, (r, v) in enumerate(zip(rows, vals, strict=True))
            if r != _EMPTY_ROW
        ]

    def rows_np(self) -> np.ndarray:
        """[F, k] rows with -1 for empty slots."""
        r = self.rows.cpu().numpy().copy()
        r[r == _EMPTY_ROW] = -1
        return r

    # ---- storing (the statistics cache) --------------------------------------------------

    def to_columns(self) -> dict[str, np.ndarray]:
        """The state as arrays for the statistics cache (maps stored as float16: they are
        only drawn)."""
        cols = {
            "features": self.features.cpu().numpy(),
            "rows": self.rows_np(),
            "values": self.values.cpu().numpy(),
        }
        if self.maps is not None:
            cols["maps"] = self.maps.cpu().numpy().astype(np.float16)
        return cols

    def meta(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "n_features": self.n_features,
            "n_patches": self.n_patches,
            "all_features": self.all_features,
            "n_rows": self.n_rows,
        }

    @classmethod
    def from_columns(cls, cols: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> RunningTopK:
        import torch

        try:
            k = int(meta["k"])
            feats = None if meta.get("all_features") else cols["features"]
            out = cls(int(meta["n_features"]), k, features=feats, n_patches=meta.get("n_patches"))
            rows = np.asarray(cols["rows"], dtype=np.int64).copy()
            rows[rows < 0] = _EMPTY_ROW
            out.rows = torch.from_numpy(rows)
            out.values = torch.from_numpy(np.asarray(cols["values"], dtype=np.float32).copy())
            if out.maps is not None:
                out.maps = torch.from_numpy(np.asarray(cols["maps"], dtype=np.float32))
            out.n_rows = int(meta.get("n_rows", 0))
        except (KeyError, TypeError, ValueError) as e:
            raise TopKError(f"a stored running top-k is incomplete: {e}") from None
        f = len(out.features)
        if out.rows.shape != (f, k) or out.values.shape != (f, k):
            raise TopKError("a stored running top-k has arrays of the wrong shape")
        if out.maps is not None and out.maps.shape != (f, k, out.n_patches):
            raise TopKError("a stored running top-k has patch maps of the wrong shape")
        return out


@dataclass
class _LazyBatchMaps:
    """The patch maps of a batch's images, read only for the (feature, image) pairs that
    entered the top-k: materialising [F, B, P] for 49,152 features would cost gigabytes."""

    acts: Any  # [B, T, M]
    feats: Any  # [F] feature ids (on the activations' device)

    def take(self, fi: Any, bi: Any) -> Any:
        import torch

        dev = fi.device
        a = self.acts
        f = self.feats[fi.to(a.device)]
        b = bi.to(a.device)
        patches = torch.arange(1, a.shape[1], device=a.device)
        out = a[b[:, None], patches[None, :], f[:, None]]
        return out.to(dev, torch.float32)


@dataclass
class _StoredMaps:
    maps: Any  # [F, k, P]

    def take(self, fi: Any, j: Any) -> Any:
        return self.maps[fi, j]
