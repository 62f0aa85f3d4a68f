"""Run the `streamsr` entry point in the test process: its exit status and stderr, without a subprocess's
start-up (seconds on a loaded 2-core machine)."""

from __future__ import annotations

import signal
import sys

from streamsr.cli import main


def run_main(capsys, *args: str) -> tuple[int, str]:
    """(exit status, stderr) of `streamsr ARGS`; the signal handlers main() installs are put back after."""
    code, _, err = run_main_io(capsys, *args)
    return code, err


def run_main_io(capsys, *args: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `streamsr ARGS`, as run_main."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    argv, sys.argv = sys.argv, ["streamsr", *args]
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    finally:
        sys.argv = argv
        for s, h in saved.items():
            signal.signal(s, h)
    captured = capsys.readouterr()
    return code, captured.out, captured.err
