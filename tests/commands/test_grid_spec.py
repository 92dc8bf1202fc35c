"""`--grid NAME=SPEC` parsing and the product of points (steerlang/commands/grid_spec.py), and
the repeated `--param` error that points at `--grid`."""

from __future__ import annotations

import argparse

import pytest

from steerlang.cli import main
from steerlang.commands.grid_spec import grid_pair, grid_points, spec_values
from steerlang.commands.options import params_dict
from steerlang.errors import SteerError


def test_lists_and_ranges() -> None:
    assert spec_values("0.2,0.3, 0.4") == ["0.2", "0.3", "0.4"]
    assert spec_values("0..3") == ["0", "1", "2", "3"]
    assert spec_values("0..2,7,1") == ["0", "1", "2", "7"]  # each value once, in order
    assert grid_pair("L = 0..11") == ("L", [str(i) for i in range(12)])


@pytest.mark.parametrize("bad", ["L", "=1", "L=", "L=3..1", "L=1,,2", "L=0..99999"])
def test_malformed_grids_are_usage_errors(bad: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        grid_pair(bad)


def test_product_first_option_slowest_and_fixed_params_kept() -> None:
    pts = grid_points([("a", ["1", "2"]), ("b", ["x", "y", "z"])], {"thr": "0.3"})
    assert len(pts) == 6
    assert pts[0] == {"thr": "0.3", "a": "1", "b": "x"}
    assert pts[3] == {"thr": "0.3", "a": "2", "b": "x"}


def test_a_name_twice_or_in_both_is_an_error() -> None:
    with pytest.raises(SteerError, match="given twice"):
        grid_points([("a", ["1"]), ("a", ["2"])])
    with pytest.raises(SteerError, match="both as --param and as --grid"):
        grid_points([("a", ["1"])], {"a": "2"})


def test_repeated_param_suggests_grid(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SteerError) as e:
        params_dict([("thr", "0.2"), ("k", "3"), ("thr", "0.3")])
    assert "--param thr is given 2 times" in e.value.message
    assert "--grid thr=0.2,0.3" in (e.value.help or "")
    assert params_dict([("thr", "0.2"), ("k", "3")]) == {"thr": "0.2", "k": "3"}
    rc = main(["check", "recipes/waterbirds.steer", "--param", "thr=0.2", "--param", "thr=0.3"])
    assert rc == 1
    assert "--grid thr=0.2,0.3" in capsys.readouterr().err
