"""streamsr: real-time 4x super-resolution (SRGAN / SRResNet) for endoscopy video.

The few names a library user needs; see README.md for the command line.
"""

from .backends import EngineConfig, select_engine
from .enhancer import Enhancer
from .errors import StreamSRError
from .frame import Frame, Timeline
from .model import Generator, load_generator
from .pipeline import PipelineConfig, run_pipeline
from .sources import open_source
from .tiling import Tiler

__version__ = "0.1.0"

__all__ = [
    "EngineConfig",
    "Enhancer",
    "Frame",
    "Generator",
    "PipelineConfig",
    "StreamSRError",
    "Tiler",
    "Timeline",
    "load_generator",
    "open_source",
    "run_pipeline",
    "select_engine",
]
