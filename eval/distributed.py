"""One evaluation run sharded over processes, GPUs and machines with ``torch.distributed``.

Under ``torchrun`` (``WORLD_SIZE`` > 1) every rank takes the pairs ``pairs[rank::world]`` of
each sorted pair list, generates and scores them, and appends its rows to its own file
``<run>/shards/results-rank<r>.csv``; a rank reads every shard (and the merged file) to know
what is finished, so a rank or the whole job can be restarted and skips finished pairs. At the
end rank 0 merges the shards into ``results.csv``, the file a single process writes. FID's
running sums (count, sum, sum of outer products) are added across ranks with ``all_reduce``
(``gloo`` on CPU, ``nccl`` on GPU), never by gathering features.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from thbench.core import processes
from thbench.eval.results import ResultRow, ResultStore


class Shard(processes.Process):
    """This process's place in the job (rank, world size, device), and its share of the pairs."""

    def take(self, items: list) -> list:
        """This rank's share of a sorted list: every ``world``-th item from ``rank``."""
        return items[self.rank :: self.world]


def start(device: str) -> Shard:
    """Join the process group torchrun describes (if any); returns this process's shard."""
    process = processes.join(device)
    return Shard(process.rank, process.world, process.device)


def _collective_device() -> torch.device:
    import torch.distributed as dist

    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_sum(arrays: list[np.ndarray], shard: Shard) -> list[np.ndarray]:
    """Element-wise sums over ranks (float64); identity for a single process."""
    if shard.world == 1:
        return arrays
    import torch.distributed as dist

    device = _collective_device()
    out = []
    for array in arrays:
        tensor = torch.from_numpy(np.ascontiguousarray(array, np.float64)).to(device)
        dist.all_reduce(tensor)
        out.append(tensor.cpu().numpy())
    return out


def any_rank(flag: bool, shard: Shard) -> bool:
    return bool(all_sum([np.array([float(flag)])], shard)[0][0] > 0)


def barrier(shard: Shard) -> None:
    if shard.world > 1:
        import torch.distributed as dist

        dist.barrier()


class ShardedResults(ResultStore):
    """Result rows of one rank: appended to the rank's shard file, read from every shard and
    from the merged ``results.csv``."""

    def __init__(self, main: Path, shard: Shard) -> None:
        super().__init__(main.parent / "shards" / f"results-rank{shard.rank}.csv")
        self.merged = ResultStore(main)

    def shard_files(self) -> list[Path]:
        return sorted(self.path.parent.glob("results-rank*.csv"))

    def rows(self) -> list[ResultRow]:
        latest = {row.key: row for row in self.merged.rows()}
        for path in self.shard_files():
            latest.update({row.key: row for row in ResultStore(path).rows()})
        return list(latest.values())

    def merge(self) -> None:
        """Append the shards' rows that ``results.csv`` lacks (or holds older) in key order,
        then remove the shards. Called by rank 0 once every rank is done."""
        present = {row.key: repr(row) for row in self.merged.rows()}  # repr: nan equals nan
        new = [row for row in self.rows() if present.get(row.key) != repr(row)]
        if new:
            self.merged.append(sorted(new, key=lambda r: r.key))
        for path in self.shard_files():
            path.unlink()
        if self.path.parent.is_dir():
            self.path.parent.rmdir()
