"""The two entry points for SAE files: `load_sae(ref)` and `save_sae(sae, directory, format=)`.

A reference is a folder path, `hf:REPO[/SUBPATH]` (the Hugging Face Hub, `hub.py`) or
`zoo:sae/L{layer}/{site}` (the shipped zoo SAEs). A folder's format is detected from its files
by the first format in `FORMATS` whose detector accepts it; its reader returns the config and
the validated canonical tensors (`SAEParts`), and the SAE is built here, in one place. Writers
live with their formats and are chosen by name in `WRITERS`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from steerlang.errors import CheckpointError, SteerError
from steerlang.model.sae import native, prisma, saelens
from steerlang.model.sae.core import SAE, SAEParts, build_sae
from steerlang.model.sae.hub import resolve_hf
from steerlang.zoo import domain_zoo_sae_refs, zoo_sae_ref_dir


@dataclass(frozen=True)
class SAEFormat:
    """An on-disk SAE folder format: how to recognise it and how to read it."""

    name: str  # as errors name it
    files: str  # what a folder of this format holds, for the "no known format" help
    detect: Callable[[Path], bool]
    read: Callable[[Path], SAEParts]
    # Why a folder that has this format's file names is still not read as it (None: unrelated).
    near_miss: Callable[[Path], str | None]


# Tried in order; the first detector that accepts a folder reads it.
FORMATS: tuple[SAEFormat, ...] = (
    SAEFormat(
        "steerlang",
        f"{native.CONFIG_FILE} + {native.WEIGHTS_FILE}",
        native.is_native,
        native.read_native,
        native.near_miss,
    ),
    SAEFormat(
        "SAELens",
        f"{saelens.CFG_FILE} + {saelens.WEIGHTS_FILE}",
        saelens.is_saelens,
        saelens.read_saelens,
        saelens.near_miss,
    ),
    SAEFormat(
        "ViT-Prisma",
        f"{prisma.CONFIG_FILE} + a .pt state dict",
        prisma.is_prisma,
        prisma.read_prisma,
        prisma.near_miss,
    ),
)

WRITERS: dict[str, Callable[[SAE, Path], Path]] = {
    "steerlang": native.save_native,
    "saelens": saelens.save_saelens,  # v6; a scalar input norm is folded into the weights
    "prisma": prisma.save_prisma,
}


def load_sae(
    ref: str | os.PathLike[str],
    *,
    device: str | torch.device = "cpu",
    allow_download: bool | None = None,
    cache_dir: str | None = None,
) -> SAE:
    """Resolve an SAE reference (folder path, `hf:REPO[/SUBPATH]`, `zoo:sae/L{l}/{site}`).

    The format of a folder is detected from its files (ours, SAELens, ViT-Prisma).
    `allow_download=None` lets `hf:` references download unless STEER_OFFLINE/HF_HUB_OFFLINE
    is set; `cache_dir` overrides the Hugging Face cache location.
    """
    s = str(ref)
    if s.startswith("hf:"):
        directory = resolve_hf(s[3:], allow_download=allow_download, cache_dir=cache_dir)
    elif s.startswith("zoo:"):
        directory = _zoo_dir(s)
    else:
        directory = Path(s).expanduser()
    parts = _detect(directory, s).read(directory)
    sae = build_sae(parts.cfg, parts.tensors, device=device)
    if parts.claimed_hash is not None and sae.content_hash() != parts.claimed_hash:
        raise CheckpointError(
            f"{parts.source}: content hash mismatch (config says {parts.claimed_hash}, "
            f"weights hash to {sae.content_hash()})",
            help="the weights file was modified or replaced after saving; re-save the SAE",
        )
    return sae


def save_sae(sae: SAE, directory: str | os.PathLike[str], *, format: str = "steerlang") -> Path:
    """Write `sae` as a folder of `format` (a key of `WRITERS`); returns the folder."""
    if format not in WRITERS:
        raise CheckpointError(
            f"unknown SAE output format {format!r}",
            help=f"use one of {', '.join(repr(f) for f in WRITERS)}",
        )
    return WRITERS[format](sae, Path(directory))


def _zoo_dir(ref: str) -> Path:
    directory = zoo_sae_ref_dir(ref)
    if directory is None:
        raise SteerError(
            f"unknown zoo SAE reference {ref!r}",
            help="write zoo:sae/L<layer>/resid_post (layers 0..11), e.g. zoo:sae/L7/resid_post, "
            "or a domain SAE: " + ", ".join(domain_zoo_sae_refs()),
        )
    return directory


def _detect(directory: Path, ref: str) -> SAEFormat:
    """The format of the SAE folder `directory` (named `ref` in errors)."""
    if not directory.exists():
        raise CheckpointError(
            f"SAE {ref}: {directory} does not exist",
            help="check the path, or use hf:REPO or zoo:sae/L<layer>/<site>",
        )
    if directory.is_file():
        raise CheckpointError(
            f"SAE {ref}: {directory} is a file; an SAE is a folder",
            help="pass the folder holding the config and the weights file",
        )
    for fmt in FORMATS:
        if fmt.detect(directory):
            return fmt
    listing = ", ".join(sorted(p.name for p in directory.iterdir())[:12]) or "empty"
    known = [f"{f.files} ({f.name})" for f in FORMATS]
    for fmt in FORMATS:
        reason = fmt.near_miss(directory)
        if reason:
            raise CheckpointError(
                f"SAE {ref}: {directory} has the files of a {fmt.name} SAE but is not one: "
                f"{reason}",
                help=f"a {fmt.name} SAE folder holds {fmt.files}",
            )
    raise CheckpointError(
        f"SAE {ref}: no known SAE format in {directory} (files: {listing})",
        help=f"expected {', '.join(known[:-1])}, or {known[-1]}",
    )
