"""The `streamsr` command line: thin wrappers that parse arguments and call the library.

Each command lives in its own module, imported only when that command runs (or shows its --help): the
model commands import torch, `view` and `keys` must not, so that a display workstation starts in a fraction
of a second and needs no torch at all. This module lists the commands with their one-line help, and is the
one place that turns a StreamSRError into one line on stderr and exit 1, a usage error into one line and
exit 2.
"""

from __future__ import annotations

import importlib
import logging
import signal
import sys
import time
from typing import Any

import typer
from typer import Abort
from typer._click.exceptions import BadParameter, ClickException, NoArgsIsHelpError, UsageError  # typer >= 0.29
from typer.core import TyperCommand, TyperGroup

from ..errors import Interrupted, StreamSRError

COMMANDS: dict[str, str] = {
    "enhance": "Enhance recorded video 4x: same frames, timestamps, audio and subtitle tracks as the input.",
    "info": "Print devices, CPU features, engines (available or why not, and what auto picks), model presets and "
            "shipped weights.",
    "stream": "Enhance a live source 4x and publish it (ZeroMQ), record it and/or show it, with bounded latency.",
    "view": "Watch a `streamsr stream` publication (or any publisher of its wire format).",
    "keys": "Write CURVE key pairs: server.key/.key_secret for `stream --curve DIR`, one pair per viewer for "
            "`view --curve DIR --key-name NAME`, and authorized/NAME.key, the viewers the publisher admits.",
    "bench": "Measure per-stage and end-to-end latency (p50/p95/p99/max), fps, efficiency and speed-ups; print "
             "the table.",
    "eval": "Degrade each HR frame (antialiased bicubic 4x down, 8-bit; with --suite, every suite degradation), "
            "enhance it through the real tiled pipeline, and print PSNR/SSIM (Y and RGB) of bicubic vs each model.",
    "export": "Build and cache an engine for --tile/--halo/--batch/--precision; print where it went.",
}
"""Command name -> its help in `streamsr --help`: the first paragraph of the docstring of the function of
that name in streamsr/cli/<name>.py (tests/test_cli.py holds them equal), listed without importing it."""


def load_command(name: str) -> TyperCommand:
    """The click command for `name`, built by typer from streamsr.cli.<name>.<name> (importing that module).
    StreamSRError if the module needs a package this install lacks (a viewer-only host has no torch)."""
    try:
        module = importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as e:
        if e.name is None or e.name.split(".")[0] == "streamsr":
            raise
        raise StreamSRError(f"`streamsr {name}` needs {e.name}, which this install lacks (a viewer-only install "
                            "runs view and keys; `pip install streamsr` for the rest)") from None
    single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    single.command(name)(getattr(module, name))
    return typer.main.get_command(single)


class _Listed(TyperCommand):
    """A command as `streamsr --help` lists it; running it (or its --help) loads the real one."""

    def __init__(self, name: str) -> None:
        super().__init__(name, help=COMMANDS[name])

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        return load_command(self.name).make_context(info_name, args, parent=parent, **extra)


class _LazyGroup(TyperGroup):
    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> TyperCommand | None:
        return _Listed(cmd_name) if cmd_name in COMMANDS else None


app = typer.Typer(
    name="streamsr",
    cls=_LazyGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _streamsr() -> None:
    """Real-time 4x super-resolution for endoscopy video."""


EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_BOUNDS = {"greater_than_equal": (">=", "ge"), "greater_than": (">", "gt"),
           "less_than_equal": ("<=", "le"), "less_than": ("<", "lt")}


def usage_message(e: UsageError) -> str:
    """One line for a usage error. An out-of-range number reads `--tile must be >= 1, got 0` (typer checks
    ranges with pydantic and chains its ValidationError, which holds the bound and the input)."""
    if isinstance(e, BadParameter):
        param = e.param
        errors = getattr(e.__cause__, "errors", None)
        if param is not None and callable(errors) and errors():
            err = errors()[0]
            bound = _BOUNDS.get(err.get("type"))
            if bound is not None and bound[1] in err.get("ctx", {}):
                name = next((o for o in getattr(param, "opts", ()) if o.startswith("--")), None) or param.name
                limit = err["ctx"][bound[1]]
                return f"{name} must be {bound[0]} {f'{limit:g}' if isinstance(limit, float) else limit}, got {err['input']}"
        if param is None and e.param_hint is None:
            return e.message  # raised by a command with the option named in the message
        return e.format_message()
    where = f" (see `{e.ctx.command_path} --help`)" if e.ctx is not None else ""
    return f"{e.format_message().rstrip('.')}{where}"


SIGNAL_GRACE_S = 10.0
"""After a first Ctrl-C/SIGTERM, further ones are ignored this long: the outputs are being finished (a live
recording closed playable, which takes well under a second), and a second Ctrl-C landing inside the encoder's
flush would leave it unplayable. After that a signal interrupts again (a hung finish can still be ended)."""
_first_signal: list[float] = []


def _raise_keyboard_interrupt(signum: int, _frame: object) -> None:
    now = time.monotonic()
    if _first_signal and now - _first_signal[0] < SIGNAL_GRACE_S:
        print(f"streamsr: still finishing the outputs; {signal.Signals(signum).name} ignored (again after "
              f"{SIGNAL_GRACE_S:g} s to abandon them)", file=sys.stderr)
        return
    _first_signal[:] = [now]
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main() -> None:
    """Console-script entry point. SIGINT and SIGTERM both stop a run cleanly (installed explicitly, since a
    parent that started us in the background may have set SIGINT to be ignored)."""
    logging.basicConfig(level=logging.WARNING, format="streamsr: %(message)s")
    _first_signal.clear()
    signal.signal(signal.SIGINT, _raise_keyboard_interrupt)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        code = app(standalone_mode=False)  # errors come here to be printed as one line, not a usage box
    except Interrupted as e:
        print(f"streamsr: {e}", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except StreamSRError as e:
        print(f"streamsr: error: {e}", file=sys.stderr)
        sys.exit(EXIT_ERROR)
    except NoArgsIsHelpError as e:
        e.show()
        sys.exit(e.exit_code)
    except UsageError as e:
        print(f"streamsr: error: {usage_message(e)}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except ClickException as e:
        print(f"streamsr: error: {e.format_message()}", file=sys.stderr)
        sys.exit(e.exit_code)
    except Abort as e:
        if isinstance(e.__cause__, KeyboardInterrupt):  # Ctrl-C/SIGTERM before a command could handle it
            print("streamsr: interrupted", file=sys.stderr)
            sys.exit(EXIT_INTERRUPTED)
        print("streamsr: aborted", file=sys.stderr)
        sys.exit(EXIT_ERROR)
    if isinstance(code, int) and code:
        sys.exit(code)
