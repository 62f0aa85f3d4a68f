"""The one value that says how to build an Enhancer: `EnhancerSpec`.

Made once at the edge (the CLI, the Python API, a Ray worker's task) with `EnhancerSpec.resolve`, which turns
whatever the user gave as weights (None, a shipped name such as "srgan-x4-lite", a str path, a Path) into one
existing file and the preset recorded in it, and then passed down unchanged: `Enhancer.build(spec)` fills the
per-engine defaults (tile, halo, batch) and hands the loaded generator to the engine registry. Frozen and
hashable, so the API keys its kept enhancers by it, and picklable, so Ray workers receive it as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path

from .backends.base import PRECISIONS as ENGINE_PRECISIONS
from .errors import InputError, WeightsError
from .model import SHIPPED, Preset, get_preset, read_weights_preset, resolve_weights

PRECISIONS = (*ENGINE_PRECISIONS, "auto")


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineSettings:
    """How to run a generator, whatever its weights (an `EnhancerSpec` is these plus resolved weights; a
    benchmark's `BenchConfig` is these plus what to time).

    engine: a registry name (`backends`) or "auto"; device: "cpu", "cuda", "cuda:N" or "auto";
    precision: "fp32" | "fp16" | "bf16" | "auto" (fp16 on CUDA, fp32 on CPU).
    batch: tiles per engine call; tile: LR tile edge; halo: LR context each side of a tile (pixels). None: the
    engine's default, filled by `Enhancer.build` (`tiling.default_tile` / `DEFAULT_HALO` / `default_batch`).
    cache_dir: where compiled engines are cached; None: `backends.cache.default_engine_dir()`.
    """

    engine: str = "auto"
    device: str = "auto"
    precision: str = "auto"
    batch: int | None = None
    tile: int | None = None
    halo: int | None = None
    cache_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        for name, low in (("batch", 1), ("tile", 1), ("halo", 0)):
            value = getattr(self, name)
            if value is not None and value < low:
                raise InputError(f"{name} must be >= {low}, got {value}")

    def engine_settings(self) -> dict[str, object]:
        """These settings by name, to make an EnhancerSpec from (`EnhancerSpec.resolve(weights, **them)`)."""
        return {f.name: getattr(self, f.name) for f in fields(EngineSettings)}


@dataclass(frozen=True, slots=True, kw_only=True)
class EnhancerSpec(EngineSettings):
    """How to build an Enhancer: the EngineSettings and the weights, resolved.

    weights: an existing safetensors file (absolute); preset: the preset recorded in it.
    """

    weights: Path
    preset: Preset

    @classmethod
    def resolve(cls, weights: str | Path | None = None, *, preset: str | None = None,
                cache_dir: str | Path | None = None, **settings: object) -> EnhancerSpec:
        """The spec for `weights` (None: the shipped default; a shipped name; a str or Path to a file), read
        once here. preset, when given, must be the file's. settings: the other fields, as named above.
        Raises WeightsError (one line) for a name that is not shipped, a missing or unreadable file, or a
        preset mismatch; InputError (one line) for an out-of-range setting."""
        path = resolve_weights(weights).resolve()
        found = read_weights_preset(path)
        if preset is not None and get_preset(preset) != found and preset != found.name:
            raise WeightsError(f"weights file {path} is for preset {found.name!r} "
                               f"({found.blocks} blocks x {found.channels} ch), not {preset!r}")
        return cls(weights=path, preset=found, cache_dir=Path(cache_dir) if cache_dir is not None else None,
                   **settings)  # type: ignore[arg-type]

    def with_weights(self, weights: str | Path | None) -> EnhancerSpec:
        """The same settings with other weights (of any preset), resolved as `resolve` resolves them."""
        other = EnhancerSpec.resolve(weights)
        return replace(self, weights=other.weights, preset=other.preset)

    def but(self, **changes: object) -> EnhancerSpec:
        """This spec with some settings changed (weights stay resolved: pass `resolve` a new weights value)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def window(self) -> int:
        """The LR window each engine call sees, tile + 2 * halo (only once tile and halo are filled)."""
        if self.tile is None or self.halo is None:
            raise ValueError("window is known once tile and halo are (Enhancer.build fills them)")
        return self.tile + 2 * self.halo

    @property
    def label(self) -> str:
        """What a viewer knows the model by: the shipped name, else the weights file's stem."""
        for shipped in SHIPPED.values():
            if shipped.path.resolve() == self.weights:
                return shipped.name
        return self.weights.stem
