"""Joining and leaving the process group that ``torchrun`` describes (``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``, ``MASTER_ADDR``), for the training and the evaluation commands alike.

It lives in core, not training: evaluation shards its pairs over the same group, and a process
group is a fact about the job, not about training. Backend: gloo for a CPU device, nccl for
CUDA. The group's timeout is :func:`group_timeout` (``THB_GROUP_TIMEOUT_MIN``, default 12 h), not
torch's 10 minutes: rank 0 works alone for long stretches while the other ranks wait in a
collective (HiDe-NeRF's held-out L1 before and after training, fits made lazily on rank 0, the
runner's noise floor, rank-0 training inside ``eval``), and a timed-out barrier makes torchrun
kill rank 0 before it saves."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from datetime import timedelta

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


def group_timeout() -> timedelta:
    """How long a collective may wait for the slowest rank: ``THB_GROUP_TIMEOUT_MIN`` minutes,
    12 hours by default (long enough for any rank-0-only stretch of a benchmark run)."""
    text = os.environ.get("THB_GROUP_TIMEOUT_MIN", "720")
    try:
        minutes = float(text)
    except ValueError:
        minutes = -1.0
    if minutes <= 0:
        raise ValueError(f"THB_GROUP_TIMEOUT_MIN={text!r}: expected a positive number of minutes")
    return timedelta(minutes=minutes)


def local_device(device: str) -> str:
    """The device this rank runs on, always with an index for CUDA (``torch.cuda.set_device``
    needs one). ``cuda`` becomes ``cuda:LOCAL_RANK`` (``cuda:0`` in a single process). Under
    torchrun with several processes an explicit ``cuda:N`` also becomes ``cuda:LOCAL_RANK``, with
    a warning when N differs: one index for every rank would put all ranks on one GPU (choose
    GPUs with ``CUDA_VISIBLE_DEVICES``). Other devices are kept."""
    kind, _, index = device.partition(":")
    if kind != "cuda":
        return device
    local = os.environ.get("LOCAL_RANK", "0")
    if _world_size() > 1:
        if index and index != local:
            warnings.warn(f"device {device!r} under torchrun: rank with LOCAL_RANK={local} uses "
                          f"cuda:{local} (pick GPUs with CUDA_VISIBLE_DEVICES)", stacklevel=2)
        return f"cuda:{local}"
    return device if index else f"cuda:{local}"


def join(device: str) -> Process:
    """Join torchrun's process group when launched by torchrun (once per process; with
    ``--nproc-per-node 1`` too, so that one GPU exercises nccl); a CUDA device becomes the
    current one, so that collectives run on this rank's GPU."""
    dev = torch.device(local_device(device))
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if _world_size() == 1 and "TORCHELASTIC_RUN_ID" not in os.environ:
        return Process(device=dev)  # a plain process; under torchrun even one rank joins
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", timeout=group_timeout())
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
