"""report.json's "reproduce": the full command, from any folder."""

from __future__ import annotations

import shlex
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from steerlang.plan import ParamDef, RecipeIR
from steerlang.report.build import reproduce_command


def _rec(tmp_path: Path, profile: str | None) -> Any:
    src = tmp_path / "my recipes" / "wb.steer"
    ir = RecipeIR(
        name="wb",
        source=str(src),
        params={
            "thr": ParamDef(name="thr", type="float", value=0.25),
            "on": ParamDef(name="on", type="bool", value=True),
        },
    )
    return SimpleNamespace(ir=ir, profile={"source": profile} if profile else None), src


def test_the_command_names_the_recipe_profile_and_every_param(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    rec, src = _rec(tmp_path, "steer.yaml")  # found as ./steer.yaml, not on the command line
    argv = ["steer", "run", "my recipes/wb.steer", "--param", "thr=0.25", "--device", "cpu"]
    got = shlex.split(reproduce_command(rec, argv))
    assert got == [
        "steer",
        "run",
        str(src.resolve()),
        "--device",
        "cpu",
        "--profile",
        str(tmp_path / "steer.yaml"),
        "--param",
        "thr=0.25",
        "--param",
        "on=true",
    ]


def test_an_explicit_profile_is_kept_and_no_argv_still_gives_a_command(tmp_path: Path) -> None:
    rec, src = _rec(tmp_path, "/etc/lab.yaml")
    got = shlex.split(reproduce_command(rec, ["steer", "run", str(src), "--profile", "/x.yaml"]))
    assert got.count("--profile") == 1 and "/x.yaml" in got
    rec, src = _rec(tmp_path, None)  # the built-in profile: nothing to add
    assert shlex.split(reproduce_command(rec, [])) == [
        "steer",
        "run",
        str(src),
        "--param",
        "thr=0.25",
        "--param",
        "on=true",
    ]
