"""Engine artifact cache: where compiled engines live and how they are keyed.

An artifact (an .onnx file, a TensorRT .engine...) is stored as `<dir>/<kind>-<preset>-<id><suffix>` with a
JSON file beside it (`<artifact>.json`) holding the full key it was built for and the SHA-256 of the
artifact's bytes. `<id>` is the first 16 hex digits of the SHA-256 of the canonical JSON of the key, so
different configurations (fp16 and fp32, two windows...) coexist; a stored artifact is reused only when
its JSON key equals the requested key field by field and its bytes still hash to the recorded digest;
anything else (missing, torn, edited, other versions) is rebuilt. See engines/README.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import OutputError

ENGINE_DIR_ENV = "STREAMSR_ENGINE_DIR"
"""Environment variable that overrides where engines are cached."""

FORMAT = "streamsr-engine-v1"


def default_engine_dir() -> Path:
    """$STREAMSR_ENGINE_DIR, else `engines/` of a source checkout, else ~/.cache/streamsr/engines."""
    env = os.environ.get(ENGINE_DIR_ENV)
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and (checkout / "engines").is_dir():
        return checkout / "engines"
    return Path.home() / ".cache" / "streamsr" / "engines"


def model_digest(model: torch.nn.Module) -> str:
    """First 16 hex digits of a SHA-256 over the model's state dict (names, dtypes, shapes, bytes).

    Taken on the model as it will be compiled (`fold_for_inference` form, float32, CPU copy), so two weight
    files that fold to the same function share engines and a freshly initialised test model gets its own key.
    """
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().to("cpu", torch.float32).contiguous()
        h.update(f"{name}:{tuple(t.shape)};".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def key_id(key: Mapping[str, Any]) -> str:
    """16 hex digits naming `key`: SHA-256 of its canonical (sorted, compact) JSON."""
    canonical = json.dumps(dict(key), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def artifact_path(directory: str | Path, *, kind: str, preset: str, key: Mapping[str, Any], suffix: str) -> Path:
    """`<directory>/<kind>-<preset>-<key_id><suffix>`, e.g. engines/onnxruntime-srgan-x4-lite-1a2b....onnx."""
    return Path(directory) / f"{kind}-{preset}-{key_id(key)}{suffix}"


def meta_path(artifact: Path) -> Path:
    """The JSON metadata file stored beside an artifact."""
    return artifact.with_name(artifact.name + ".json")


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_meta(artifact: Path) -> dict[str, Any] | None:
    """The metadata stored beside `artifact`, or None when absent or not valid JSON."""
    try:
        meta = json.loads(meta_path(artifact).read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def is_cached(artifact: Path, key: Mapping[str, Any]) -> bool:
    """True when `artifact` exists, its metadata records exactly `key`, and its bytes match the recorded hash."""
    meta = read_meta(artifact)
    if meta is None or meta.get("format") != FORMAT or meta.get("key") != json.loads(json.dumps(dict(key))):
        return False
    try:
        return artifact.is_file() and _sha256_file(artifact) == meta.get("sha256")
    except OSError:
        return False


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def store(artifact: Path, data: bytes, key: Mapping[str, Any], *, info: Mapping[str, Any] | None = None) -> Path:
    """Write `data` to `artifact` and its metadata beside it, each atomically (concurrent builders of the same
    key each write a complete file; the last one wins). OutputError when the folder is not writable."""
    try:
        artifact.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(artifact, data)
        meta = {"format": FORMAT, "key": dict(key), "sha256": hashlib.sha256(data).hexdigest(),
                "bytes": len(data), **dict(info or {})}
        _atomic_write(meta_path(artifact), (json.dumps(meta, indent=1, sort_keys=True) + "\n").encode())
    except OSError as e:
        raise OutputError(f"cannot write engine {artifact} ({e.strerror or e}); set {ENGINE_DIR_ENV} to a writable folder") from None
    return artifact
