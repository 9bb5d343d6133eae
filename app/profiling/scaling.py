"""Pairs per second with 1, 2, ... processes: ``python -m thbench.profiling.scaling [--processes 1
2]``.

Runs ``python -m thbench eval run`` on a config (the embedded default by default) once per process
count, each in a fresh output folder with an empty face-analysis cache (the prepared dataset
and downloaded assets are shared), under ``torchrun --nproc_per_node=N`` for N > 1, and prints
the wall time (process start included) and pairs per second.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from thbench.core import assets
from thbench.eval.config import default_config, load_config
from thbench.eval.results import ResultStore

SHARED = ("datasets", "sample_media", "assets")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=None,
                        help="run config (default: the checkout's configs/default.toml)")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    path = str(args.config or default_config())
    config = load_config(path)
    subprocess.run([sys.executable, "-m", "thbench", "eval", "run", "--config", path,
                    "--output-dir", tempfile.mkdtemp()], check=True, capture_output=True)
    cache = assets.cache_dir()  # the dataset is now prepared there
    for count in args.processes:
        with tempfile.TemporaryDirectory() as tmp:
            fresh = Path(tmp) / "cache"
            fresh.mkdir()
            for name in SHARED:
                if (cache / name).exists():
                    (fresh / name).symlink_to(cache / name)
            launcher = ([sys.executable, "-m", "torch.distributed.run",
                         f"--nproc_per_node={count}"] if count > 1 else [sys.executable])
            env = {**os.environ, "THB_CACHE_DIR": str(fresh), "THB_PROGRESS": "0"}
            start = time.perf_counter()
            subprocess.run([*launcher, "-m", "thbench", "eval", "run", "--config", path,
                            "--output-dir", str(Path(tmp) / "runs")],
                           check=True, capture_output=True, env=env)
            seconds = time.perf_counter() - start
            rows = ResultStore(Path(tmp) / "runs" / config.name / "results.csv").rows()
            pairs = len({(r.method, r.protocol, r.pair_id) for r in rows
                         if r.status != "skipped" and not r.pair_id.startswith("(")})
            print(f"{count} process(es): {pairs} pairs in {seconds:.1f} s = "
                  f"{pairs / seconds:.2f} pairs/s ({os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
