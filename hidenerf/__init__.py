"""HiDe-NeRF: one-shot talking heads with a canonical tri-plane volume, an expression-aware
deformation (LED) and the head pose as the camera. See docs/hidenerf-design.md."""

from thbench.hidenerf.config import HiDeNeRFConfig, get_config, paper, tiny
from thbench.hidenerf.model import HiDeNeRF

__all__ = ["HiDeNeRF", "HiDeNeRFConfig", "get_config", "paper", "tiny"]
