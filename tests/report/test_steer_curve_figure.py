"""The steerability curve figure and its text form, from sweep `curve` rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from steerlang.report.steer_curve import (
    curve_figure,
    curve_lines,
    curve_rows,
    curve_series,
    parse_strengths,
    save_figure,
)


def _summary(push: str, s: float, frac: float, layer: int = 11) -> dict:
    return {
        "layer": layer,
        "site": "resid_post",
        "push": push,
        "strength": s,
        "n_units": 128,
        "n_steerable": round(128 * frac),
        "fraction_steerable": frac,
    }


ROWS = curve_rows(
    [
        _summary("clamp", 150.0, 1.0),
        _summary("clamp", 5.0, 0.109),
        _summary("overwrite", 5.0, 0.0),
        _summary("overwrite", 150.0, 0.984),
        _summary("matched", 5.0, 0.0),
        _summary("matched", 150.0, 0.992),
    ]
)


def test_series_are_sorted_by_strength_and_labelled_by_unit_kind() -> None:
    series = curve_series(ROWS)
    assert list(series) == [
        "L11 resid_post: SAE features",
        "L11 resid_post: neurons",
        "L11 resid_post: neurons (matched push)",
    ]
    assert series["L11 resid_post: SAE features"] == [(5.0, pytest.approx(10.9)), (150.0, 100.0)]
    assert curve_lines(ROWS)[1] == "L11 resid_post: neurons: 0.0/98.4% steerable at s = 5/150"


def test_figure_draws_one_line_per_series_on_a_log_axis(tmp_path: Path) -> None:
    fig = curve_figure(ROWS, title="logit scale 100 (fixed)")
    (ax,) = fig.axes
    assert ax.get_xscale() == "log"
    assert [ln.get_label() for ln in ax.lines] == list(curve_series(ROWS))
    assert list(ax.lines[0].get_ydata()) == [pytest.approx(10.9), 100.0]
    out = save_figure(fig, tmp_path / "sub" / "curve.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # s = 0 cannot sit on a log axis: the axis stays linear
    zero = curve_rows([_summary("clamp", 0.0, 0.0), _summary("clamp", 5.0, 0.1)])
    assert curve_figure(zero).axes[0].get_xscale() == "linear"


def test_parse_strengths() -> None:
    assert parse_strengths("5, 10,5,150") == [5.0, 10.0, 150.0]
    for bad in ("", "5,x", "-1", "inf", "nan"):
        with pytest.raises(ValueError):
            parse_strengths(bad)
