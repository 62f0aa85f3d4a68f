"""streamsr: real-time 4x super-resolution (SRGAN / SRResNet) for endoscopy video.

The few names a library user needs (README.md, "Python API"; the command line is `streamsr --help`):
`upscale(image)` and `enhance_video(input, output)` for one call, `stream(source, publish=..., record=...)`
for a live source (returns a `LiveResult`), `Enhancer.build(...)` to hold an enhancer yourself, and the
error family. Names are imported on first use (PEP 562), so `import streamsr` (or
`streamsr.transport` in a viewer) does not pay for importing torch until a name needs it.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "upscale": "api",
    "enhance_video": "api",
    "VideoResult": "api",
    "EnhancerSpec": "spec",
    "select_engine": "backends",
    "Enhancer": "enhancer",
    "StreamSRError": "errors",
    "InputError": "errors",
    "OutputError": "errors",
    "WeightsError": "errors",
    "EngineUnavailableError": "errors",
    "TransportError": "errors",
    "Interrupted": "errors",
    "Frame": "frame",
    "Timeline": "frame",
    "Generator": "model",
    "load_generator": "model",
    "PipelineConfig": "pipeline",
    "run_pipeline": "pipeline",
    "open_source": "sources",
    "Publisher": "transport",
    "Subscriber": "transport",
    "Tiler": "tiling",
    "stream": "live",
    "LiveResult": "live",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'streamsr' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
