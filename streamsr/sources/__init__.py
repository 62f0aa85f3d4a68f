"""Frame sources (being split into modules; everything is re-exported here)."""

from .file import *  # noqa: F403
from .file import _OpenCVConnection, _OpenFailed  # noqa: F401
