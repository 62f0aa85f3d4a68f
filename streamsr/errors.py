"""One error family. The CLI catches `StreamSRError` once, prints its message as one line, exits non-zero.

Each subclass also inherits the matching builtin so library users can catch what they already know.
"""

from __future__ import annotations


class StreamSRError(Exception):
    """Base of every error streamsr raises on purpose; the message is one line meant for a person."""


class InputError(StreamSRError, ValueError):
    """An input (file, stream, device, argument) is missing, unreadable or not what it claims to be."""


class OutputError(StreamSRError, OSError):
    """An output cannot be written: exists without --overwrite, unwritable folder, encoder failure."""


class WeightsError(StreamSRError, ValueError):
    """A weights file is missing, unreadable, or made for another model preset."""


class EngineUnavailableError(StreamSRError, RuntimeError):
    """An engine or device was asked for but is not usable on this machine (no CUDA, no torch-tensorrt...)."""


class TransportError(StreamSRError, RuntimeError):
    """A ZeroMQ endpoint cannot be bound/connected, or a key file is missing or malformed."""


class Interrupted(StreamSRError, RuntimeError):
    """The user stopped a run (Ctrl-C / SIGTERM); the message says what became of the outputs.

    Not a KeyboardInterrupt subclass on purpose: the stop has been handled, and CLI frameworks that catch
    KeyboardInterrupt would otherwise swallow the message."""
