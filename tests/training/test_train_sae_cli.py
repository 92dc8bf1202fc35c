"""`steer train-sae` and `steer sae-stats` end to end on a tiny open_clip model and an
ImageFolder fixture."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from steerlang.cli import main
from steerlang.data import make_imagefolder_fixture
from steerlang.model.clip import TINY_CONFIG, register_model_config
from steerlang.model.sae.load import load_sae

MODEL = "openclip:steer-train-test@random"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    register_model_config("steer-train-test", TINY_CONFIG)
    root = tmp_path_factory.mktemp("data") / "if"
    return make_imagefolder_fixture(root, n_per_class=8, image_size=32)


def _train(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(["train-sae", "--model", MODEL, "--device", "cpu", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_train_sae_cli_trains_saves_and_reports(
    data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "saes"
    common = ["--data", f"imagefolder:{data_root}", "--steps", "40", "--batch-tokens", "64"]
    common += [
        "--arch",
        "topk",
        "--k",
        "4",
        "--eval-images",
        "6",
        "--cache-acts",
        str(tmp_path / "c"),
    ]
    rc, stdout, _ = _train(["--layer", "1,3", "--out", str(out), "--json", *common], capsys)
    assert rc == 0
    doc = json.loads(stdout)
    assert set(doc["saes"]) == {"blocks.1.hook_resid_post", "blocks.3.hook_resid_post"}
    m = doc["saes"]["blocks.3.hook_resid_post"]["metrics"]
    assert m["l0"] == pytest.approx(4.0) and m["l0_cls"] == pytest.approx(4.0)
    assert m["explained_variance"] == pytest.approx(1 - m["fvu"])
    assert m["splice"]["n_images"] == 6 and 0 <= m["splice"]["acc_clean"] <= 1
    sae = load_sae(out / "L3" / "resid_post")
    assert sae.cfg.activation == "topk" and sae.cfg.k == 4 and sae.d_sae == 8 * 64
    assert sae.cfg.hook.layer == 3 and sae.cfg.hook.model == MODEL
    assert sae.cfg.metadata["training"]["config"]["steps"] == 40
    assert sae.cfg.metadata["metrics"]["fvu"] == pytest.approx(m["fvu"])
    # second run: activations come from the cache
    rc, _, err = _train(["--layer", "3", "--out", str(tmp_path / "one"), *common], capsys)
    assert rc == 0 and "reusing cache" in err
    assert load_sae(tmp_path / "one").cfg.hook.layer == 3  # a single layer writes OUT itself


def test_sae_stats_cli_table_and_json(
    data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "s"
    args = ["--layer", "2", "--out", str(out), "--data", f"imagefolder:{data_root}"]
    rc, _, _ = _train([*args, "--steps", "20", "--eval-images", "0", "--l1", "0.1"], capsys)
    assert rc == 0
    assert "metrics" not in load_sae(out).cfg.metadata  # evaluation skipped
    base = ["sae-stats", str(out), "--model", MODEL, "--data", f"imagefolder:{data_root}"]
    assert main([*base, "--device", "cpu", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    row = doc["saes"][str(out)]
    assert row["layer"] == 2 and row["n_tokens"] == 24 * 17
    assert row["splice"]["n_images"] == 24
    assert main([*base, "--device", "cpu", "--no-accuracy"]) == 0
    table = capsys.readouterr().out
    assert "EV%" in table and "CLS L0" in table and "resid_post" in table


def test_cli_errors_are_clear(
    data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, _, err = _train(
        ["--layer", "1", "--out", str(tmp_path / "x"), "--data", "imagefolder:/no/such/dir"],
        capsys,
    )
    assert rc == 1 and err.startswith("error:") and "Traceback" not in err
    rc, _, err = _train(
        ["--layer", "40", "--out", str(tmp_path / "x"), "--data", f"imagefolder:{data_root}"],
        capsys,
    )
    assert rc == 1 and "layer(s) [40] do not exist" in err
    rc, _, err = _train(["--layer", "1", "--out", str(tmp_path / "x")], capsys)
    assert rc == 1 and "--data" in err
    rc = main(["sae-stats", str(tmp_path / "missing"), "--model", MODEL, "--data", "x:y"])
    assert rc == 1 and "error:" in capsys.readouterr().err


def test_train_sae_streams_when_activations_do_not_fit(
    data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--layer", "2", "--out", str(tmp_path / "st"), "--data", f"imagefolder:{data_root}"]
    args += ["--steps", "10", "--batch-tokens", "32", "--max-memory-gb", "0", "--tokens", "cls"]
    rc, _, err = _train([*args, "--eval-images", "0"], capsys)
    assert rc == 0 and "streamed" in err
    sae = load_sae(tmp_path / "st")
    assert sae.cfg.hook.tokens == "cls"
    assert sae.cfg.metadata["training"]["tokens_seen"] == 10 * 32
