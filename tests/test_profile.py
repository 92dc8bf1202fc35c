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
        (
            "datasets:\n  wb: {format: celeba}\n",
            "steer.yaml:2:7: datasets.wb.root: missing required key 'root'",
        ),
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


# ---- hostile and careless profiles: bounded time, clear errors (issue 17) --------------------


def _laughs(levels: int, sep: str = ", ") -> str:
    """A YAML "billion laughs": each level lists the previous one nine times through aliases."""
    text = 'version: 1\nl0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for n in range(1, levels + 1):
        text += f"l{n}: &l{n} [" + sep.join([f"*l{n - 1}"] * 9) + "]\n"
    return text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # 9^10 = 3.5e9 values from 666 bytes, and 9^6 = 531,441 from 370 bytes
        (_laughs(9, ",  ") + "# " + "x" * 22 + "\n", "YAML aliases expand to more than 100,000"),
        (_laughs(5) + "#" * 16 + "\n", "YAML aliases expand to more than 100,000"),
        ("models: &m\n  a: *m\n", "steer.yaml:1:9: YAML alias refers to itself"),
        ("x: &a [1, *a]\n", "YAML alias refers to itself"),
        ("models: " + "[" * 5000 + "]" * 5000 + "\n", "steer.yaml:1:73: YAML nested more than 64"),
        ("".join(" " * i + f"k{i}:\n" for i in range(80)) + " " * 80 + "v: 1\n", "nested more"),
        ("version: " + "7" * 5001 + "\n", "steer.yaml:1:10: a 5,001-character number"),
    ],
    ids=["laughs-666", "laughs-370", "self-map", "self-list", "deep-flow", "deep-block", "digits"],
)
def test_hostile_yaml_is_rejected_with_its_line(text: str, expected: str) -> None:
    with pytest.raises(ProfileError) as e:
        profile_from_text(text, "steer.yaml", base_dir=Path("/"))
    assert expected in str(e.value)
    assert e.value.help


def test_the_billion_laughs_sizes_of_the_issue() -> None:
    assert len(_laughs(9, ",  ") + "# " + "x" * 22 + "\n") == 666
    assert len(_laughs(5) + "#" * 16 + "\n") == 370


def test_aliases_within_bounds_still_work() -> None:
    p = profile_from_text(
        "datasets:\n  a: &d {format: waterbirds, root: /data/wb}\n  b: *d\n", "steer.yaml"
    )
    assert p.datasets["a"].root == p.datasets["b"].root == Path("/data/wb")


def test_cache_that_is_a_file_or_unwritable(tmp_path: Path) -> None:
    f = tmp_path / "afile"
    f.write_text("x")
    with pytest.raises(ProfileError) as e:
        profile_from_text(f"version: 1\ncache: {f}\n", "steer.yaml")
    assert str(e.value).startswith(f"steer.yaml:2:8: cache: {f} is a file")
    assert "point `cache:` at a folder you can write" in (e.value.help or "")
    with pytest.raises(ProfileError, match=rf"cache: {f}/sub cannot be created: {f} is a file"):
        profile_from_text(f"cache: {f}/sub\n", "steer.yaml")
    ok = profile_from_text(f"cache: {tmp_path}/new/cache\n", "steer.yaml")
    assert ok.cache_dir == tmp_path / "new/cache" and not (tmp_path / "new").exists()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_cache_in_an_unwritable_place() -> None:
    # /proc refuses new entries even to root, so this runs under any user
    with pytest.raises(ProfileError) as e:
        profile_from_text("cache: /proc/steerlang-cache\n", "steer.yaml")
    assert "steer.yaml:1:8: cache: /proc/steerlang-cache cannot be created in /proc" in str(e.value)


@pytest.mark.skipif(
    sys.platform == "win32"
    or not hasattr(__import__("os"), "geteuid")
    or __import__("os").geteuid() == 0,
    reason="root writes anywhere",
)
def test_cache_folder_without_write_permission(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(ProfileError, match="is not writable"):
            profile_from_text(f"cache: {ro}\n", "steer.yaml")
    finally:
        ro.chmod(0o700)


@pytest.mark.parametrize(
    ("kwargs", "message", "hint"),
    [
        (
            {"sae": ["7=zoo:sae/L99/resid_post"]},
            "--sae 7=zoo:sae/L99/resid_post: the zoo has no SAE 'zoo:sae/L99/resid_post': "
            "the zoo CLIP has layers 0..11",
            "did you mean 'zoo:sae/L7/resid_post'?",
        ),
        (
            {"sae": ["3:mlp_out=zoo:sae/L3/mlp_out"]},
            "zoo SAEs are at site resid_post only",
            "did you mean 'zoo:sae/L3/resid_post'?",
        ),
        ({"sae": ["2=zoo:sea/L2"]}, "'zoo:sea/L2' is not a zoo SAE reference", "zoo:sae/L2/"),
        (
            {"sae": ["7=zoo:sae/celeb/L7/resid_post"]},
            "its domain SAEs are zoo:sae/celeba/L7/resid_post",
            "did you mean 'zoo:sae/L7/resid_post'?",
        ),
        (
            {"sae": ["5=zoo:sae/celeba/L5/resid_post"]},
            "the zoo has no SAE 'zoo:sae/celeba/L5/resid_post'",
            "zoo:sae/celeba/L7/resid_post",
        ),
        (
            {"data": ["waterbirds=parquet:/data"]},
            "--data waterbirds=parquet:/data: unknown dataset format 'parquet'",
            "did you mean 'table'?",
        ),
        ({"data": ["w=imagefoldr:/data"]}, "unknown dataset format", "did you mean 'imagefolder'"),
        ({"data": ["w=celeba:hf:org/x"]}, "hf:NAME roots are Hugging Face", "hf_datasets:"),
    ],
)
def test_option_values_get_did_you_means(kwargs: dict, message: str, hint: str) -> None:
    with pytest.raises(ProfileError) as e:
        apply_overrides(default_profile(), **kwargs)
    assert message in e.value.message
    assert hint in (e.value.help or "")


def test_the_zoo_domain_sae_is_a_shipped_reference() -> None:
    prof = apply_overrides(default_profile(), sae=["7=zoo:sae/celeba/L7/resid_post"])
    assert prof.sae_overrides[(7, "resid_post")] == "zoo:sae/celeba/L7/resid_post"


def test_zoo_sae_in_the_profile_is_checked() -> None:
    with pytest.raises(ProfileError) as e:
        profile_from_text('saes:\n  default:\n    "4": zoo:sae/L40/resid_post\n', "steer.yaml")
    assert "steer.yaml:3:10: saes.default.4: the zoo has no SAE 'zoo:sae/L40/resid_post'" in str(
        e.value
    )


def test_table_and_hf_entries(tmp_path: Path) -> None:
    p = profile_from_text(
        "datasets:\n"
        "  birds: {format: table, root: data/birds.csv, image_column: file,"
        " group_columns: [y, place], split_column: part}\n"
        "  pets: {format: hf_datasets, root: 'hf:org/pets', config: small}\n",
        "steer.yaml",
        base_dir=tmp_path,
    )
    birds, pets = p.datasets["birds"], p.datasets["pets"]
    assert birds.root == tmp_path / "data/birds.csv"
    assert birds.options == {
        "image_column": "file",
        "group_columns": ["y", "place"],
        "split_column": "part",
    }
    assert pets.root == "hf:org/pets" and pets.options == {"config": "small"}
    with pytest.raises(ProfileError) as e:
        profile_from_text(
            "datasets:\n  w: {format: waterbirds, root: /x, image_column: f}\n", "steer.yaml"
        )
    assert "format 'waterbirds' takes no `image_column`" in str(e.value)
    with pytest.raises(ProfileError) as e:
        profile_from_text("datasets:\n  w: {format: parquet, root: /x}\n", "steer.yaml")
    assert "unknown dataset format 'parquet'; did you mean 'table'?" in str(e.value)
    with pytest.raises(ProfileError) as e:
        profile_from_text("datasets:\n  w: {format: table, root: /x, group_columns: y}\n", "s.yaml")
    assert "s.yaml:2:47: datasets.w.group_columns: expected a list, found 'y'" in str(e.value)


def test_profile_paths_that_are_not_profiles(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="is a folder") as e:
        load_profile(tmp_path)
    assert f"--profile {tmp_path / 'steer.yaml'}" in (e.value.help or "")
    if Path("/dev/zero").exists():
        with pytest.raises(ProfileError, match="is not a regular file"):
            load_profile("/dev/zero")
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * 1_000_000 + "\n")
    with pytest.raises(ProfileError, match="profiles are at most 1,000,000"):
        load_profile(big)


def test_data_override_for_tables_and_hf(tmp_path: Path) -> None:
    f = tmp_path / "labels.csv"
    f.write_text("path,y\na.png,0\n")
    p = apply_overrides(
        default_profile(),
        data=[f"t={f}", f"u=table:{tmp_path}", "h=hf:org/pets", "k=hf_datasets:hf:org/k"],
    )
    assert (p.datasets["t"].format, p.datasets["t"].root) == ("table", f)
    assert p.datasets["u"].format == "table"
    assert (p.datasets["h"].format, p.datasets["h"].root) == ("hf_datasets", "hf:org/pets")
    assert p.datasets["k"].root == "hf:org/k"


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
