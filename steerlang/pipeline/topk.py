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
from typing import TYPE_CHECKING, Any

import numpy as np

from steerlang.errors import SteerError

if TYPE_CHECKING:  # pragma: no cover
    import torch

# Row index of an empty slot: sorts after every real row, so empty slots stay last.
_EMPTY_ROW = np.iinfo(np.int64).max


class TopKError(SteerError):
    """Two running top-k states that cannot be merged, or an unusable stored one."""


def patch_grid(n_tokens: int, prefix_tokens: int = 1) -> int:
    """The side of the square patch grid behind `n_tokens` tokens, of which the first
    `prefix_tokens` are not patches (the tower's fact, `Tower.prefix_tokens` in
    steerlang/model/towers.py: 1 for a CLS token, 0 for SigLIP): 7 for ViT-B/32 (50 tokens), 4
    for the zoo model (17 tokens), 14 for SigLIP ViT-B/16 at 224 px (196 tokens, no CLS); 0
    when the patches do not form a square."""
    n = n_tokens - prefix_tokens
    side = int(round(n**0.5)) if n > 0 else 0
    return side if side * side == n else 0


class RunningTopK:
    """The best `k` rows per tracked feature, their pooled activations and patch maps.

    `features` are the SAE feature ids tracked (None: every one of `n_features`). After
    `update`s, `rows[i, j]` is the j-th strongest row for `features[i]` (-1 when fewer than j+1
    rows were seen), `values[i, j]` its pooled activation and `maps[i, j]` its activation on
    each patch token (row-major over the grid). The patch tokens are the last `n_patches`
    tokens, after `prefix_tokens` others (a CLS token; none on SigLIP towers).
    """

    def __init__(
        self,
        n_features: int,
        k: int,
        *,
        features: Any = None,
        n_patches: int | None = None,
        prefix_tokens: int = 1,
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
        self.prefix_tokens = int(prefix_tokens)
        # The maps live in fixed physical slots, so an entry that survives a fold never moves:
        # `_slots[i, j]` is the slot holding the map of the j-th strongest row of feature i,
        # `_store[s, :, i]` that map. Features are the innermost axis, as in the latents
        # [B, T, M]: writing a batch's maps is then a gather along the batch axis that reads
        # and writes memory in order (a transposed layout costs a strided copy per batch).
        self._store: torch.Tensor | None = (
            torch.zeros((self.k, n_patches, f), dtype=torch.float32, device=dev)
            if n_patches
            else None
        )
        self._slots = torch.arange(self.k, device=dev).expand(f, self.k).clone()
        self.n_rows = 0

    @property
    def maps(self) -> torch.Tensor | None:
        """[F, k, P]: `maps[i, j]` is the patch map of the j-th strongest row of feature i."""
        import torch

        if self._store is None:
            return None
        by_feature = self._store.permute(2, 0, 1)  # [F, k, P] view
        idx = self._slots[:, :, None].expand(-1, -1, by_feature.shape[2])
        return torch.gather(by_feature, 1, idx)

    @maps.setter
    def maps(self, value: torch.Tensor | None) -> None:
        import torch

        self._store = None if value is None else value.permute(1, 2, 0).contiguous()
        f, k = self._slots.shape
        self._slots = torch.arange(k, device=self._slots.device).expand(f, k).clone()

    # ---- updating ------------------------------------------------------------------------

    def update(self, pooled: torch.Tensor, acts: torch.Tensor, rows: Any) -> None:
        """Fold in one batch: `pooled` [B, M] per-image pooled activations of every feature,
        `acts` [B, T, M] the latents of every token (the patch maps read the tokens after the
        `prefix_tokens` first: 1..T-1 behind a CLS token, all of them on a CLS-less tower),
        `rows` the B row indices of the batch's images."""
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
        if self._store is not None:
            if acts.shape[1] - self.prefix_tokens != self.n_patches:
                raise TopKError(
                    f"the running top-k expects {self.n_patches} patch tokens, the batch has "
                    f"{acts.shape[1] - self.prefix_tokens}"
                )
            new_maps = _LazyBatchMaps(acts, feats, self.prefix_tokens)
        self._fold(new_vals, new_rows, new_maps)
        self.n_rows += b

    def merge(self, other: RunningTopK) -> RunningTopK:
        """Fold another state over the same features in (e.g. a second process's partial
        top-k over other rows); the result equals one pass over both states' rows."""
        if (
            other.k != self.k
            or other.n_features != self.n_features
            or other.n_patches != self.n_patches
            or other.prefix_tokens != self.prefix_tokens
            or not bool((other.features.cpu() == self.features.cpu()).all())
        ):
            raise TopKError(
                "cannot merge running top-k states with different k, features or patch grids"
            )
        maps = None
        if self._store is not None and other._store is not None:
            maps = _StoredMaps(
                other._store.to(self.values.device), other._slots.to(self.values.device)
            )
        self._fold(
            other.values.to(self.values.device),
            other.rows.to(self.values.device),
            maps,
        )
        self.n_rows += other.n_rows
        return self

    def _fold(self, new_vals: torch.Tensor, new_rows: torch.Tensor, new_maps: Any) -> None:
        """Merge candidates [F, n] (values, rows, and their maps on demand) into the state.

        Only features where some candidate reaches the current k-th value can change, so
        only those are sorted and copied: after the first batches that is a small subset.
        """
        import torch

        k = self.k
        reach = (new_vals >= self.values[:, k - 1 : k]).any(dim=1)
        sub = reach.nonzero().squeeze(1)
        if not sub.numel():
            return
        whole = sub.numel() == len(self.features)
        old_vals = self.values if whole else self.values[sub]
        old_rows = self.rows if whole else self.rows[sub]
        cand_vals = torch.cat([old_vals, new_vals if whole else new_vals[sub]], dim=1)
        cand_rows = torch.cat([old_rows, new_rows if whole else new_rows[sub]], dim=1)
        # Total order: value descending, then row ascending (two stable sorts, minor key first).
        by_row = torch.sort(cand_rows, dim=1, stable=True).indices
        vals_by_row = torch.gather(cand_vals, 1, by_row)
        by_val = torch.sort(vals_by_row, dim=1, descending=True, stable=True).indices[:, :k]
        pick = torch.gather(by_row, 1, by_val)  # [S, k] positions among the candidates
        values = torch.gather(cand_vals, 1, pick)
        rows = torch.gather(cand_rows, 1, pick)
        if whole:
            self.values, self.rows = values, rows
        else:
            self.values[sub], self.rows[sub] = values, rows
        if self._store is None or new_maps is None:
            return
        # Survivors keep their slots; each new entry takes a slot an evicted entry freed.
        old_slots = self._slots if whole else self._slots[sub]
        is_new = pick >= k
        slots = torch.gather(old_slots, 1, pick.clamp(max=k - 1))
        used = _scatter_or(slots, ~is_new)  # the survivors' slots (distinct)
        free = torch.argsort(used.to(torch.int8), dim=1, stable=True)  # free slots first
        nth_new = (torch.cumsum(is_new.to(torch.int64), dim=1) - 1).clamp(min=0)
        slots = torch.where(is_new, torch.gather(free, 1, nth_new), slots)
        if whole:
            self._slots = slots
        else:
            self._slots[sub] = slots
        si, sj = torch.nonzero(is_new, as_tuple=True)
        if not si.numel():
            return
        # source[s, i]: which candidate's map goes into slot s of feature i (-1: none).
        source = torch.full((k, len(self.features)), -1, dtype=torch.int64, device=pick.device)
        source[slots[si, sj], sub[si]] = pick[si, sj] - k
        n_feat = len(self.features)
        for s in range(k):
            into = source[s] >= 0
            fi = into.nonzero().squeeze(1)
            if not fi.numel():
                continue
            if fi.numel() * 8 < n_feat:
                # A few features (the steady state of a long pass): copy just their maps.
                self._store[s][:, fi] = new_maps.take(fi, source[s, fi]).T
            else:
                fresh = new_maps.gather(source[s].clamp(min=0))  # [P, F]
                self._store[s] = torch.where(into, fresh, self._store[s])

    # ---- reading -------------------------------------------------------------------------

    def index_of(self, feature: int) -> int:
        if self.all_features:
            return int(feature)
        hits = (self.features == int(feature)).nonzero()
        if not hits.numel():
            raise TopKError(f"feature {feature} is not tracked by this running top-k")
        return int(hits[0, 0])

    def top(self, feature: int) -> list[tuple[int, float, np.ndarray | None]]:
        """(row, pooled activation, patch map or None) of the feature's best rows, best first.

        Maps come at the float16 precision the statistics cache keeps (`to_columns`), so a card
        drawn right after a pass is the same picture as one drawn from the cache."""
        i = self.index_of(feature)
        rows = self.rows[i].cpu().numpy()
        vals = self.values[i].cpu().numpy()
        maps = (
            self._store[self._slots[i], :, i].cpu().numpy().astype(np.float16).astype(np.float32)
            if self._store is not None
            else None
        )
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
            "prefix_tokens": self.prefix_tokens,
            "all_features": self.all_features,
            "n_rows": self.n_rows,
        }

    @classmethod
    def from_columns(cls, cols: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> RunningTopK:
        import torch

        try:
            k = int(meta["k"])
            feats = None if meta.get("all_features") else cols["features"]
            out = cls(
                int(meta["n_features"]),
                k,
                features=feats,
                n_patches=meta.get("n_patches"),
                prefix_tokens=int(meta.get("prefix_tokens", 1)),  # stored before: a CLS token
            )
            rows = np.asarray(cols["rows"], dtype=np.int64).copy()
            rows[rows < 0] = _EMPTY_ROW
            out.rows = torch.from_numpy(rows)
            out.values = torch.from_numpy(np.asarray(cols["values"], dtype=np.float32).copy())
            if out._store is not None:
                out.maps = torch.from_numpy(np.asarray(cols["maps"], dtype=np.float32))
            out.n_rows = int(meta.get("n_rows", 0))
        except (KeyError, TypeError, ValueError) as e:
            raise TopKError(f"a stored running top-k is incomplete: {e}") from None
        f = len(out.features)
        if out.rows.shape != (f, k) or out.values.shape != (f, k):
            raise TopKError("a stored running top-k has arrays of the wrong shape")
        if out._store is not None and out._store.shape != (k, out.n_patches, f):
            raise TopKError("a stored running top-k has patch maps of the wrong shape")
        return out


class _LazyBatchMaps:
    """The patch maps of a batch's images, gathered per slot for every tracked feature at
    once: [F, B, P] for 49,152 features would cost gigabytes."""

    def __init__(self, acts: Any, feats: Any, prefix_tokens: int = 1) -> None:
        patches = acts[:, prefix_tokens:, :]  # [B, P, M], a view
        self.patches = patches if patches.shape[2] == len(feats) else patches[:, :, feats]

    def gather(self, image: Any) -> Any:
        """[P, F]: for each tracked feature i, its map on batch image `image[i]`."""
        import torch

        p = self.patches
        idx = image.to(p.device).view(1, 1, -1).expand(1, p.shape[1], -1)
        return torch.gather(p, 0, idx)[0].to(image.device, torch.float32)

    def take(self, fi: Any, image: Any) -> Any:
        """[n, P]: the maps of tracked features `fi` on batch images `image`."""
        import torch

        dev = fi.device
        out = self.patches[image.to(self.patches.device), :, fi.to(self.patches.device)]
        return out.to(dev, torch.float32)


class _StoredMaps:
    """Another state's maps, gathered by that state's rank of each entry."""

    def __init__(self, store: Any, slots: Any) -> None:
        self.store = store  # [k, P, F]
        self.slots = slots  # [F, k]

    def gather(self, rank: Any) -> Any:
        import torch

        phys = torch.gather(self.slots, 1, rank[:, None])[:, 0]  # [F]
        idx = phys.view(1, 1, -1).expand(1, self.store.shape[1], -1)
        return torch.gather(self.store, 0, idx)[0]

    def take(self, fi: Any, rank: Any) -> Any:
        """[n, P]: the maps of features `fi` at ranks `rank` of the other state."""
        return self.store[self.slots[fi, rank], :, fi]


def _scatter_or(slots: Any, mask: Any) -> Any:
    """[S, k] bool: which slots the entries selected by `mask` occupy (the others' slot
    values are placeholders and are ignored)."""
    import torch

    out = torch.zeros_like(mask)
    flat = (slots + torch.arange(len(slots), device=slots.device)[:, None] * slots.shape[1])[mask]
    out.view(-1)[flat] = True
    return out
