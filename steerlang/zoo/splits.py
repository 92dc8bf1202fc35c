"""The zoo's evaluation splits, drawn from SynthWorld streams the training set never uses.

Each function returns records (dicts with a PIL `image` and the ground truth) in a fixed order;
`steerlang.zoo.datasets` writes them in the real on-disk formats, and the model card's
numbers are measured on the same records.

- waterbirds: train 95% background-correlated (as Waterbirds' train), val and test balanced on
  background within each class (as Waterbirds' val/test); group = 2·y + place.
- celeba: faces with Blond_Hair / Male (and a few derived CelebA columns); train follows the
  world's correlation (few blond men), val and test are group-balanced (2·blond + male) so the
  worst group has enough images to measure.
- typographic: shape objects with a wrong shape word written on them (RTA-style), and the
  same objects clean (`shapes`), pixel-identical except for the word.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from steerlang.zoo.world import (
    COLOURS,
    SHAPES,
    SynthWorld,
    render_bird,
    render_face,
    render_shape,
    write_word,
)

WATERBIRDS_COUNTS: dict[str, tuple[int, int, int, int]] = {  # per group g0..g3
    "train": (228, 12, 12, 228),
    "val": (50, 50, 50, 50),
    "test": (100, 100, 100, 100),
}
# per group (non-blond woman, non-blond man, blond woman, blond man)
CELEBA_COUNTS: dict[str, tuple[int, int, int, int]] = {
    "train": (264, 288, 112, 8),
    "val": (50, 50, 50, 50),
    "test": (100, 100, 100, 100),
}

# Pseudo-species names per bird type (CUB-style folder names; the waterbird ones contain the
# substrings Waterbirds uses to label waterbirds).
LAND_SPECIES = ("Synth_Forest_Finch", "Synth_Wood_Warbler", "Synth_Tree_Sparrow")
WATER_SPECIES = ("Synth_Lake_Gull", "Synth_Pond_Grebe", "Synth_Bay_Tern")


def _grouped(counts: dict[str, tuple[int, int, int, int]]) -> list[tuple[str, int]]:
    """(split, group) for every record, groups interleaved so any prefix is near-balanced."""
    out: list[tuple[str, int]] = []
    for split in ("train", "val", "test"):
        c = list(counts[split])
        left = list(c)
        total = sum(c)
        for k in range(total):
            # pick the group furthest behind its share
            g = max(range(4), key=lambda j: (c[j] * (k + 1) / total - (c[j] - left[j]), -j))
            left[g] -= 1
            out.append((split, g))
    return out


# The splits depend only on the world's seed (not its training knobs), so they are rendered once
# per seed and process; callers get a fresh list of the shared records and must not edit images.


def waterbirds_records(world: SynthWorld) -> list[dict[str, Any]]:
    return list(_waterbirds(world.seed))


@lru_cache(maxsize=2)
def _waterbirds(seed: int) -> tuple[dict[str, Any], ...]:
    world = SynthWorld(seed)
    recs = []
    for i, (split, g) in enumerate(_grouped(WATERBIRDS_COUNTS)):
        rng = world.rng("waterbirds", i)
        y, place = g // 2, g % 2
        colour = COLOURS[int(rng.integers(len(COLOURS)))]
        species = (WATER_SPECIES if y else LAND_SPECIES)[int(rng.integers(3))]
        recs.append(
            {
                "image": render_bird(rng, y, place, colour),
                "y": y,
                "place": place,
                "split": split,
                "species": species,
                "colour": colour,
            }
        )
    return tuple(recs)


def celeba_records(world: SynthWorld) -> list[dict[str, Any]]:
    return list(_celeba(world.seed))


@lru_cache(maxsize=2)
def _celeba(seed: int) -> tuple[dict[str, Any], ...]:
    world = SynthWorld(seed)
    recs = []
    for i, (split, g) in enumerate(_grouped(CELEBA_COUNTS)):
        rng = world.rng("celeba", i)
        blond, male = g // 2, g % 2
        img = render_face(rng, blond, male)
        attrs = {
            "Blond_Hair": blond,
            "Male": male,
            "Black_Hair": int(not blond and rng.random() < 0.5),
            "Young": 1,
        }
        recs.append({"image": img, "split": split, "attrs": attrs})
    return tuple(recs)


def celeba_like_faces(world: SynthWorld, n: int) -> list[Any]:
    """`n` faces drawn like the CelebA training split (the same share of men, and of blond hair
    among women and among men, as `CELEBA_COUNTS["train"]`) from a stream of their own, so
    they share no image with any split: the training images of the CelebA-domain SAE."""
    nb_w, nb_m, b_w, b_m = CELEBA_COUNTS["train"]
    p_man = (nb_m + b_m) / (nb_w + nb_m + b_w + b_m)
    p_blond = (b_w / (nb_w + b_w), b_m / (nb_m + b_m))  # given woman, given man
    faces = []
    for i in range(n):
        rng = world.rng("celeba_sae", i)
        male = int(rng.random() < p_man)
        blond = int(rng.random() < p_blond[male])
        faces.append(render_face(rng, blond, male))
    return faces


SHAPES_COUNTS: dict[str, int] = {"train": 40, "val": 20, "test": 40}  # per class


def shape_objects(world: SynthWorld) -> list[dict[str, Any]]:
    return list(_shape_objects(world.seed))


@lru_cache(maxsize=2)
def _shape_objects(seed: int) -> tuple[dict[str, Any], ...]:
    """Shape objects for the typographic task: each has a split, a clean image and an attacked
    copy carrying a wrong shape word (drawn uniformly among the other classes, as the
    Defense-Prefix recipe does) on a paper note, pixel-identical except for the word."""
    world = SynthWorld(seed)
    recs = []
    i = 0
    for split in ("train", "val", "test"):
        for _ in range(SHAPES_COUNTS[split] * len(SHAPES)):
            rng = world.rng("typographic", i)
            label = SHAPES[i % len(SHAPES)]
            colour = COLOURS[int(rng.integers(len(COLOURS)))]
            clean = render_shape(rng, label, colour)
            others = [s for s in SHAPES if s != label]
            word = others[int(rng.integers(len(others)))]
            attacked = clean.copy()
            write_word(attacked, word, rng, "note")
            recs.append(
                {
                    "image": attacked,
                    "clean": clean,
                    "label": label,
                    "text": word,
                    "colour": colour,
                    "split": split,
                }
            )
            i += 1
    return tuple(recs)


def typographic_records(world: SynthWorld, split: str | None = None) -> list[dict[str, Any]]:
    """The attacked shapes (`image` carries the wrong word; `clean` is the same object)."""
    return [r for r in shape_objects(world) if split is None or r["split"] == split]


def shapes_records(world: SynthWorld) -> list[dict[str, Any]]:
    """The clean shapes with their splits (an ImageFolder for `set attack = "typographic"`)."""
    return [
        {"image": r["clean"], "label": r["label"], "split": r["split"]}
        for r in shape_objects(world)
    ]


def images_array(images: list[Any]) -> np.ndarray:
    return np.stack([np.asarray(im.convert("RGB")) for im in images])
