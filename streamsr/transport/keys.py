"""CURVE keys: the key folders `streamsr keys` writes, and loading them safely (secret files must be private)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import zmq.auth

from ..errors import TransportError


@dataclass(frozen=True, slots=True, kw_only=True)
class CurveServer:
    """Publisher-side CURVE: `secret_key` is the publisher's key pair file (server.key_secret);
    `authorized` a folder of client public keys (*.key) allowed to subscribe — None allows any client
    that knows the server's public key (encryption without client authentication)."""

    secret_key: Path
    authorized: Path | None

    @classmethod
    def from_dir(cls, folder: str | Path) -> "CurveServer":
        """The publisher's half of a folder written by `write_keys`: server.key_secret + authorized/."""
        folder = Path(folder)
        auth = folder / "authorized"
        return cls(secret_key=folder / "server.key_secret", authorized=auth)


@dataclass(frozen=True, slots=True, kw_only=True)
class CurveClient:
    """Subscriber-side CURVE: the subscriber's key pair file and the publisher's public key file."""

    secret_key: Path
    server_key: Path

    @classmethod
    def from_dir(cls, folder: str | Path, *, name: str = "client") -> "CurveClient":
        """The viewer's half of a folder written by `write_keys`: <name>.key_secret + server.key."""
        folder = Path(folder)
        return cls(secret_key=folder / f"{name}.key_secret", server_key=folder / "server.key")


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyFiles:
    """What `write_keys` wrote: the publisher's pair, each client's pair, and the authorized folder."""

    server_public: Path
    server_secret: Path
    client_secrets: tuple[Path, ...]
    authorized: Path


def write_keys(folder: str | Path, *, clients: tuple[str, ...] = ("client",), overwrite: bool = False) -> KeyFiles:
    """Create CURVE key pairs with zmq.auth.create_certificates: `server.key(_secret)` for the publisher,
    `<client>.key(_secret)` per client, and `authorized/<client>.key` (the public keys the publisher admits).

    Give the publisher host the folder; give each viewer `server.key` and its own `<client>.key_secret`
    only — secret files never need to leave the host that uses them. Raises TransportError if key files
    exist already (unless `overwrite`) or the folder cannot be written.
    """
    folder = Path(folder)
    names = ("server", *clients)
    if len(set(names)) != len(names) or any(not n or "/" in n or n.startswith(".") for n in names):
        raise TransportError(f"client names must be distinct, non-empty, not 'server': {', '.join(clients)}")
    auth = folder / "authorized"
    if not overwrite:
        existing = [p for n in names for p in (folder / f"{n}.key", folder / f"{n}.key_secret") if p.exists()]
        if existing:
            raise TransportError(f"key file {existing[0]} already exists (use --overwrite to replace the keys)")
    try:
        auth.mkdir(parents=True, exist_ok=True)
        pub, sec = zmq.auth.create_certificates(folder, "server")
        client_secrets = []
        for n in clients:
            cpub, csec = zmq.auth.create_certificates(folder, n)
            shutil.copyfile(cpub, auth / f"{n}.key")
            client_secrets.append(Path(csec))
        for p in (Path(sec), *client_secrets):
            p.chmod(0o600)
    except OSError as e:
        raise TransportError(f"cannot write keys to {folder}: {e.strerror or e}") from None
    return KeyFiles(server_public=Path(pub), server_secret=Path(sec), client_secrets=tuple(client_secrets),
                    authorized=auth)


def _load_certificate(path: Path, what: str) -> tuple[bytes, bytes | None]:
    """(public, secret or None) of a ZeroMQ certificate file; TransportError naming `what` if unusable."""
    if not path.is_file():
        raise TransportError(f"{what} {path} does not exist (make keys with `streamsr keys DIR`)")
    try:
        return zmq.auth.load_certificate(path)
    except (ValueError, OSError) as e:
        raise TransportError(f"{what} {path} is not a ZeroMQ certificate ({e})") from None


def _check_private(path: Path, what: str) -> None:
    """Refuse a secret key file that group or others may access (as ssh does for private keys)."""
    if os.name != "posix":
        return
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise TransportError(f"{what} {path} is accessible by others (permissions {mode:04o} are too open); "
                             f"a secret key must be private: chmod 600 {path}")


def load_key_pair(path: Path, what: str) -> tuple[bytes, bytes]:
    """(public, secret) from a .key_secret file that only its owner may read; TransportError naming `what`."""
    public, secret = _load_certificate(path, what)
    if secret is None:
        raise TransportError(f"{what} {path} holds no secret key (use the .key_secret file)")
    _check_private(path, what)
    return public, secret


def load_public_key(path: Path, what: str) -> bytes:
    """The public key of a certificate file; TransportError naming `what` if it is missing or unusable."""
    return _load_certificate(path, what)[0]
