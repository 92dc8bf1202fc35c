"""Site activations for SAE training and evaluation: captured, cached, and served as tokens.

Why one pass for many sites: the zoo build trains an SAE at every layer, and a forward pass
costs the same whether it feeds one hook or twelve, so `collect_activations` captures all
requested sites at once (and stops the forward after the last one).

Why a disk cache: the same activations serve several SAE runs (sweeps over widths, L1
coefficients, architectures), so they can be kept as safetensors shards under a key that hashes
everything that determines them (model weights, preprocessing, the images, dtype). A site's
shards are written into a temporary folder and renamed into place whole, with `meta.json`
written last, so a killed run never leaves an entry a later run would trust; an entry whose
files do not match its `meta.json` is recomputed.

Activations are always kept with every token (`[N, L, D]`, CLS at index 0) so one capture serves
SAEs of any token scope and metrics can report CLS and patch sparsity separately; the scope is
applied when tokens are handed to the trainer (`ActivationSet.tokens`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from steerlang.data.batches import image_batches
from steerlang.data.fingerprint import files_digest
from steerlang.errors import DatasetError, SteerError
from steerlang.files import temp_dir
from steerlang.model.sites import SiteLike, capture, parse_site, token_index
from steerlang.plan import TokenScope
from steerlang.training.progress import progress_bar

if TYPE_CHECKING:
    from PIL import Image

    from steerlang.model.clip import ClipHandle

ACTS_CACHE_VERSION = 1
SHARD_BYTES = 128 << 20  # target size of one cache shard
META_FILE = "meta.json"

# An image source: a dataset table (anything with `__len__` and `.image(i)`), a tensor of
# preprocessed pixels [N, 3, H, W], or any iterable of PIL images / [3, H, W] pixel tensors.
ImageSource = Any


# ------------------------------------------------------------------------------ token sources


@runtime_checkable
class TokenSource(Protocol):
    """What the trainer consumes: token vectors [T, d_in] in random order, forever."""

    d_in: int

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """Up to `n` tokens drawn at random (used to initialise b_dec and the input scale)."""
        ...

    def batches(self, batch_tokens: int, generator: torch.Generator) -> Iterator[Tensor]:
        """An endless iterator of [batch_tokens, d_in] float tensors."""
        ...


class TensorTokens:
    """Tokens held in memory [T, D]: shuffled epochs without replacement."""

    def __init__(self, x: Tensor) -> None:
        if x.ndim == 3:
            x = x.reshape(-1, x.shape[-1])
        if x.ndim != 2 or x.shape[0] == 0:
            raise SteerError(
                f"training activations must be [tokens, d] or [images, tokens, d] with at least "
                f"one token, got shape {list(x.shape)}"
            )
        self.x = x
        self.d_in = int(x.shape[1])

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        idx = torch.randperm(len(self), generator=generator)[:n]
        return self.x[idx].float()

    def batches(self, batch_tokens: int, generator: torch.Generator) -> Iterator[Tensor]:
        t = len(self)
        if t < batch_tokens:  # fewer tokens than one batch: sample with replacement
            while True:
                yield self.x[torch.randint(0, t, (batch_tokens,), generator=generator)].float()
        while True:
            perm = torch.randperm(t, generator=generator)
            for i in range(0, t - batch_tokens + 1, batch_tokens):
                yield self.x[perm[i : i + batch_tokens]].float()


def _scope_tokens(acts: Tensor, tokens: TokenScope) -> Tensor:
    """[N, L, D] -> [N * L', D] for the tokens in scope."""
    sel = acts[:, token_index(tokens, acts.shape[1])]
    return sel.reshape(-1, acts.shape[-1])


class ShardTokens:
    """Tokens read from cache shards, mixed across several random shards at a time.

    Shards follow dataset order (often sorted by class), so a buffer pools `buffer_bytes` worth
    of randomly chosen shards before shuffling; otherwise batches would be class-homogeneous.
    """

    def __init__(
        self, shards: Sequence[Path], tokens: TokenScope, d_in: int, *, buffer_bytes: int = 1 << 30
    ) -> None:
        if not shards:
            raise SteerError("no activation shards to train on")
        self.shards = list(shards)
        self.tokens = tokens
        self.d_in = d_in
        self.buffer_bytes = buffer_bytes

    def _load(self, path: Path) -> Tensor:
        from steerlang.model.sae.tensors import read_safetensors

        return _scope_tokens(read_safetensors(path)["acts"], self.tokens)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        got: list[Tensor] = []
        have = 0
        for j in torch.randperm(len(self.shards), generator=generator).tolist():
            t = self._load(self.shards[j])
            got.append(t)
            have += t.shape[0]
            if have >= n:
                break
        x = torch.cat(got)
        return x[torch.randperm(x.shape[0], generator=generator)[:n]].float()

    def batches(self, batch_tokens: int, generator: torch.Generator) -> Iterator[Tensor]:
        leftover = torch.empty(0, self.d_in)
        while True:
            order = torch.randperm(len(self.shards), generator=generator).tolist()
            while order:
                pool = [leftover]
                size = 0
                while order and (size < self.buffer_bytes or len(pool) < 2):
                    t = self._load(self.shards[order.pop()]).float()
                    pool.append(t)
                    size += t.numel() * 4
                x = torch.cat(pool)
                x = x[torch.randperm(x.shape[0], generator=generator)]
                n_full = x.shape[0] // batch_tokens
                for i in range(n_full):
                    yield x[i * batch_tokens : (i + 1) * batch_tokens]
                leftover = x[n_full * batch_tokens :]


class StreamingTokens:
    """Tokens computed on the fly by the model, through a shuffle buffer.

    For sources too large to hold or cache (ImageNet-scale training of a ViT-B-32 SAE): every
    image is run once per epoch; the buffer mixes `buffer_tokens` tokens from many images so
    a batch is not dominated by one image's patches.
    """

    def __init__(
        self,
        handle: ClipHandle,
        site: SiteLike,
        source: ImageSource,
        *,
        tokens: TokenScope = "all",
        batch_size: int = 64,
        buffer_tokens: int = 1 << 18,
        max_images: int | None = None,
    ) -> None:
        self.handle = handle
        self.site = parse_site(site)
        self.source = source
        self.tokens = tokens
        self.batch_size = batch_size
        self.buffer_tokens = buffer_tokens
        self.max_images = max_images
        self.d_in = handle.width

    def _token_batches(self, source: ImageSource = None) -> Iterator[Tensor]:
        src = self.source if source is None else source
        with (
            torch.inference_mode(),
            capture(self.handle.model, [self.site], stop_early=True, device="cpu") as cap,
        ):
            for pixels in iter_pixel_batches(
                src, self.handle.preprocess, self.batch_size, limit=self.max_images
            ):
                acts = cap.run(pixels.to(self.handle.device))[self.site.hook_name]
                yield _scope_tokens(acts, self.tokens).float()

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """Tokens from randomly chosen images when the source allows random access (datasets
        are often sorted by class, so the first images would bias b_dec), else the first ones."""
        source = self.source
        total = count_images(source, self.max_images)
        if total and (is_table(source) or isinstance(source, Tensor | Sequence)):
            per_image = max(1, token_count(self.tokens, self.handle.n_tokens))
            k = min(total, -(-n // per_image))
            idx = torch.randperm(total, generator=generator)[:k].sort().values.tolist()
            source = _Pick(source, idx)
        got: list[Tensor] = []
        have = 0
        for t in self._token_batches(source):
            got.append(t)
            have += t.shape[0]
            if have >= n:
                break
        if not got:
            raise DatasetError("the image source for SAE training is empty")
        x = torch.cat(got)
        return x[torch.randperm(x.shape[0], generator=generator)[:n]]

    def batches(self, batch_tokens: int, generator: torch.Generator) -> Iterator[Tensor]:
        buf = torch.empty(0, self.d_in)
        cap = max(self.buffer_tokens, 2 * batch_tokens)
        while True:
            produced = False
            for t in self._token_batches():
                produced = True
                buf = torch.cat([buf, t])
                if buf.shape[0] >= cap:  # a full buffer: serve half of it, keep mixing the rest
                    buf = yield from self._serve(buf, batch_tokens, generator, keep=cap // 2)
            if not produced:
                raise DatasetError("the image source for SAE training is empty")
            # End of an epoch: a source smaller than the buffer is served whole each epoch.
            buf = yield from self._serve(buf, batch_tokens, generator, keep=0)

    @staticmethod
    def _serve(
        buf: Tensor, batch_tokens: int, generator: torch.Generator, *, keep: int
    ) -> Generator[Tensor, None, Tensor]:
        """Shuffle `buf`, yield full batches until at most `keep` tokens (or less than a batch)
        remain, and return the remainder."""
        buf = buf[torch.randperm(buf.shape[0], generator=generator)]
        n = max(0, buf.shape[0] - keep) // batch_tokens * batch_tokens
        for i in range(0, n, batch_tokens):
            yield buf[i : i + batch_tokens]
        return buf[n:]


class _Pick:
    """A random-access view of some rows of an image source (same `image`/`len` interface)."""

    def __init__(self, source: ImageSource, idx: list[int]) -> None:
        self.source, self.idx = source, idx

    def __len__(self) -> int:
        return len(self.idx)

    def image(self, i: int) -> Any:
        j = self.idx[i]
        return self.source.image(j) if is_table(self.source) else self.source[j]


def token_count(tokens: TokenScope, n_tokens: int) -> int:
    """How many of an image's `n_tokens` tokens are in scope."""
    return (
        len(range(n_tokens)[token_index(tokens, n_tokens)])
        if not isinstance(tokens, list)
        else len(tokens)
    )


# ------------------------------------------------------------------------------ images


def is_table(source: Any) -> bool:
    """A dataset table: random access by index (`ImageTable` and its subclasses)."""
    return hasattr(source, "image") and hasattr(source, "__len__")


def count_images(source: ImageSource, limit: int | None = None) -> int | None:
    if isinstance(source, Tensor) or is_table(source) or isinstance(source, Sequence):
        n = int(source.shape[0]) if isinstance(source, Tensor) else len(source)
        return n if limit is None else min(n, limit)
    return limit


def iter_pixel_batches(
    source: ImageSource, preprocess: Any, batch_size: int, *, limit: int | None = None
) -> Iterator[Tensor]:
    """Preprocessed pixel batches [n, 3, H, W] from any image source, in source order."""
    if batch_size <= 0:
        raise SteerError(f"batch size must be positive, got {batch_size}")
    if isinstance(source, Tensor):
        if source.ndim != 4:
            raise SteerError(
                f"a pixel tensor must be [N, 3, H, W] (already preprocessed), got shape "
                f"{list(source.shape)}"
            )
        n = count_images(source, limit) or 0
        for i in range(0, n, batch_size):
            yield source[i : min(i + batch_size, n)]
        return
    if is_table(source):
        n = count_images(source, limit) or 0
        for _, pixels in image_batches(source, range(n), preprocess, batch_size):
            yield pixels
        return
    batch: list[Tensor] = []
    for j, img in enumerate(source):
        if limit is not None and j >= limit:
            break
        batch.append(_pixels(img, preprocess))
        if len(batch) == batch_size:
            yield torch.stack(batch)
            batch = []
    if batch:
        yield torch.stack(batch)


def _pixels(img: Image.Image | Tensor, preprocess: Any) -> Tensor:
    if isinstance(img, Tensor):
        return img
    return preprocess(img)


def source_fingerprint(source: ImageSource, limit: int | None = None) -> dict[str, Any]:
    """A JSON-able identity of an image source, for cache keys.

    Plain `ImageTable`s are keyed by their root and their files
    (`steerlang.data.fingerprint.files_digest`: relative path and size), as the statistics
    cache of `steer run` is. Anything whose images are not plain files (tensors, PIL lists,
    attacked or synthetic tables) is keyed by its pixels.
    """
    from steerlang.data.table import ImageTable

    n = count_images(source, limit)
    h = hashlib.sha256()
    if isinstance(source, Tensor):
        t = source[:n].detach().contiguous().cpu().float()
        h.update(f"{list(t.shape)}|".encode())
        h.update(t.numpy().tobytes())
        return {"kind": "pixels", "n": n, "sha256": h.hexdigest()}
    if type(source) is ImageTable:
        return {
            "kind": "files",
            "format": source.format,
            "root": str(source.root.resolve()),
            "n": n,
            "sha256": files_digest(source, range(n or 0)),
        }
    if not (is_table(source) or isinstance(source, Sequence)):
        raise SteerError(
            "cannot cache activations of a one-shot image iterator",
            help="pass a dataset table, a list of images or a pixel tensor to use --cache-acts",
        )
    for i in range(n or 0):
        img = source.image(i) if is_table(source) else source[i]
        if isinstance(img, Tensor):
            h.update(f"t{list(img.shape)}|".encode())
            h.update(img.detach().contiguous().cpu().float().numpy().tobytes())
        else:
            h.update(f"i{img.mode}{img.size}|".encode())
            h.update(img.tobytes())
    return {"kind": "images", "n": n, "sha256": h.hexdigest()}


# ------------------------------------------------------------------------------ activation sets


@dataclass
class ActivationSet:
    """All-token activations of one site for N images, in memory or as cache shards."""

    site: str  # canonical hook name, e.g. blocks.7.hook_resid_post
    n_images: int
    n_tokens: int
    d: int
    tensor: Tensor | None = None  # [N, L, D] when in memory
    shards: list[Path] = field(default_factory=list)  # cache shards, each {"acts": [n, L, D]}

    def chunks(self) -> Iterator[Tensor]:
        """[n, L, D] blocks in image order (one shard at a time when on disk)."""
        if self.tensor is not None:
            yield self.tensor
            return
        from steerlang.model.sae.tensors import read_safetensors

        for p in self.shards:
            yield read_safetensors(p)["acts"]

    def load(self) -> Tensor:
        """Everything as one [N, L, D] tensor (in memory: the tensor itself)."""
        if self.tensor is not None:
            return self.tensor
        return torch.cat(list(self.chunks()))

    def tokens(self, tokens: TokenScope = "all") -> TokenSource:
        """A token source over the tokens in scope, for `train_sae`."""
        if self.tensor is not None:
            return TensorTokens(_scope_tokens(self.tensor, tokens))
        return ShardTokens(self.shards, tokens, self.d)


class _MemoryWriter:
    def __init__(self, site: str) -> None:
        self.site = site
        self.parts: list[Tensor] = []

    def add(self, acts: Tensor) -> None:
        self.parts.append(acts)

    def finish(self) -> ActivationSet:
        x = torch.cat(self.parts) if self.parts else torch.empty(0, 0, 0)
        return ActivationSet(self.site, x.shape[0], x.shape[1], x.shape[2], tensor=x)


class _ShardWriter:
    """Writes one site's shards into a temp folder; `finish` renames it into place."""

    def __init__(self, final: Path, site: str, key_doc: dict[str, Any]) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        self.final = final
        self.site = site
        self.key_doc = key_doc
        self.tmp = temp_dir(final.parent, f".{final.name}.")
        self.parts: list[Tensor] = []
        self.pending = 0
        self.shards: list[dict[str, Any]] = []
        self.shape: tuple[int, int] | None = None

    def add(self, acts: Tensor) -> None:
        self.shape = (int(acts.shape[1]), int(acts.shape[2]))
        self.parts.append(acts)
        self.pending += acts.numel() * acts.element_size()
        if self.pending >= SHARD_BYTES:
            self._flush()

    def _flush(self) -> None:
        from safetensors.torch import save_file

        if not self.parts:
            return
        x = torch.cat(self.parts).contiguous()
        name = f"shard-{len(self.shards):05d}.safetensors"
        save_file({"acts": x}, str(self.tmp / name))
        self.shards.append(
            {"file": name, "n_images": int(x.shape[0]), "bytes": (self.tmp / name).stat().st_size}
        )
        self.parts, self.pending = [], 0

    def finish(self) -> ActivationSet:
        self._flush()
        if self.shape is None:
            self.abort()
            raise DatasetError("the image source is empty: no activations to cache")
        n_tokens, d = self.shape
        meta = {
            "cache_format": ACTS_CACHE_VERSION,
            "site": self.site,
            "n_images": sum(s["n_images"] for s in self.shards),
            "n_tokens": n_tokens,
            "d": d,
            "shards": self.shards,
            "key": self.key_doc,
        }
        (self.tmp / META_FILE).write_text(json.dumps(meta, indent=1), "utf-8")
        if self.final.exists():
            shutil.rmtree(self.final, ignore_errors=True)  # invalid entry being replaced
        try:
            os.replace(self.tmp, self.final)
        except OSError:
            if _read_entry(self.final) is None:  # not a concurrent writer that finished first
                raise
            shutil.rmtree(self.tmp, ignore_errors=True)
        entry = _read_entry(self.final)
        assert entry is not None
        return entry

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def _read_entry(folder: Path) -> ActivationSet | None:
    """A cached site, or None when absent, from another format, or inconsistent with its files."""
    try:
        meta = json.loads((folder / META_FILE).read_text("utf-8"))
        if meta.get("cache_format") != ACTS_CACHE_VERSION:
            return None
        shards = []
        for s in meta["shards"]:
            p = folder / s["file"]
            if not p.is_file() or p.stat().st_size != int(s["bytes"]):
                return None
            shards.append(p)
        return ActivationSet(
            site=meta["site"],
            n_images=int(meta["n_images"]),
            n_tokens=int(meta["n_tokens"]),
            d=int(meta["d"]),
            shards=shards,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def activation_key(
    handle: ClipHandle, source: ImageSource, *, dtype: torch.dtype, limit: int | None
) -> tuple[str, dict[str, Any]]:
    """(short key, the document it hashes): model weights, preprocessing, images, dtype."""
    doc = {
        "version": ACTS_CACHE_VERSION,
        "model": handle.content_hash,
        # Tensor sources are already preprocessed; otherwise the transform is part of the key.
        "preprocess": None if isinstance(source, Tensor) else repr(handle.preprocess),
        "source": source_fingerprint(source, limit),
        "dtype": str(dtype).removeprefix("torch."),
    }
    key = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:24]
    return key, doc


def collect_activations(
    handle: ClipHandle,
    sites: Sequence[SiteLike],
    source: ImageSource,
    *,
    batch_size: int = 64,
    dtype: torch.dtype = torch.float32,
    cache_dir: str | os.PathLike[str] | None = None,
    max_images: int | None = None,
    progress: bool = False,
    log: Any = None,
) -> dict[str, ActivationSet]:
    """Activations at every site in `sites` for the images of `source`, from one forward pass.

    Returns `{hook_name: ActivationSet}` with all tokens ([N, L, D]). With `cache_dir`, sites
    already cached under the same content key are read from disk (`log` gets a line saying so)
    and only the missing ones are computed, in one pass.
    """
    refs = {parse_site(s).hook_name: parse_site(s) for s in sites}
    if not refs:
        raise SteerError("collect_activations needs at least one site")
    out: dict[str, ActivationSet] = {}
    key_doc: dict[str, Any] = {}
    root: Path | None = None
    if cache_dir is not None:
        key, key_doc = activation_key(handle, source, dtype=dtype, limit=max_images)
        root = Path(cache_dir) / "activations" / key
        for name in refs:
            hit = _read_entry(root / name)
            if hit is not None:
                out[name] = hit
                if log is not None:
                    log(f"activations {name}: reusing cache {root / name}")
    missing = [n for n in refs if n not in out]
    if not missing:
        return out
    writers: dict[str, _MemoryWriter | _ShardWriter] = {
        n: (_ShardWriter(root / n, n, key_doc) if root is not None else _MemoryWriter(n))
        for n in missing
    }
    total = count_images(source, max_images)
    try:
        with (
            torch.inference_mode(),
            capture(
                handle.model, [refs[n] for n in missing], stop_early=True, dtype=dtype, device="cpu"
            ) as cap,
            progress_bar(progress, f"activations ({len(missing)} sites)", total) as advance,
        ):
            for pixels in iter_pixel_batches(
                source, handle.preprocess, batch_size, limit=max_images
            ):
                acts = cap.run(pixels.to(handle.device))
                for n in missing:
                    writers[n].add(acts[n])
                advance(pixels.shape[0])
        for n in missing:
            out[n] = writers[n].finish()
    except BaseException:
        for w in writers.values():
            if isinstance(w, _ShardWriter):
                w.abort()
        raise
    if out[missing[0]].n_images == 0:
        raise DatasetError("the image source is empty: no activations collected")
    return {n: out[n] for n in refs}
