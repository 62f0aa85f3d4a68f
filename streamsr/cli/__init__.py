"""The `streamsr` command line: thin wrappers that parse arguments and call the library.

Each command lives in its own module; this one makes the typer app, registers the commands, and is the
one place that turns a StreamSRError into one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import logging
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

from . import enhance as _enhance  # noqa: E402
from . import info as _info  # noqa: E402

app.command("enhance")(_enhance.enhance)
app.command("info")(_info.info)

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def main() -> None:
    """Console-script entry point."""
    logging.basicConfig(level=logging.WARNING, format="streamsr: %(message)s")
    try:
        app(standalone_mode=False)
    except Interrupted as e:
        print(f"streamsr: {e}", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except KeyboardInterrupt:
        print("streamsr: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except StreamSRError as e:
        print(f"streamsr: error: {e}", file=sys.stderr)
        sys.exit(EXIT_ERROR)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        print("streamsr: aborted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as e:  # click usage errors arrive as click.exceptions.ClickException
        import click

        if isinstance(e, click.exceptions.ClickException):
            e.show()
            sys.exit(e.exit_code)
        raise
