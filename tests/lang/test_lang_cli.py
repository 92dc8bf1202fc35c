"""The language commands: steer check / fmt / compile / explain-code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from steerlang.cli import main
from steerlang.lang.codes import CODES

REPO = Path(__file__).resolve().parents[2]
# the frozen sketch (see test_lang_compiler.py), so tuning the shipped recipe changes nothing here
WATERBIRDS = str(REPO / "tests" / "lang" / "fixtures" / "waterbirds_sketch.steer")
BAD = str(REPO / "tests" / "lang" / "bad" / "multi_independent_errors.steer")


def test_check_ok_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", WATERBIRDS, "--color", "never"]) == 0
    assert "ok (2 rules)" in capsys.readouterr().out
    assert main(["check", WATERBIRDS, BAD, "--color", "never"]) == 1
    out = capsys.readouterr().out
    assert "error[E003]: unknown action `supress`" in out
    assert "5 errors" in out


def test_check_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--format", "json", WATERBIRDS, BAD]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["errors"] == 5 and data["warnings"] == 0
    ok, bad = data["files"]
    assert ok["ok"] and ok["rules"] == 2 and ok["diagnostics"] == []
    assert [d["code"] for d in bad["diagnostics"]] == ["E003", "E101", "E005", "E006", "E007"]
    first = bad["diagnostics"][0]
    assert first["span"]["line"] == 5 and first["span"]["column"] == 12
    assert first["fix"]["replacement"] == "suppress"


def test_check_missing_file_and_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "nope.steer"]) == 1
    assert "no such file: nope.steer" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["check", WATERBIRDS, "--layers", "zero"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["check", WATERBIRDS, "--param", "novalue"])
    assert e.value.code == 2


def test_check_layers_and_params(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", WATERBIRDS, "--layers", "6", "--color", "never"]) == 1
    assert "error[E201]" in capsys.readouterr().out
    assert main(["check", WATERBIRDS, "--param", "thr=2", "--color", "never"]) == 1
    assert "error[E202]" in capsys.readouterr().out


def test_compile_prints_ir(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compile", WATERBIRDS, "--param", "thr=0.25"]) == 0
    ir = json.loads(capsys.readouterr().out)
    assert ir["schema_version"] == 1 and ir["params"]["thr"]["value"] == 0.25
    assert main(["compile", BAD, "--color", "never"]) == 1
    cap = capsys.readouterr()
    assert cap.out == "" and "error[E003]" in cap.err


def test_explain_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain-code", "e101"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("E101: unknown concept (error)") and "corr(water)" in out
    assert main(["explain-code"]) == 0
    listing = capsys.readouterr().out
    assert all(code in listing for code in CODES)
    assert main(["explain-code", "E1O1"]) == 2
    assert "did you mean `E101`?" in capsys.readouterr().err


def test_fmt_check_diff_and_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "r.steer"
    f.write_text("steer 1\nparam  x=1   # c\n")
    os.chmod(f, 0o640)
    assert main(["fmt", "--check", str(f)]) == 1
    assert f"would reformat {f}" in capsys.readouterr().out
    assert main(["fmt", "--diff", str(f)]) == 1
    diff = capsys.readouterr().out
    assert "-param  x=1   # c" in diff and "+param x = 1  # c" in diff
    assert f.read_text() == "steer 1\nparam  x=1   # c\n"  # --check/--diff never write
    assert main(["fmt", str(f)]) == 0
    assert f.read_text() == "steer 1\nparam x = 1  # c\n"
    assert os.stat(f).st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["r.steer"]  # no temp files left
    assert main(["fmt", "--check", str(f)]) == 0
    capsys.readouterr()
    broken = tmp_path / "b.steer"
    broken.write_text("steer 1\nparam x =\n")
    assert main(["fmt", str(broken), "--color", "never"]) == 1
    assert broken.read_text() == "steer 1\nparam x =\n"
    assert "error[E005]" in capsys.readouterr().err


def test_check_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from steerlang.cli import main\n"
        f"rc = main(['check', {WATERBIRDS!r}])\n"
        "heavy = sorted(m for m in ('torch', 'open_clip', 'torchvision') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
        "sys.exit(rc)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr


def test_lang_api_imports_without_torch() -> None:
    code = (
        "import sys\n"
        "import steerlang.lang.api as api\n"
        "api.compile_text('steer 1\\n')\n"
        "assert 'torch' not in sys.modules\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert res.returncode == 0, res.stderr
