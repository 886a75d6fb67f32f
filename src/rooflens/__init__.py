"""rooflens: operator-level roofline analysis of LLM inference.

>>> import rooflens
>>> r = rooflens.analyze("llama-3-8b", "h100", batch=1, prompt=1024, gen=256)
>>> r.ttft_s, r.tpot_s, r.memory.total_bytes
"""

from .analysis import analyze, make_settings, run
from .errors import RooflensError
from .hardware import HardwareSpec, list_hardware, load_hardware
from .model import ModelSpec, list_models, load_model
from .report import Report
from .settings import Settings

__version__ = "0.1.0"

__all__ = [
    "HardwareSpec",
    "ModelSpec",
    "Report",
    "RooflensError",
    "Settings",
    "analyze",
    "list_hardware",
    "list_models",
    "load_hardware",
    "load_model",
    "make_settings",
    "plan",
    "run",
    "sweep",
]


def __getattr__(name: str):
    # sweep and plan bring pandas in: imported on first use, so `rooflens analyze` starts fast.
    if name == "sweep":
        from .sweep import sweep

        return sweep
    if name == "plan":
        from .plan import plan

        return plan
    raise AttributeError(f"module 'rooflens' has no attribute {name!r}")
