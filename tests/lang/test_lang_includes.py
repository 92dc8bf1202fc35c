"""Includes as an attack surface (issue 14, item 7; `steerlang/lang/compiler/sources.py`).

An untrusted recipe could `include "../../etc/passwd"` or `/proc/self/environ` and have the file's
lines echoed in diagnostics, or include a FIFO and hang the command. Each test plants one attack
and asserts the safe outcome: the right code, the file's content nowhere in what is printed, and
(where the rule says so) the file never read at all.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from steerlang.cli import main
from steerlang.commands.recipes import compile_or_report
from steerlang.lang.api import CompileResult, compile_file, diagnostics_to_json, read_recipe_file

REPO = Path(__file__).resolve().parents[2]
SECRET = "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI-do-not-print"
GOOD = "steer 1\nconcept water = place == 1\nparam thr = 0.3\n"
USES = "at layer 7 suppress features where corr(water) > thr\n"


class Spy:
    """The default reader, recording every file whose content it handed to the compiler."""

    def __init__(self) -> None:
        self.read: list[str] = []

    def __call__(self, path: str) -> str:
        text = read_recipe_file(path)
        self.read.append(os.path.realpath(path))
        return text


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail (instead of hanging the test run) if the body blocks, e.g. opening a FIFO."""

    def boom(signum: int, frame: object) -> None:
        raise TimeoutError(f"blocked for {seconds} s")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _recipe(folder: Path, include: str, name: str = "r.steer") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(f'steer 1\ninclude "{include}"\n{USES}', encoding="utf-8")
    return path


def _printed(res: CompileResult) -> str:
    """Everything a front end could show: rendered text, JSON, and the kept sources."""
    return "\n".join(
        [
            res.render(),
            json.dumps(diagnostics_to_json(res.diagnostics)),
            *[t for t in res.sources.values()],
        ]
    )


def _check(path: Path, **kw: object) -> tuple[CompileResult, Spy]:
    spy = Spy()
    with deadline(30):
        res = compile_file(str(path), read_file=spy, **kw)  # type: ignore[arg-type]
    return res, spy


def _codes(res: CompileResult) -> list[str]:
    return [d.code for d in res.diagnostics if d.code.startswith("E11")]


def test_includes_are_relative_to_the_including_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path.parent)  # not the recipe's folder
    (tmp_path / "a" / "lib").mkdir(parents=True)
    (tmp_path / "a" / "lib" / "defs.steer").write_text(GOOD, encoding="utf-8")
    (tmp_path / "a" / "common.steer").write_text('steer 1\ninclude "lib/defs.steer"\n')
    (tmp_path / "common.steer").write_text("steer 1\nparam decoy = 1\n")  # a decoy at the root
    root = _recipe(tmp_path / "a", "common.steer")
    res, spy = _check(root)
    assert res.ok, res.render()
    assert spy.read == [
        str((tmp_path / "a" / n).resolve()) for n in ("common.steer", "lib/defs.steer")
    ]


def test_a_path_outside_the_recipe_folder_is_refused_unread(tmp_path: Path) -> None:
    (tmp_path / "secret.steer").write_text(f"{SECRET}\n", encoding="utf-8")
    root = _recipe(tmp_path / "project", "../secret.steer")
    res, spy = _check(root)
    assert _codes(res) == ["E112"] and spy.read == []
    assert SECRET not in _printed(res)
    d = next(d for d in res.diagnostics if d.code == "E112")
    assert d.span.file == str(root) and d.span.line == 2
    assert "--allow-include-outside" in (d.help or "")
    # deeper: an included file may not climb out either
    (tmp_path / "project" / "lib").mkdir()
    (tmp_path / "project" / "lib" / "c.steer").write_text('steer 1\ninclude "../../secret.steer"\n')
    res, spy = _check(_recipe(tmp_path / "project", "lib/c.steer"))
    assert _codes(res) == ["E112"] and spy.read == [
        str((tmp_path / "project/lib/c.steer").resolve())
    ]


def test_an_absolute_path_outside_is_refused_unread(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "passwd").write_text(f"root:x:0:0:{SECRET}:/root:/bin/bash\n", encoding="utf-8")
    root = _recipe(tmp_path / "project", str(etc / "passwd"))
    res, spy = _check(root)
    assert _codes(res) == ["E112"] and spy.read == [] and SECRET not in _printed(res)
    # trusted or not, a file that is not named .steer is never read
    res, spy = _check(root, allow_include_outside=True)
    assert _codes(res) == ["E113"] and spy.read == [] and SECRET not in _printed(res)


def test_proc_files_are_refused_unread(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("STEER_TEST_SECRET", SECRET)  # in /proc/self/environ
    root = _recipe(tmp_path / "project", "/proc/self/environ")
    for allow in (False, True):
        res, spy = _check(root, allow_include_outside=allow)
        assert _codes(res) == (["E113"] if allow else ["E112"]) and spy.read == []
        assert SECRET not in _printed(res)
    # a link named .steer to a /proc file, inside the folder, trusted: still refused
    (tmp_path / "project" / "env.steer").symlink_to("/proc/self/environ")
    root = _recipe(tmp_path / "project", "env.steer")
    for allow in (False, True):
        res, spy = _check(root, allow_include_outside=allow)
        assert _codes(res) == (["E113"] if allow else ["E112"]) and spy.read == []
        assert SECRET not in _printed(res)


def test_a_symlink_pointing_outside_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "shared.steer"
    outside.parent.mkdir()
    outside.write_text(GOOD, encoding="utf-8")
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "shared.steer").symlink_to(outside)
    root = _recipe(tmp_path / "project", "shared.steer")
    res, spy = _check(root)
    assert _codes(res) == ["E112"] and spy.read == []
    label = next(d for d in res.diagnostics if d.code == "E112").label
    assert f"a link to `{outside.resolve()}`" in label
    # a link to a folder outside, followed by a path inside it
    (tmp_path / "project" / "up").symlink_to(tmp_path / "elsewhere")
    res, spy = _check(_recipe(tmp_path / "project", "up/shared.steer"))
    assert _codes(res) == ["E112"] and spy.read == []
    # a link that stays inside the folder is fine
    (tmp_path / "project" / "real.steer").write_text(GOOD, encoding="utf-8")
    (tmp_path / "project" / "alias.steer").symlink_to(tmp_path / "project" / "real.steer")
    res, _ = _check(_recipe(tmp_path / "project", "alias.steer"))
    assert res.ok, res.render()


def test_a_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    os.mkfifo(tmp_path / "project" / "pipe.steer")
    root = _recipe(tmp_path / "project", "pipe.steer")
    res, _ = _check(root)  # under a 30 s alarm: opening the FIFO would block forever
    assert _codes(res) == ["E113"]
    assert "is a FIFO" in next(d for d in res.diagnostics if d.code == "E113").label
    # the command line too (check, and fmt whose meaning check compiles includes), in a process
    # that is killed if it blocks
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for argv in (["check", str(root)], ["fmt", "--check", str(root)]):
        proc = subprocess.run(
            [sys.executable, "-m", "steerlang", *argv],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert proc.returncode in (0, 1), proc.stderr
    assert (
        "error[E113]"
        in subprocess.run(
            [sys.executable, "-m", "steerlang", "check", str(root)],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        ).stdout
    )


def test_devices_and_directories_are_refused_unread(tmp_path: Path) -> None:
    (tmp_path / "project" / "dir.steer").mkdir(parents=True)
    (tmp_path / "project" / "null.steer").symlink_to("/dev/null")
    (tmp_path / "project" / "zero.steer").symlink_to("/dev/zero")  # reading it never ends
    cases = {
        "dir.steer": ("E113", "is a directory"),
        "null.steer": ("E112", "outside"),
        "zero.steer": ("E112", "outside"),
    }
    for name, (code, words) in cases.items():
        res, spy = _check(_recipe(tmp_path / "project", name))
        assert _codes(res) == [code] and spy.read == [], name
        assert words in next(d for d in res.diagnostics if d.code == code).label, name
    for name in ("null.steer", "zero.steer"):  # trusted: the device is still never opened
        res, spy = _check(_recipe(tmp_path / "project", name), allow_include_outside=True)
        d = next(d for d in res.diagnostics if d.code == "E113")
        assert d.label.endswith(f"(a link to `/dev/{name[:-6]}`) is not a `.steer` file"), name
        assert _codes(res) == ["E113"] and spy.read == []


def test_a_non_steer_file_is_refused_unread(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "notes.txt").write_text(f"steer 1\n# {SECRET}\n")
    (tmp_path / "project" / "notes.steer").symlink_to(tmp_path / "project" / "notes.txt")
    for name in ("notes.txt", "notes.steer"):  # by its name, or by the name it links to
        res, spy = _check(_recipe(tmp_path / "project", name))
        assert _codes(res) == ["E113"] and spy.read == [], name
        assert SECRET not in _printed(res)


@pytest.mark.parametrize(
    "content,why",
    [
        (f"{SECRET}\npassword: hunter2\n", "does not start with `steer 1`"),
        (f"# {SECRET}\n", "does not start with `steer 1`"),
        (f"steer 2\n# {SECRET}\n", "does not start with `steer 1`"),
        (f"steer 1\nat layer 7 supress {SECRET}\n", "has 1 syntax error"),
        (f'steer 1\nparam x = "{SECRET}\nat layer 99 {SECRET}\n', "has 2 syntax errors"),
        ("", "does not start with `steer 1`"),
    ],
)
def test_a_file_that_is_not_a_recipe_is_never_quoted(
    tmp_path: Path, content: str, why: str, capsys
) -> None:
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "secret.steer").write_text(content, encoding="utf-8")
    root = _recipe(tmp_path / "project", "secret.steer")
    res, _ = _check(root)
    assert _codes(res) == ["E114"], res.render()
    d = next(d for d in res.diagnostics if d.code == "E114")
    assert d.span.file == str(root) and d.span.line == 2 and why in d.label
    assert SECRET not in _printed(res) and "hunter2" not in _printed(res)
    for argv in (["check", str(root)], ["check", "--format", "json", str(root)]):
        assert main([*argv, "--color", "never"] if "json" not in argv else argv) == 1
        out = capsys.readouterr()
        assert SECRET not in out.out + out.err and "E114" in out.out


def test_allowed_outside_with_the_flag(tmp_path: Path, capsys) -> None:
    shared = tmp_path / "shared" / "common.steer"
    shared.parent.mkdir()
    shared.write_text(GOOD, encoding="utf-8")
    root = _recipe(tmp_path / "project", "../shared/common.steer")
    res, spy = _check(root, allow_include_outside=True)
    assert res.ok and spy.read == [str(shared.resolve())], res.render()
    assert res.ir.includes == [str(tmp_path / "shared" / "common.steer")]
    # the commands that compile: check, compile, fmt, and run/plan/explain/sweep (shared options)
    assert main(["check", str(root), "--color", "never"]) == 1
    assert "error[E112]" in capsys.readouterr().out
    assert main(["check", str(root), "--allow-include-outside"]) == 0
    assert main(["compile", str(root), "--allow-include-outside", "--compact"]) == 0
    capsys.readouterr()
    assert compile_or_report(str(root), {}) is None
    assert "error[E112]" in capsys.readouterr().err
    assert compile_or_report(str(root), {}, allow_include_outside=True) is not None
    from steerlang.cli import build_parser

    for argv in (
        ["check", "r.steer"],
        ["compile", "r.steer"],
        ["fmt", "r.steer"],
        ["run", "r.steer"],
        ["plan", "r.steer"],
        ["explain", "r.steer"],
        ["sweep", "r.steer"],
        ["lsp"],
    ):
        assert build_parser().parse_args(argv).allow_include_outside is False, argv
        assert build_parser().parse_args([*argv, "--allow-include-outside"]).allow_include_outside


def test_missing_files_inside_keep_their_diagnostic(tmp_path: Path) -> None:
    res, _ = _check(_recipe(tmp_path, "missing.steer"))
    assert [d.code for d in res.diagnostics if d.code.startswith("E1")][0] == "E106"


def _reader_blocks(reader: Callable[[str], str], path: str) -> None:
    with deadline(30):
        reader(path)


def test_the_reader_never_opens_special_files(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "p.steer")
    (tmp_path / "d.steer").mkdir()
    for name, what in (("p.steer", "a FIFO"), ("d.steer", "a directory")):
        with pytest.raises(OSError, match=what):
            _reader_blocks(read_recipe_file, str(tmp_path / name))
    with pytest.raises(OSError, match="character device"):
        _reader_blocks(read_recipe_file, "/dev/zero")
