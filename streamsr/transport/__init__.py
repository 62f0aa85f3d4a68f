"""ZeroMQ transport (being split into modules; everything is re-exported here)."""

from .wire import *  # noqa: F403
