"""Datasets in their real on-disk layouts: loaders, writers, fixtures, typographic attacks.

Torch-free on purpose (numpy + Pillow only) so `steer check` and the language server can import
schemas and column names without loading a model.
"""

from steerlang.data.attack import AttackedTable, attack_image, attack_table, write_attacked_copy
from steerlang.data.fixtures import (
    make_celeba_fixture,
    make_disentangling_fixture,
    make_imagefolder_fixture,
    make_typographic_fixture,
    make_waterbirds_fixture,
)
from steerlang.data.formats import FORMATS, detect_format, load_dataset
from steerlang.data.formats.celeba import CELEBA_ATTRS, write_celeba
from steerlang.data.formats.disentangling import write_disentangling
from steerlang.data.formats.imagefolder import write_imagefolder
from steerlang.data.formats.typographic import write_typographic
from steerlang.data.formats.waterbirds import write_waterbirds
from steerlang.data.table import SPLIT_NAMES, ImageTable, normalize_split

__all__ = [
    "CELEBA_ATTRS",
    "FORMATS",
    "SPLIT_NAMES",
    "AttackedTable",
    "ImageTable",
    "attack_image",
    "attack_table",
    "detect_format",
    "load_dataset",
    "make_celeba_fixture",
    "make_disentangling_fixture",
    "make_imagefolder_fixture",
    "make_typographic_fixture",
    "make_waterbirds_fixture",
    "normalize_split",
    "write_attacked_copy",
    "write_celeba",
    "write_disentangling",
    "write_imagefolder",
    "write_typographic",
    "write_waterbirds",
]
