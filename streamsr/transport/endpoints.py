"""ZeroMQ endpoints from what a user typed, and whether data sent on one can leave this host."""

from __future__ import annotations

import ipaddress

from ..errors import TransportError

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"


def normalize_endpoint(spec: str | int, *, default_host: str = "127.0.0.1") -> str:
    """A ZeroMQ endpoint from what a user typed: `5555`, `:5555` -> tcp://127.0.0.1:5555; `host:5555` ->
    tcp://host:5555; anything with `://` is kept as given (so `tcp://*:5555` binds all interfaces only when
    asked for explicitly). Port `*` or `0` binds an ephemeral port (see Publisher.endpoint)."""
    s = str(spec).strip()
    if "://" in s:
        return s
    if s.startswith(":"):
        s = s[1:]
    if s.isdigit() or s == "*":
        return f"tcp://{default_host}:{s}"
    if ":" in s:
        return f"tcp://{s}"
    raise TransportError(f"endpoint {spec!r} is not a ZeroMQ endpoint (e.g. tcp://127.0.0.1:5555 or 5555)")


def is_loopback(endpoint: str) -> bool:
    """True when data on `endpoint` (a normalize_endpoint result) cannot leave this host: ipc:// and
    inproc://, or tcp:// / ws:// to 127.0.0.0/8, ::1, `localhost` or the `lo` interface. Everything else is
    treated as reaching other hosts: other addresses, `*`, interface and host names (not resolved: a name
    can point anywhere), and multicast/udp transports."""
    transport, sep, rest = endpoint.partition("://")
    if not sep:
        return False
    if transport in ("ipc", "inproc"):
        return True
    if transport not in ("tcp", "ws"):
        return False
    rest = rest.split("/", 1)[0].rsplit(";", 1)[-1]  # connect syntax "tcp://source;destination:port"
    host = rest.rsplit(":", 1)[0] if ":" in rest else rest
    host = host.strip("[]").lower()
    if host in ("localhost", "lo"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
