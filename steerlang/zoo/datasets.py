"""Write the zoo's evaluation splits in the real dataset formats, once, into a cache.

`materialize_dataset(name, cache_dir)` generates a dataset from SynthWorld with the project's
writers (`steerlang.data.formats`, one module per format), so the same loaders serve real and synthetic data. The
folder is keyed by the generator version and seed, written to a temporary sibling first and
renamed into place, so a killed run leaves no half-written dataset and a finished one is reused.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from steerlang.errors import DatasetError
from steerlang.files import temp_dir

ZOO_SEED = 0
# name → on-disk format (the loader `steerlang.data.load_dataset` reads it with)
ZOO_DATASETS: dict[str, str] = {
    "waterbirds": "waterbirds",
    "celeba": "celeba",
    "typographic": "typographic",
    "shapes": "imagefolder",
}
_MARKER = "zoo_dataset.json"


def dataset_key(name: str, seed: int = ZOO_SEED) -> str:
    from steerlang.zoo.world import GENERATOR_VERSION

    return f"{name}-g{GENERATOR_VERSION}-s{seed}"


def _write(name: str, root: Path, seed: int) -> dict[str, Any]:
    from steerlang.data.formats.celeba import write_celeba
    from steerlang.data.formats.imagefolder import write_imagefolder
    from steerlang.data.formats.typographic import write_typographic
    from steerlang.data.formats.waterbirds import write_waterbirds
    from steerlang.zoo import splits
    from steerlang.zoo.world import SynthWorld

    world = SynthWorld(seed)
    if name == "waterbirds":
        recs = splits.waterbirds_records(world)
        write_waterbirds(root, recs)
    elif name == "celeba":
        recs = splits.celeba_records(world)
        write_celeba(root, recs)
    elif name == "typographic":
        recs = splits.typographic_records(world)
        write_typographic(root, recs)
    elif name == "shapes":
        recs = splits.shapes_records(world)
        write_imagefolder(root, recs)
    else:  # pragma: no cover - guarded by materialize_dataset
        raise AssertionError(name)
    return {"n_images": len(recs)}


def materialize_dataset(name: str, cache_dir: Path | str, *, seed: int = ZOO_SEED) -> Path:
    """The root of zoo dataset `name` under `cache_dir`, generating it on first use.

    Names: waterbirds (Waterbirds `metadata.csv` layout), celeba (CelebA attribute and
    partition files), typographic (RTA-100 style `label=<shape>_text=<word>.png`), shapes (the
    same shapes without words, an ImageFolder with train/val/test, for `set attack =
    "typographic"`).
    """
    from steerlang.zoo.world import GENERATOR_VERSION

    if name not in ZOO_DATASETS:
        raise DatasetError(
            f"the zoo has no dataset '{name}'",
            help=f"zoo datasets: {', '.join(ZOO_DATASETS)}",
        )
    base = Path(cache_dir).expanduser() / "zoo-datasets"
    final = base / dataset_key(name, seed)
    if (final / _MARKER).is_file():
        return final
    base.mkdir(parents=True, exist_ok=True)
    if final.exists():  # a folder without the completion marker is not ours to trust
        shutil.rmtree(final, ignore_errors=True)
    tmp = temp_dir(base, f".{final.name}.")
    try:
        info = _write(name, tmp, seed)
        doc = {
            "dataset": name,
            "format": ZOO_DATASETS[name],
            "generator_version": GENERATOR_VERSION,
            "seed": seed,
            **info,
        }
        (tmp / _MARKER).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        try:
            os.replace(tmp, final)
        except OSError:
            # Another process finished the same dataset first (the target is a non-empty
            # folder); theirs is identical, so keep it.
            if not (final / _MARKER).is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
