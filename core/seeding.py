"""Seeding of the global random number generators (Python's, numpy's, torch's)."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_all(seed: int) -> None:
    """Seed ``random``, numpy's global generator and torch (every device) with ``seed``.

    numpy takes seeds in [0, 2**32) only: it gets ``seed % 2**32``, the seed itself for every
    seed it accepts, so only seeds numpy would refuse are reduced."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
