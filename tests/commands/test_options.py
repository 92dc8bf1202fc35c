"""The shared command-line options: one `--param` parser and one `--device` option, the same in
every command."""

from __future__ import annotations

import argparse

import pytest

from steerlang.cli import build_parser
from steerlang.commands.options import device_name, param_pair


def test_param_pair_strips_name_and_value() -> None:
    assert param_pair(" thr = 0.25 ") == ("thr", "0.25")
    assert param_pair("word=") == ("word", "")
    for bad in ("novalue", "=3", " =3"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected NAME=VALUE"):
            param_pair(bad)


def test_device_names() -> None:
    assert [device_name(d) for d in ("auto", "cpu", "cuda", "cuda:1", "mps")] == [
        "auto",
        "cpu",
        "cuda",
        "cuda:1",
        "mps",
    ]
    with pytest.raises(argparse.ArgumentTypeError, match="'gpu' is not a device"):
        device_name("gpu")


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "r.steer"],
        ["compile", "r.steer"],
        ["run", "r.steer"],
        ["plan", "r.steer"],
        ["explain", "r.steer"],
        ["sweep", "r.steer"],
    ],
)
def test_every_command_reads_param_the_same_way(argv: list[str]) -> None:
    args = build_parser().parse_args([*argv, "--param", "thr = 0.5", "--param", "k=3"])
    assert args.param == [("thr", "0.5"), ("k", "3")]


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "r.steer"],
        ["plan", "r.steer"],
        ["explain", "r.steer"],
        ["sweep", "r.steer"],
        ["zoo", "build"],
        ["train-sae", "--layer", "7", "--out", "o"],
        ["sae-stats", "s"],
    ],
)
def test_every_command_has_the_same_device_option(argv: list[str]) -> None:
    parser = build_parser()
    assert parser.parse_args(argv).device is None  # the profile's device, else auto
    assert parser.parse_args([*argv, "--device", "cuda:0"]).device == "cuda:0"
    with pytest.raises(SystemExit) as e:
        parser.parse_args([*argv, "--device", "gpu"])
    assert e.value.code == 2
