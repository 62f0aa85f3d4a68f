"""`streamsr keys DIR`: CURVE key pairs for an encrypted, authenticated stream."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from ..transport import write_keys


def keys(
    folder: Path = typer.Argument(..., help="Folder to write the keys into (created if missing)."),
    client: list[str] = typer.Option(["client"], "--client", help="A viewer's key-pair name; repeat for several."),
    overwrite: bool = typer.Option(False, help="Replace existing key files."),
) -> None:
    """Write CURVE key pairs: server.key/.key_secret for `stream --curve DIR`, one pair per viewer for
    `view --curve DIR --key-name NAME`, and authorized/NAME.key, the viewers the publisher admits."""
    kf = write_keys(folder, clients=tuple(client), overwrite=overwrite)
    print(f"streamsr: wrote {kf.server_secret} (publisher's secret: keep it on the publishing host)", file=sys.stderr)
    for c in kf.client_secrets:
        print(f"streamsr: wrote {c} (a viewer's secret: copy it, with {kf.server_public.name}, to that viewer only)",
              file=sys.stderr)
    print(f"streamsr: the publisher admits the public keys in {kf.authorized}/ (remove one to revoke that viewer)",
          file=sys.stderr)
