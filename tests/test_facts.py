"""The shared facts (steerlang/facts.py) against the things they describe: the model depths the
checker assumes, the columns the dataset loaders produce, the site kinds the hooks accept."""

from __future__ import annotations

from pathlib import Path

from steerlang import facts


def test_model_depths() -> None:
    assert facts.model_depth("default") == 12
    assert facts.model_depth("zoo:tiny-clip") == 12
    assert facts.model_depth("openclip:ViT-B-32@datacomp_xl_s13b_b90k") == 12
    assert facts.model_depth("openclip:ViT-B-16-quickgelu@openai") == 12
    assert facts.model_depth("openclip:ViT-L-14-336@openai") == 24
    assert facts.model_depth("openclip:ViT-H-14@laion2b_s32b_b79k") == 32
    assert facts.model_depth("openclip:ViT-g-14@laion2b_s12b_b42k") == 40
    assert facts.model_depth("openclip:ViT-bigG-14@laion2b_s39b_b160k") == 48
    assert facts.model_depth("openclip:RN50@openai") is None


def test_site_order_holds_every_site_kind() -> None:
    assert sorted(facts.SITE_ORDER) == sorted(facts.SITE_KINDS)
    assert set(facts.SITE_DOCS) == set(facts.SITE_KINDS)
    assert facts.SITE_KINDS[0] == "resid_post"  # the default, where released SAEs live


def test_split_aliases_map_onto_canonical_names() -> None:
    assert set(facts.SPLIT_ALIASES.values()) == set(facts.SPLIT_NAMES)
    assert all(facts.SPLIT_ALIASES[s] == s for s in facts.SPLIT_NAMES)


def test_dataset_columns_match_the_loaders(tmp_path: Path) -> None:
    """The torch-free column table equals what steerlang.data's loaders produce."""
    from steerlang.data import fixtures
    from steerlang.data.formats import load_dataset

    made = {
        "waterbirds": fixtures.make_waterbirds_fixture(tmp_path / "wb", scale=1000),
        "celeba": fixtures.make_celeba_fixture(tmp_path / "ca", scale=20000, image_size=(8, 8)),
        "typographic": fixtures.make_typographic_fixture(
            tmp_path / "ty", n_per_class=1, image_size=16
        ),
        "imagefolder": fixtures.make_imagefolder_fixture(
            tmp_path / "if", n_per_class=1, image_size=8, splits=True
        ),
    }
    for fmt, root in made.items():
        table = load_dataset(fmt, root)
        assert set(table.columns) == set(facts.DATASET_COLUMNS[fmt]), fmt
    assert facts.DATASET_COLUMNS["celeba"][1 + 9] == "Blond_Hair"
    assert facts.DATASET_COLUMNS["celeba"][1 + 20] == "Male"
    # attacked copies add their columns (what steerlang.data.attack.attack_table writes)
    from steerlang.data.attack import attack_table

    view = attack_table(load_dataset("imagefolder", made["imagefolder"]), copies="both")
    assert set(view.columns) - set(facts.DATASET_COLUMNS["imagefolder"]) == set(
        facts.ATTACK_COLUMNS
    )
