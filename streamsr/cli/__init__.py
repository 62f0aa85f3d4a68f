"""The `streamsr` command line: thin wrappers that parse arguments and call the library.

Each command lives in its own module; this one makes the typer app, registers the commands, and is the
one place that turns a StreamSRError into one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import logging
import signal
import sys

import typer

from ..errors import Interrupted, StreamSRError

app = typer.Typer(
    name="streamsr",
    help="Real-time 4x super-resolution for endoscopy video.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

from . import bench as _bench  # noqa: E402
from . import enhance as _enhance  # noqa: E402
from . import eval as _eval  # noqa: E402
from . import export as _export  # noqa: E402
from . import info as _info  # noqa: E402
from . import keys as _keys  # noqa: E402
from . import stream as _stream  # noqa: E402
from . import view as _view  # noqa: E402

app.command("enhance")(_enhance.enhance)
app.command("info")(_info.info)
app.command("stream")(_stream.stream)
app.command("view")(_view.view)
app.command("keys")(_keys.keys)
app.command("bench")(_bench.bench)
app.command("eval")(_eval.eval)
app.command("export")(_export.export)

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def _raise_keyboard_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main() -> None:
    """Console-script entry point. SIGINT and SIGTERM both stop a run cleanly (installed explicitly, since a
    parent that started us in the background may have set SIGINT to be ignored)."""
    logging.basicConfig(level=logging.WARNING, format="streamsr: %(message)s")
    signal.signal(signal.SIGINT, _raise_keyboard_interrupt)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        app()  # standalone: typer prints usage errors itself (exit 2) and turns a stray Ctrl-C into "Aborted!"
    except Interrupted as e:
        print(f"streamsr: {e}", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except StreamSRError as e:
        print(f"streamsr: error: {e}", file=sys.stderr)
        sys.exit(EXIT_ERROR)
