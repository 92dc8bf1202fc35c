"""`steer show` (steerlang/commands/show.py): feature cards on the zoo and on the real-format path
(an open_clip checkpoint file, a SAELens-format SAE with 49,152 latents, a Waterbirds-layout
folder), one self-contained page each."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from steerlang.cli import main
from steerlang.commands.show import parse_features
from steerlang.errors import SteerError

TINY = "steer-tiny-show"


def _page(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[Path, str]:
    rc = main(argv)
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    path = Path(cap.out.strip().splitlines()[-1])
    assert path.is_file() and path.suffix == ".html"
    return path, path.read_text("utf-8")


def _self_contained(html: str) -> None:
    """Nothing the page loads comes from elsewhere: every src is a data: URI, no http(s)."""
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    assert "@import" not in html and "url(http" not in html
    srcs = re.findall(r'src="([^"]*)"', html)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)


def _cards(html: str) -> list[str]:
    return re.findall(r'<article class="fc-card" id="feature-L(\d+)-(\w+)-(\d+)"', html)


def test_parse_features() -> None:
    assert parse_features("12, 40,97,12") == [12, 40, 97]
    with pytest.raises(SteerError, match="not a feature id"):
        parse_features("12,x")
    with pytest.raises(SteerError, match="names no feature"):
        parse_features(" , ")


@pytest.fixture(scope="module")
def zoo_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder for the zoo tests: the zoo's datasets are written into it once."""
    return tmp_path_factory.mktemp("zoo_cache")


def test_show_features_on_the_zoo(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    zoo_cache: Path,
) -> None:
    monkeypatch.setenv("STEER_CACHE", str(zoo_cache))
    argv = ["show", "--layer", "7", "--features", "607,12", "--limit", "40", "-k", "5"]
    path, html = _page(capsys, [*argv, "--out", str(tmp_path / "out"), "--device", "cpu"])
    assert path.parent == tmp_path / "out" and path.name.startswith("show-L7-resid_post-607_12-")
    _self_contained(html)
    assert _cards(html) == [("7", "resid_post", "607"), ("7", "resid_post", "12")]
    # Up to 5 images per card (a feature may fire on fewer), with a 4x4 patch grid legend.
    assert 0 < html.count("<figure>") <= 10
    assert "(4×4 grid)" in html and "waterbirds / train (40 images)" in html
    assert re.search(r"y=\d place=\d", html)  # the default --label columns
    # A second page reads the statistics and images back from the cache: same cards.
    again, html2 = _page(capsys, [*argv, "--out", str(tmp_path / "out2"), "--device", "cpu"])
    assert _cards(html2) == _cards(html)
    assert re.findall(r'src="([^"]*)"', html2) == re.findall(r'src="([^"]*)"', html)


def test_show_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "--out", str(tmp_path)]) != 0
    assert "nothing to show" in capsys.readouterr().err
    assert main(["show", "--features", "1,2", "--out", str(tmp_path)]) != 0
    assert "--features needs --layer" in capsys.readouterr().err


def test_show_a_recipe_rule_on_the_zoo(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    zoo_cache: Path,
) -> None:
    """`steer show RECIPE --rule NAME`: the rule's edited features, strongest first."""
    monkeypatch.setenv("STEER_CACHE", str(zoo_cache))
    text = Path("recipes/waterbirds.steer").read_text("utf-8")
    recipe = tmp_path / "wb.steer"
    recipe.write_text(text + "\nset stats_limit = 48\nset gallery_cards = 3\n", "utf-8")
    out = str(tmp_path / "out")
    path, html = _page(capsys, ["show", str(recipe), "--rule", "background", "--out", out])
    _self_contained(html)
    cards = _cards(html)
    assert len(cards) == 3 and {c[0] for c in cards} == {"7"}
    assert html.count("rule background: suppress") == 3
    assert "#1" in html and "corr:water" in html
    # The same order `steer explain --top` prints: strongest first by the rule's statistic.
    rc = main(["explain", str(recipe), "--rule", "background", "--json"])
    cap = capsys.readouterr()
    assert rc == 0
    top = [r["feature"] for r in json.loads(cap.out)["rules"][0]["top"]]
    assert [int(c[2]) for c in cards] == top[:3]
    assert main(["show", str(recipe), "--rule", "backgrund", "--out", out]) != 0
    assert "did you mean `background`" in capsys.readouterr().err
    assert main(["show", str(recipe), "--features", "1", "--out", out]) != 0
    assert "not both" in capsys.readouterr().err


@pytest.fixture(scope="module")
def real_format(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An open_clip checkpoint file (tiny architecture, random weights, written with
    torch.save as open_clip's training script does), a SAELens-format SAE with the real
    49,152 latents, and a Waterbirds release-layout folder."""
    from steerlang.data.fixtures import make_waterbirds_fixture
    from steerlang.model.clip import TINY_CONFIG, load_model, register_model_config
    from steerlang.model.sae.core import SAE, SAEConfig, SAEHook
    from steerlang.model.sae.load import save_sae

    root = tmp_path_factory.mktemp("real")
    register_model_config(TINY, TINY_CONFIG)
    model = load_model(f"openclip:{TINY}@random")
    ckpt = root / "epoch_1.pt"
    torch.save({"epoch": 1, "state_dict": model.model.state_dict()}, ckpt)
    cfg = SAEConfig(d_in=64, d_sae=49_152, hook=SAEHook(layer=5, site="resid_post"))
    sae_dir = save_sae(SAE.random(cfg, seed=1), root / "sae", format="saelens")
    data = make_waterbirds_fixture(root / "waterbird_complete95_forest2water2", image_size=32)
    return {"model": f"openclip:{TINY}@{ckpt}", "sae": sae_dir, "data": data}


def test_show_on_the_real_format_path(
    real_format: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STEER_CACHE", str(tmp_path / "cache"))
    argv = [
        "show",
        "--layer",
        "5",
        "--features",
        "49151,0,20000",
        "--model",
        real_format["model"],
        "--sae",
        f"5={real_format['sae']}",
        "--data",
        f"waterbirds=waterbirds:{real_format['data']}",
        "--limit",
        "24",
        "--device",
        "cpu",
        "--out",
        str(tmp_path / "out"),
    ]
    path, html = _page(capsys, argv)
    _self_contained(html)
    assert [c[2] for c in _cards(html)] == ["49151", "0", "20000"]
    assert "waterbirds / train (24 images)" in html and str(real_format["sae"]) in html
    # A feature id past the SAE's 49,152 latents is an error that names the range.
    argv[4] = "49152"
    assert main(argv) != 0
    assert "0..49151" in capsys.readouterr().err


@pytest.mark.slow
def test_show_on_a_full_size_vit_b32_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The full-size path: an open_clip ViT-B-32 checkpoint (random weights, ~600 MB), a
    49,152 x 768 SAELens SAE (~300 MB), 7x7 patch maps. Run with `-m slow`."""
    import open_clip

    from steerlang.data.fixtures import make_waterbirds_fixture
    from steerlang.model.sae.core import SAE, SAEConfig, SAEHook
    from steerlang.model.sae.load import save_sae

    monkeypatch.setenv("STEER_CACHE", str(tmp_path / "cache"))
    model = open_clip.create_model("ViT-B-32", pretrained=None)
    ckpt = tmp_path / "vit_b32.pt"
    torch.save({"state_dict": model.state_dict()}, ckpt)
    del model
    cfg = SAEConfig(d_in=768, d_sae=49_152, hook=SAEHook(layer=7, site="resid_post"))
    sae_dir = save_sae(SAE.random(cfg, seed=2), tmp_path / "sae", format="saelens")
    data = make_waterbirds_fixture(tmp_path / "wb", image_size=64)
    path, html = _page(
        capsys,
        [
            "show",
            "--layer",
            "7",
            "--features",
            "3,49000",
            "--model",
            f"openclip:ViT-B-32@{ckpt}",
            "--sae",
            f"7={sae_dir}",
            "--data",
            f"waterbirds=waterbirds:{data}",
            "--limit",
            "16",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    _self_contained(html)
    assert [c[2] for c in _cards(html)] == ["3", "49000"]
    assert "(7×7 grid)" in html or "never fires" in html
    assert np.isfinite(path.stat().st_size)
