"""`steer zoo build` and `steer zoo info` end to end, on a tiny build."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from steerlang.cli import main
from steerlang.zoo import sae_subdir
from steerlang.zoo.model import CARD_FILE


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("zoo")
    rc = main(
        [
            "zoo",
            "build",
            "--out",
            str(out),
            "--device",
            "cpu",
            "--steps",
            "2",
            "--batch-size",
            "32",
            "--images",
            "96",
            "--sae-steps",
            "3",
            "--sae-images",
            "64",
            "--layers",
            "5,11",
        ]
    )
    assert rc == 0
    return out


def test_build_writes_clip_saes_and_card(built: Path) -> None:
    assert (built / "tiny_clip.safetensors").is_file()
    for layer in (5, 11):
        assert (built / sae_subdir(layer) / "sae.safetensors").is_file()
    assert not (built / sae_subdir(4)).exists()
    card = json.loads((built / CARD_FILE).read_text())
    assert card["train_config"]["steps"] == 2 and card["threads"] == 1
    assert set(card["zero_shot"]) >= {"waterbirds_test", "typographic", "celeba_test"}
    assert sorted(card["saes"]["layers"]) == ["11", "5"]
    # the phenomena are measured at the middle layers that have an SAE (here 5)
    assert [m["layer"] for m in card["phenomena"]["waterbirds"]] == [5, 5]
    assert [m["layer"] for m in card["phenomena"]["typographic"]] == [5, 5]
    assert not [p for p in built.iterdir() if p.name.startswith(".")]  # no temp files left


def test_built_clip_loads(built: Path) -> None:
    from steerlang.zoo import load_zoo_clip

    model, preprocess, tok = load_zoo_clip("cpu", weights=built / "tiny_clip.safetensors")
    assert model.steer_weights_file == str(built / "tiny_clip.safetensors")


def test_info_json(built: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["zoo", "info", "--json", "--dir", str(built)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["model"] == "steer-tiny-clip"
    assert doc["saes"] == ["sae/L5/resid_post", "sae/L11/resid_post"]  # in layer order
    assert doc["domain_saes"] == []  # the CelebA SAE is at layer 7, not built here
    assert doc["card"]["seed"] == 0
    assert 0 < doc["weights_bytes"] <= 25_000_000


def test_missing_weights_are_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from steerlang.errors import CheckpointError
    from steerlang.zoo import load_zoo_clip

    with pytest.raises(CheckpointError, match="not found") as e:
        load_zoo_clip("cpu", weights=tmp_path / "none.safetensors")
    assert "steer zoo build" in (e.value.help or "")


def test_build_without_the_domain_layer_trains_no_domain_sae(built: Path) -> None:
    card = json.loads((built / CARD_FILE).read_text())
    assert card["domain_saes"] == {}  # layers 5 and 11 only; the CelebA SAE is at layer 7
    assert not (built / "sae" / "celeba").exists()


def test_reuse_clip_retrains_only_the_saes(built: Path, tmp_path: Path) -> None:
    """`--reuse-clip` keeps the CLIP file and the card's CLIP section byte for byte and
    trains the general SAE and the CelebA-domain SAE (TopK, patches) at layer 7."""
    import shutil

    from steerlang.model.sae.load import load_sae

    out = tmp_path / "zoo"
    out.mkdir()
    for name in ("tiny_clip.safetensors", CARD_FILE):
        shutil.copy(built / name, out / name)
    clip_bytes = (out / "tiny_clip.safetensors").read_bytes()
    old = json.loads((out / CARD_FILE).read_text())
    argv = ["zoo", "build", "--out", str(out), "--device", "cpu", "--reuse-clip"]
    argv += ["--sae-steps", "3", "--sae-images", "64", "--layers", "7"]
    assert main(argv) == 0
    assert (out / "tiny_clip.safetensors").read_bytes() == clip_bytes
    card = json.loads((out / CARD_FILE).read_text())
    assert card["clip"] == old["clip"] and card["train_config"] == old["train_config"]
    assert sorted(card["saes"]["layers"]) == ["7"]
    assert card["saes"]["config"]["input_norm"] == "per_token_ln"
    dom = card["domain_saes"]["celeba"]
    assert (dom["layer"], dom["site"], dom["tokens"], dom["images"]) == (
        7,
        "resid_post",
        "patches",
        64,  # --sae-images: faces drawn like the CelebA training split
    )
    assert dom["config"]["arch"] == "topk" and dom["config"]["k"] == 21
    sae = load_sae(out / sae_subdir(7, "resid_post", "celeba"))
    assert sae.cfg.activation == "topk" and sae.cfg.k == 21
    assert sae.cfg.input_norm == "per_token_ln" and sae.cfg.hook.tokens == "patches"


def test_reuse_clip_without_a_built_zoo_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["zoo", "build", "--out", str(tmp_path), "--reuse-clip", "--layers", "5"]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / CARD_FILE} is not a zoo model card" in err
    assert "build without --reuse-clip" in err
