"""Joining and leaving the process group that ``torchrun`` describes (``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``, ``MASTER_ADDR``), for the training and the evaluation commands alike.

It lives in core, not training: evaluation shards its pairs over the same group, and a process
group is a fact about the job, not about training. Backend: gloo for a CPU device, nccl for
CUDA; the timeout is torch's default (neither command ever set one)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Process:
    """This process's place in the job: rank, world size, device."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def local_device(device: str) -> str:
    """``cuda`` becomes this rank's GPU (``cuda:LOCAL_RANK``) under torchrun; other devices are
    kept."""
    if device == "cuda" and _world_size() > 1:
        return f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    return device


def join(device: str) -> Process:
    """Join torchrun's process group when ``WORLD_SIZE`` > 1 (once per process); a CUDA device
    becomes the current one, so that collectives run on this rank's GPU."""
    dev = torch.device(local_device(device))
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if _world_size() == 1:
        return Process(device=dev)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return Process(dist.get_rank(), dist.get_world_size(), dev)


def leave(*, wait: bool = True) -> None:
    """Leave the process group at the end of a command: every rank waits for the others (rank 0
    writes last), then the group is destroyed, so no rank exits with gloo's threads still
    running (that aborts it: "terminate called without an active exception", seen on CI).
    ``wait=False`` after an error: destroy at once, as a barrier would wait for ranks stuck
    elsewhere. A no-op in one process."""
    if dist.is_available() and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()
