"""Zoo SAE references: one parser (`steerlang.zoo.parse_zoo_sae_ref`) for the general
per-layer SAEs and the domain SAEs, and the folders they name."""

from __future__ import annotations

from pathlib import Path

import pytest

from steerlang.zoo import (
    WEIGHTS_DIR,
    ZOO_DOMAIN_SAES,
    parse_zoo_sae_ref,
    sae_subdir,
    shipped_zoo_sae_refs,
    zoo_sae_ref_dir,
)


@pytest.mark.parametrize(
    ("ref", "parsed"),
    [
        ("zoo:sae/L7/resid_post", (None, 7, "resid_post")),
        ("zoo:sae/celeba/L7/resid_post", ("celeba", 7, "resid_post")),
        ("zoo:sae/L99/mlp_out", (None, 99, "mlp_out")),  # shaped right, checked by callers
        ("zoo:sae/L7", None),
        ("zoo:sae/Celeba/L7/resid_post", None),
        ("zoo:sae/L1234567/resid_post", None),
    ],
)
def test_parse(ref: str, parsed: tuple | None) -> None:
    assert parse_zoo_sae_ref(ref) == parsed


def test_shipped_references_and_their_folders() -> None:
    refs = shipped_zoo_sae_refs()
    assert refs[:12] == [f"zoo:sae/L{n}/resid_post" for n in range(12)]
    assert (
        refs[12:]
        == ["zoo:sae/celeba/L7/resid_post"]
        == [f"zoo:sae/{d}/L{n}/{s}" for d, (n, s) in ZOO_DOMAIN_SAES.items()]
    )
    assert zoo_sae_ref_dir("zoo:sae/L3/resid_post") == WEIGHTS_DIR / "sae/L3/resid_post"
    assert zoo_sae_ref_dir(refs[12]) == WEIGHTS_DIR / "sae/celeba/L7/resid_post"
    for bad in ("zoo:sae/celeba/L5/resid_post", "zoo:sae/faces/L7/resid_post", "zoo:x"):
        assert zoo_sae_ref_dir(bad) is None


def test_sae_subdir_rejects_a_domain_sae_that_does_not_ship() -> None:
    assert sae_subdir(7, "resid_post", "celeba") == Path("sae/celeba/L7/resid_post")
    with pytest.raises(ValueError, match=r"no 'celeba' SAE at layer 5 .* it has celeba \(layer 7"):
        sae_subdir(5, "resid_post", "celeba")
