"""The `streamsr` command line itself: commands listed without importing them, one-line usage errors."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys

import pytest

from helpers import run_main, run_main_io
from streamsr.cli import COMMANDS, load_command


def _ranged_options() -> list[tuple[str, str, str, str]]:
    """(command, option, out-of-range value, expected message) for every option of every command that
    declares a min or max, found by asking typer, so an option added later is covered too."""
    cases = []
    for name in COMMANDS:
        for p in load_command(name).params:
            info = p.type_descriptor.parameter_info
            if info.min is None and info.max is None:
                continue
            opt = next(o for o in p.opts if o.startswith("--"))
            if info.min is not None:
                bad = info.min - 1 if info.min >= 1 or info.min == 0 else 0
                cases.append((name, opt, str(bad), f"{opt} must be >= {info.min:g}, got {bad}"))
            if info.max is not None:
                cases.append((name, opt, str(info.max + 1), f"{opt} must be <= {info.max:g}, got {info.max + 1}"))
    return cases


RANGED = _ranged_options()


def test_every_documented_range_is_covered():
    assert len(RANGED) >= 30  # tile, halo, batch, crf, bitrate, timeouts, frames, fps, hwm, ... of 8 commands
    assert {("enhance", "--tile"), ("stream", "--halo"), ("export", "--batch"), ("view", "--timeout"),
            ("enhance", "--crf")} <= {(c, o) for c, o, _, _ in RANGED}


@pytest.mark.parametrize("command, option, value, message", RANGED, ids=[f"{c}{o}" for c, o, _, _ in RANGED])
def test_out_of_range_option_is_one_line_usage_error(capsys, command, option, value, message):
    code, err = run_main(capsys, command, option, value)
    assert code == 2
    assert err == f"streamsr: error: {message}\n"


def test_readme_examples_of_usage_errors(capsys):
    assert run_main(capsys, "enhance", "in.mp4", "-o", "out.mp4", "--tile", "0") == \
        (2, "streamsr: error: --tile must be >= 1, got 0\n")
    assert run_main(capsys, "stream", "synthetic", "--halo", "-1") == (2, "streamsr: error: --halo must be >= 0, got -1\n")
    assert run_main(capsys, "enhance", "in.mp4", "--batch", "0") == (2, "streamsr: error: --batch must be >= 1, got 0\n")
    for args, text in [(("view", "--timeout", "soon"), "'--timeout'"), (("view", "--nope"), "No such option: --nope"),
                       (("enhance",), "Missing argument"), (("frobnicate",), "No such command 'frobnicate'"),
                       (("view", "--max-size", "big"), "--max-size must be WIDTHxHEIGHT"),
                       (("stream", "0", "--display", "--size", "640"), "--size must be WIDTHxHEIGHT")]:
        code, err = run_main(capsys, *args)
        assert code == 2 and err.count("\n") == 1 and err.startswith("streamsr: error: ") and text in err, err


def test_listed_help_is_each_commands_own_docstring():
    """`streamsr --help` lists COMMANDS without importing the command modules; the text must be what the
    command itself says (the first paragraph of its docstring)."""
    for name, listed in COMMANDS.items():
        doc = inspect.getdoc(load_command(name).callback) or ""
        assert " ".join(doc.split("\n\n")[0].split()) == listed, name


def _child(code: str) -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


_RUN_MAIN = """
import json, sys
from streamsr.cli import main
sys.argv = ["streamsr", *{args!r}]
code = None
try:
    main()
except SystemExit as e:
    code = e.code
heavy = [m for m in ("torch", "onnxruntime", "streamsr.enhancer", "streamsr.model") if m in sys.modules]
print(json.dumps({{"code": code, "heavy": heavy}}))
"""


@pytest.mark.parametrize("args", [["--help"], ["view", "--help"], ["keys", "--help"]])
def test_help_and_light_commands_do_not_import_torch(args):
    got = _child(_RUN_MAIN.format(args=args))
    assert got == {"code": None, "heavy": []}


def test_keys_runs_without_torch(tmp_path):
    got = _child(_RUN_MAIN.format(args=["keys", str(tmp_path / "k")]))
    assert got == {"code": None, "heavy": []}
    assert (tmp_path / "k" / "server.key_secret").stat().st_mode & 0o777 == 0o600


def test_help_lists_every_command_with_its_help(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = run_main_io(capsys, "--help")
    assert code == 0, err
    for name, text in COMMANDS.items():
        assert name in out and text[:40] in out
