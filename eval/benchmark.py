"""One benchmark run from a config: prepare the dataset, run every method, write the reports."""

from __future__ import annotations

import importlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from benchcore import assets
from benchcore.method import Method, available, build
from datasets.prepare import PrepareOptions
from datasets.prepared import PreparedDataset
from eval.config import MethodConfig, RunConfig
from eval.distributed import Shard, ShardedResults, barrier, local_device
from eval.metrics import build_metrics
from eval.results import ResultStore
from eval.runner import Runner, RunSummary, seed_everything

# Modules that register methods when imported; a method is built by its registered name.
METHOD_MODULES = ["baselines.reference", "baselines.fomm", "baselines.tpsmm", "baselines.fv2v",
                  "hidenerf.method"]


def load_dataset(config: RunConfig, log: Callable[[str], None]) -> PreparedDataset:
    spec = config.dataset
    if spec.name == "sample":
        from datasets.sample import prepare_sample_set

        options = PrepareOptions(
            size=spec.size, frame_step=spec.frame_step, clip_length=spec.clip_length
        )
        root = Path(spec.root) if spec.root else (
            assets.cache_dir() / "datasets" /
            f"sample-{spec.size}-s{spec.frame_step}-l{spec.clip_length}-c{spec.cross_per_source}"
            f"-seed{config.seed}"
        )
        log(f"dataset: sample set in {root}")
        return prepare_sample_set(root, options, spec.cross_per_source, config.seed, log=log)
    if not spec.root:
        raise ValueError(f"dataset {spec.name!r} needs `root` (a prepared dataset folder)")
    return PreparedDataset(spec.root, spec.name)


def write_run_record(run_dir: Path, config: RunConfig, dataset_root: Path) -> None:
    """``run.json``: the resolved config and the prepared dataset's folder, so that reports can
    be rebuilt from the run folder alone."""
    record = {"config": asdict(config), "dataset_root": str(dataset_root)}
    tmp = run_dir / "run.json.tmp"
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True))
    os.replace(tmp, run_dir / "run.json")


def check_methods(config: RunConfig) -> None:
    """Fail before any work when a config names a method nobody registered."""
    for module in METHOD_MODULES:
        importlib.import_module(module)
    for spec in config.methods:
        if spec.name not in available():
            raise KeyError(f"unknown method {spec.name!r}; known: {', '.join(available())}")


def method_factory(spec: MethodConfig, config: RunConfig,
                   device: str | None = None) -> Callable[[], Method]:
    def make() -> Method:
        seed_everything(config.seed)
        return build(spec.name, device=device or config.device, **spec.options)

    return make


def run_benchmark(config: RunConfig, log: Callable[[str], None] = print,
                  shard: Shard | None = None) -> dict[str, RunSummary]:
    """Run every method of ``config``; returns a summary per method label (this rank's pairs
    under torchrun, where rank 0 merges every rank's rows into ``results.csv`` at the end)."""
    shard = shard or Shard()
    seed_everything(config.seed)
    check_methods(config)
    start = time.perf_counter()
    run_dir = config.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    if not shard.main:
        barrier(shard)  # rank 0 prepares the dataset; the others then only read it
    dataset = load_dataset(config, log)
    if shard.main:
        write_run_record(run_dir, config, dataset.root)
        barrier(shard)
    metrics = build_metrics(config.metrics, config.metric_options)
    store = (ResultStore(run_dir / "results.csv") if shard.world == 1
             else ShardedResults(run_dir / "results.csv", shard))
    runner = Runner(dataset, store, run_dir / "outputs", metrics, config.batch_size, log,
                    analysis_cache=assets.cache_dir() / "analyses", shard=shard)
    for name, reason in runner.unavailable().items():
        log(f"metric {name} skipped: {reason}")
    device = local_device(config.device, shard)
    summaries = {}
    for spec in config.methods:
        summary = runner.run(spec.display, method_factory(spec, config, device), config.protocols)
        summaries[spec.display] = summary
        log(f"{spec.display}: {summary.computed} pairs computed, {summary.reused} reused, "
            f"{summary.skipped} skipped, {len(summary.problems)} errors "
            f"({summary.seconds:.1f} s)" + (f" on rank {shard.rank}" if shard.world > 1 else ""))
    if shard.world > 1:
        barrier(shard)
        if shard.main:
            store.merge()
    log(f"total {time.perf_counter() - start:.1f} s")
    return summaries
