"""Profiles: built-in default, resolution, validation errors with YAML lines, CLI overrides."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from steerlang.data import load_dataset, make_typographic_fixture, make_waterbirds_fixture
from steerlang.errors import DatasetError, ProfileError
from steerlang.profile import (
    PRISMA_B32_MODEL,
    apply_overrides,
    default_profile,
    load_profile,
    profile_from_text,
)

FULL = """\
cache: cache_here
device: cuda:1
models:
  default: zoo:tiny-clip
  b32: openclip:ViT-B-32@datacomp_xl_s13b_b90k
  mine: openclip:ViT-B-16@./ckpt/model.safetensors
saes:
  b32:
    default: "hf:org/sae-{layer}-{hook}"
    "7:resid_post": /abs/l7
    9: local/l9
  mine:
    "3:mlp_out": hf:org/mine-3
datasets:
  waterbirds: {format: waterbirds, root: data/wb}
  dis: {format: disentangling, root: /d, protocol: dyslexify}
  faces: {format: celeba, root: "zoo:celeba"}
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "steer.yaml"
    p.write_text(text)
    return p


def test_builtin_default_is_all_zoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STEER_CACHE", str(tmp_path / "c"))
    p = load_profile(None)
    assert p.source is None and p.device == "auto" and p.cache_dir == tmp_path / "c"
    assert p.model_ref("default") == "zoo:tiny-clip"
    assert p.sae_ref("default", 7) == "zoo:sae/L7/resid_post"
    assert p.sae_ref("default", 3, "mlp_out") == "zoo:sae/L3/mlp_out"
    for name in ("waterbirds", "celeba", "typographic"):
        spec = p.dataset(name)
        assert spec.is_zoo and spec.format == name
    assert p.model_ref("openclip:ViT-L-14@openai") == "openclip:ViT-L-14@openai"


def test_prisma_suite_is_the_default_for_its_checkpoint() -> None:
    p = default_profile()
    assert p.sae_ref(PRISMA_B32_MODEL, 11) == (
        "hf:Prisma-Multimodal/sparse-autoencoder-clip-b-32-sae-vanilla-x64-layer-11"
        "-hook_resid_post-l1-1e-05"
    )
    assert p.sae_ref(PRISMA_B32_MODEL, 4, "mlp_out").endswith("layer-4-hook_mlp_out-l1-1e-05")


def test_cwd_profile_found_and_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, FULL)
    monkeypatch.chdir(tmp_path)
    p = load_profile(None)
    assert p.source == tmp_path / "steer.yaml"
    assert p.cache_dir == tmp_path / "cache_here" and p.device == "cuda:1"
    assert p.model_ref("b32") == PRISMA_B32_MODEL
    assert p.model_ref("mine") == f"openclip:ViT-B-16@{tmp_path}/ckpt/model.safetensors"
    assert p.sae_ref("b32", 7) == "/abs/l7"
    assert p.sae_ref("b32", 9) == str(tmp_path / "local" / "l9")  # bare layer = resid_post
    assert p.sae_ref("b32", 9, "mlp_out") == "hf:org/sae-9-hook_mlp_out"  # pattern
    assert p.sae_ref("b32", 2) == "hf:org/sae-2-hook_resid_post"
    assert p.sae_ref("mine", 3, "mlp_out") == "hf:org/mine-3"
    wb = p.dataset("waterbirds")
    assert wb.root == tmp_path / "data" / "wb" and wb.format == "waterbirds"
    assert "steer.yaml:15" in wb.origin
    assert p.dataset("dis").options == {"protocol": "dyslexify"}
    assert p.dataset("faces").is_zoo and p.dataset("faces").zoo_name == "celeba"
    assert p.dataset("celeba").is_zoo  # built-in entries survive the merge
    with pytest.raises(DatasetError) as e:
        wb.load("test")
    assert "root" in str(e.value) and "steer.yaml:15" in str(e.value)
    assert "--data waterbirds=PATH" in (e.value.help or "")


def test_missing_sae_and_unknown_names(tmp_path: Path) -> None:
    p = load_profile(_write(tmp_path, FULL))
    with pytest.raises(ProfileError) as e:
        p.sae_ref("mine", 4)
    assert "no SAE for model 'mine' at layer 4" in str(e.value)
    assert "--sae 4:resid_post=REF" in (e.value.help or "")
    with pytest.raises(ProfileError) as e:
        p.model_ref("b23")
    assert "did you mean 'b32'" in (e.value.help or "")
    with pytest.raises(ProfileError) as e:
        p.dataset("waterbird")
    assert "did you mean 'waterbirds'" in (e.value.help or "")
    assert "--data waterbird=PATH" in (e.value.help or "")
    with pytest.raises(ProfileError, match="unknown site 'mlp'"):
        p.sae_ref("b32", 1, "mlp")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("models:\n  a: zoo:tiny-clip\n  b: openclip:ViT-B-32\n", "steer.yaml:3:6: models.b:"),
        ("device: gpu\n", "steer.yaml:1:9: device: device 'gpu' must be"),
        ("devise: cpu\n", "steer.yaml:1:1: devise: unknown key 'devise'; did you mean 'device'"),
        (
            "datasets:\n  wb:\n    format: waterbird\n    root: /x\n",
            "steer.yaml:3:13: datasets.wb.format: unknown dataset format 'waterbird'; "
            "did you mean 'waterbirds'",
        ),
        ("datasets:\n  wb: {format: celeba}\n", "steer.yaml:2:7: datasets.wb.root: Field required"),
        (
            "datasets:\n  wb: {format: celeba, root: /x, rot: 1}\n",
            "steer.yaml:2:34: datasets.wb.rot: unknown key 'rot'; did you mean 'root'",
        ),
        ('saes:\n  m:\n    "7:mlp_ot": x\n', "steer.yaml:3:5: saes.m.7:mlp_ot: unknown site"),
        ("saes:\n  m:\n    seven: x\n", "steer.yaml:3:5: saes.m.seven: SAE key 'seven' must be"),
        ("saes:\n  m:\n    default: hf:a-{layr}\n", "unknown placeholder '{layr}'"),
        ("version: 2\n", "steer.yaml:1:10: version: profile version 2 is not supported"),
        ("- a\n- b\n", "steer.yaml:1:1: a profile must be a mapping"),
        ("models:\n  a: [1\n", "steer.yaml:3:1: invalid YAML"),
        ("models:\n  a: zoo:tiny-clip\n  a: zoo:tiny-clip\n", "steer.yaml:3:3: duplicate key 'a'"),
        (
            "datasets:\n  x: {format: celeba, root: zoo}\n",
            "steer.yaml:2:29: datasets.x.root: the zoo has no dataset 'x'",
        ),
    ],
)
def test_validation_errors_name_file_line_col(text: str, expected: str) -> None:
    with pytest.raises(ProfileError) as e:
        profile_from_text(text, "steer.yaml", base_dir=Path("/"))
    assert expected in str(e.value)


def test_all_problems_reported_at_once() -> None:
    text = "device: gpu\nmodels:\n  a: nope\ncolour: red\n"
    with pytest.raises(ProfileError) as e:
        profile_from_text(text, "steer.yaml", base_dir=Path("/"))
    msg = str(e.value)
    assert msg.startswith("steer.yaml: 3 problems")
    assert "steer.yaml:1:9" in msg and "steer.yaml:3:6" in msg and "steer.yaml:4:1" in msg


def test_empty_file_and_missing_file(tmp_path: Path) -> None:
    p = load_profile(_write(tmp_path, "# nothing yet\n"))
    assert p.model_ref("default") == "zoo:tiny-clip"
    with pytest.raises(ProfileError, match="profile not found"):
        load_profile(tmp_path / "nope.yaml")


def test_overrides(tmp_path: Path) -> None:
    prof = load_profile(_write(tmp_path, FULL))
    wb = make_waterbirds_fixture(tmp_path / "wbdata", scale=400, image_size=16)
    typo = make_typographic_fixture(tmp_path / "typo", ("a", "b"), 1, image_size=24)
    o = apply_overrides(
        prof,
        model="b32",
        data=[f"waterbirds={wb}", f"attacks={typo}", f"pics=imagefolder:{typo}"],
        sae=["7=hf:x/seven", "8:mlp_out=rel/sae"],
    )
    assert o.model_ref("default") == PRISMA_B32_MODEL  # --model wins over the recipe's name
    assert o.sae_ref("default", 7) == "hf:x/seven"
    assert o.sae_ref("default", 8, "mlp_out") == str(Path("rel/sae").resolve())
    assert o.sae_ref("default", 2) == "hf:org/sae-2-hook_resid_post"  # b32's table, not zoo
    assert o.device == "cuda:1"  # --device is resolved at binding, not written here
    assert o.dataset("waterbirds").root == wb and o.dataset("waterbirds").format == "waterbirds"
    assert o.dataset("attacks").format == "typographic"  # detected from the file names
    assert o.dataset("pics").format == "imagefolder"  # explicit FORMAT:PATH
    assert len(o.dataset("waterbirds").load("test")) == len(load_dataset("waterbirds", wb, "test"))
    # the input profile is untouched
    assert prof.device == "cuda:1" and prof.sae_ref("b32", 7) == "/abs/l7"
    # --model with a raw reference looks SAEs up under that reference
    o2 = apply_overrides(default_profile(), model=PRISMA_B32_MODEL)
    assert "layer-5-hook_resid_post" in o2.sae_ref("default", 5)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"model": "b33"}, "model 'b33' is not defined"),
        ({"model": "openclip:ViT-B-32"}, "needs a pretrained tag"),
        ({"data": ["waterbirds"]}, "--data 'waterbirds' is not NAME=VALUE"),
        ({"data": ["wb=/definitely/not/here"]}, "does not exist"),
        ({"data": ["wb=zoo:nope"]}, "the zoo has no dataset 'nope'"),
        ({"sae": ["seven=hf:x"]}, "--sae seven=hf:x: SAE key 'seven' must be"),
        ({"sae": ["7:mlp=hf:x"]}, "unknown site 'mlp'"),
    ],
)
def test_override_errors(kwargs: dict, expected: str) -> None:
    with pytest.raises(ProfileError, match=expected):
        apply_overrides(default_profile(), **kwargs)


def test_data_override_undetectable_format(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(ProfileError) as e:
        apply_overrides(default_profile(), data=[f"d={tmp_path}"])
    assert "cannot tell the dataset format" in str(e.value)
    assert f"--data d=FORMAT:{tmp_path}" in (e.value.help or "")


def test_zoo_dataset_materialised_lazily(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, Path]] = []

    def fake_materialize(name: str, cache_dir: Path) -> Path:
        calls.append((name, cache_dir))
        return make_waterbirds_fixture(Path(cache_dir) / name, scale=400, image_size=16)

    fake = types.ModuleType("steerlang.zoo")
    fake.materialize_dataset = fake_materialize  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "steerlang.zoo", fake)
    prof = default_profile(tmp_path / "cache")
    spec = prof.dataset("waterbirds")
    assert calls == []  # nothing materialised by resolution alone
    table = spec.load("train")
    assert calls == [("waterbirds", tmp_path / "cache")]
    assert table.name == "waterbirds" and len(table) > 0


def test_zoo_dataset_without_zoo_support(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "steerlang.zoo", types.ModuleType("steerlang.zoo"))
    with pytest.raises(ProfileError) as e:
        default_profile(tmp_path).dataset("celeba").resolve_root()
    assert "points at the zoo" in str(e.value)
    assert "--data celeba=PATH" in (e.value.help or "")


@pytest.mark.parametrize(
    "ref",
    [
        "hf:openai/clip-vit-base-patch32",
        "hf-hub:laion/CLIP-ViT-B-32-DataComp.XL-s13B-b90K",
        "open-clip:laion/CLIP-ViT-B-32-DataComp.XL-s13B-b90K",
    ],
)
def test_hub_model_references_pass_the_shape_check(ref: str) -> None:
    from steerlang.profile import check_model_ref

    assert check_model_ref(ref) == ref
    with pytest.raises(ValueError, match="ORG/NAME"):
        check_model_ref(ref.split(":")[0] + ":")
