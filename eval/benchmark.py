"""One benchmark run from a config: prepare the dataset, run every method, write the reports."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path

from thbench.core import assets, atomic
from thbench.core.families import build, family, keyword_options, method_class
from thbench.core.method import Method
from thbench.core.processes import local_device
from thbench.core.run_lock import run_folder_lock
from thbench.core.seeding import seed_all
from thbench.core.toml_table import did_you_mean
from thbench.datasets.config import load_dataset
from thbench.datasets.prepared_dataset import PreparedDataset
from thbench.datasets.settings import PAIR_KEYS, PREPARE_KEYS, recorded
from thbench.eval.config import MethodConfig, RunConfig
from thbench.eval.distributed import Shard, ShardedResults, any_rank, barrier
from thbench.eval.metrics import Metric, build_metrics, metric_class
from thbench.eval.preflight import preflight, report
from thbench.eval.results import METHOD_PAIR_ID, ResultRow, ResultStore
from thbench.eval.runner import MethodFailed, Runner, RunSummary, one_line

logger = logging.getLogger(__name__)


def write_run_record(run_dir: Path, config: RunConfig, dataset: PreparedDataset) -> None:
    """``run.json``: the resolved config, each method's options per protocol as it is built,
    the prepared dataset's folder, its resolution and the settings it was prepared with (None
    where it has no record), so that reports can be rebuilt from the run folder."""
    options = {spec.display: {p: protocol_options(spec, p) for p in config.protocols}
               for spec in config.methods}
    prepared = {key: recorded(dataset.root, key)[1] for key in PREPARE_KEYS + PAIR_KEYS}
    atomic.write_json(run_dir / "run.json", {"config": asdict(config), "method_options": options,
                                             "dataset_root": str(dataset.root),
                                             "size": dataset.size,
                                             "dataset_prepared_with": prepared})


def check_methods(config: RunConfig) -> dict[str, str]:
    """Before any work: every method name must be known (a typo is an error with a
    did-you-mean) and every option of a method that loads one its constructor takes. Returns
    label -> why, for the methods whose code does not load (a broken plug-in): those fail
    alone, as error rows, and the others run."""
    broken = {}
    for spec in config.methods:
        try:
            cls = family(spec.name).method_class()  # KeyError (unknown name) passes
        except (ValueError, TypeError) as error:
            broken[spec.display] = f"cannot load: {error}"
            continue
        _check_options(spec, cls, config.settings)
    return broken


def _check_options(spec: MethodConfig, cls: type[Method], settings: list[str]) -> None:
    accepted, open_ended = keyword_options(cls)
    if open_ended:
        return  # takes any keyword: nothing to refuse
    given = set(spec.options).union(*spec.protocol_options.values())
    for key in sorted(given - set(accepted)):
        flag = next((s for s in settings if s.startswith(f"methods.{spec.display}.{key}=")), "")
        raise ValueError(f"{f'--set {flag}: ' if flag else ''}method {spec.display!r} "
                         f"({spec.name}): unknown option {key!r}{did_you_mean(key, accepted)}; "
                         f"it takes: {', '.join(sorted(set(accepted) - {'device'}))}")


def checked_metrics(config: RunConfig, device: str | None = None) -> list[Metric]:
    """The config's metrics, built after checking each ``metric_options`` key against the
    metric's constructor (did-you-mean); a bad value (an unknown backend) is one line naming
    where it was set."""
    for name, options in config.metric_options.items():
        accepted, open_ended = keyword_options(metric_class(name))
        for key in sorted(set(options) - set(accepted)) if not open_ended else []:
            flag = next((s for s in config.settings
                         if s.startswith(f"metric_options.{name}.{key}=")), "")
            raise ValueError(f"{f'--set {flag}: ' if flag else ''}metric_options.{name}: "
                             f"unknown option {key!r}{did_you_mean(key, accepted)}; it takes: "
                             f"{', '.join(accepted) or 'none'}")
    try:
        return build_metrics(config.metrics, config.metric_options, device)
    except ValueError as error:
        raise ValueError(f"metric_options: {error}") from None


def _paper_options(name: str, protocol: str) -> dict:
    """The method's own defaults for ``protocol``; none for a method whose code does not load
    (it fails alone, see :func:`check_methods`)."""
    try:
        return method_class(name).protocol_options.get(protocol, {})
    except (ValueError, TypeError):
        return {}


def protocol_options(spec: MethodConfig, protocol: str) -> dict:
    """The method's constructor options for one protocol: its paper's defaults for that
    protocol, then the config's ``options``, then its ``protocol_options``."""
    paper = _paper_options(spec.name, protocol)
    return paper | spec.options | spec.protocol_options.get(protocol, {})


def method_factory(spec: MethodConfig, config: RunConfig, protocol: str,
                   device: str | None = None,
                   on_built: Callable[[Method], None] | None = None) -> Callable[[], Method]:
    """Builds the method for ``protocol``; ``on_built`` sees it (to record what it runs)."""
    def make() -> Method:
        seed_all(config.seed)
        method = build(spec.name, device=device or config.device,
                       **protocol_options(spec, protocol))
        if on_built is not None:
            on_built(method)
        return method

    return make


def record_built(run_dir: Path, label: str, protocol: str, method: Method) -> None:
    """Add ``method.describe()`` to ``run.json``'s ``methods_built[label][protocol]``: what a
    method actually ran with once built (e.g. whether TPSMM's checkpoint had a background
    predictor to apply), beside the options it was given."""
    path = run_dir / "run.json"
    record = json.loads(path.read_text())
    record.setdefault("methods_built", {}).setdefault(label, {})[protocol] = method.describe()
    atomic.write_json(path, record)


def train_method(spec: MethodConfig, config: RunConfig, shard: Shard) -> MethodConfig:
    """For a method with a ``train`` config: its shipped checkpoint where it has one (checked,
    :func:`thbench.training.shipped.verified_export`) and the run does not ``retrain``; else
    train it into ``<output_dir>/train/<name>`` (rank 0, one process; a finished run is reused,
    an interrupted one resumed). Returns the spec with the checkpoint and model config as
    options. Other specs are returned as they are. A failed training, or a shipped checkpoint
    that fails its check, raises :class:`MethodFailed` on every rank."""
    if not spec.train:
        return spec
    from thbench.training.config import load_train_config
    from thbench.training.shipped import ShippedMismatch, verified_export

    train_config = load_train_config(spec.train, output_dir=str(Path(config.output_dir) / "train"))
    if train_config.family != spec.name:
        raise ValueError(f"{spec.train}: trains {train_config.family!r}, but the method is "
                         f"{spec.name!r}")
    if spec.shipped and not config.retrain:
        try:
            checkpoint = verified_export(Path(spec.shipped), train_config)
        except ShippedMismatch as error:
            raise MethodFailed(str(error)) from None
        if shard.main:
            logger.info(f"{spec.display}: shipped checkpoint {checkpoint} (trained from "
                        f"{spec.train}; --retrain trains it anew)")
        return replace(spec, options=spec.options | {"checkpoint": str(checkpoint),
                                                     "config": train_config.model}, train="")
    train = family(spec.name).train_function()  # imported only where the run trains
    problem = ""
    if shard.main:
        logger.info(f"{spec.display}: training from {spec.train} into {train_config.run_dir}")
        try:
            train(train_config, resume=True, distributed=False)
        except Exception as error:  # a failure stays with its method
            problem = f"{type(error).__name__}: {one_line(error)}"
    if any_rank(bool(problem), shard):  # also the barrier: the others wait for rank 0
        raise MethodFailed(f"training failed: {problem or 'on rank 0 (see its log)'}")
    options = spec.options | {"checkpoint": str(train_config.exported),
                              "config": train_config.model}
    return replace(spec, options=options, train="")


def check_fingerprint(spec: MethodConfig, protocols: list[str], folder: Path) -> None:
    """Refuse to mix outputs of two different models under one label: ``method.json`` in the
    method's output folder records its options and the sha256 of its checkpoint file. A record
    with no outputs beside it yet (the method failed before making any) is simply replaced. A
    checkpoint is the same model wherever it lies: where both records hold its sha256, its path
    is not compared (a run folder may be moved or copied)."""
    from thbench.core.assets import sha256_of

    record = {"name": spec.name, "options": spec.options,
              "protocol_options": {p: protocol_options(spec, p) for p in protocols}}
    checkpoint = spec.options.get("checkpoint")
    if checkpoint and Path(checkpoint).is_file():
        record["checkpoint_sha256"] = sha256_of(Path(checkpoint))
    path = folder / "method.json"
    if path.is_file() and any(p.is_dir() for p in folder.iterdir()):
        previous = json.loads(path.read_text())
        if _model_identity(previous) != _model_identity(record):
            raise ValueError(f"{path}: method {spec.display!r} changed since its outputs and "
                             f"rows were made ({previous} -> {record}); give it another label "
                             "or start a new run folder")
        return
    atomic.write_json(path, record)


def _model_identity(record: dict) -> str:
    """A ``method.json`` record as compared: checkpoint paths left out when the sha256 is known."""
    if "checkpoint_sha256" not in record:
        return json.dumps(record, sort_keys=True)

    def without_path(options: dict) -> dict:
        return {k: v for k, v in options.items() if k != "checkpoint"}

    same = dict(record, options=without_path(record["options"]),
                protocol_options={p: without_path(o)
                                  for p, o in record.get("protocol_options", {}).items()})
    return json.dumps(same, sort_keys=True)


def method_failure_rows(label: str, dataset: str, protocols: list[str], metrics: list[Metric],
                        reason: str) -> list[ResultRow]:
    """A method that could not be trained or set up: one error row per protocol and metric,
    under :data:`METHOD_PAIR_ID`, so its rows say why. They never mark a pair done: a rerun
    tries the method again, and its pair rows then supersede these."""
    return [ResultRow(label, dataset, protocol, METHOD_PAIR_ID, metric.name, metric.backend,
                      math.nan, 0, status="error", reason=reason)
            for protocol in protocols for metric in metrics if protocol in metric.protocols]


def run_benchmark(config: RunConfig, shard: Shard | None = None) -> dict[str, RunSummary]:
    """Run every method of ``config``; returns a summary per method label (this rank's pairs
    under torchrun, where rank 0 merges every rank's rows into ``results.csv`` at the end).

    A method whose training or set-up fails gets error rows with the reason (its summary's
    ``failure``), and the other methods still run. Rank 0 holds the run folder's lock
    (:mod:`thbench.core.run_lock`) throughout: a second run on the folder refuses at once."""
    shard = shard or Shard()
    seed_all(config.seed)
    if config.offline:
        os.environ["THB_OFFLINE"] = "1"
    broken = check_methods(config)
    device = local_device(config.device)
    metrics = checked_metrics(config, device)
    with run_folder_lock(config.run_dir) if shard.main else nullcontext():
        return _run_methods(config, broken, metrics, device, shard)


def _run_methods(config: RunConfig, broken: dict[str, str], metrics: list[Metric], device: str,
                 shard: Shard) -> dict[str, RunSummary]:
    start = time.perf_counter()
    if shard.main:
        report(preflight(config, metrics))
    else:
        preflight(config, metrics)  # the same checks, said once by rank 0
    run_dir = config.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    if not shard.main:
        barrier(shard)  # rank 0 prepares the dataset; the others then only read it
    dataset = load_dataset(config.dataset, config.seed)
    if shard.main:
        write_run_record(run_dir, config, dataset)
        barrier(shard)
    store = (ResultStore(run_dir / "results.csv") if shard.world == 1
             else ShardedResults(run_dir / "results.csv", shard))
    runner = Runner(dataset, store, run_dir / "outputs", metrics, config.batch_size,
                    analysis_cache=assets.cache_dir() / "analyses", shard=shard)
    summaries = {}
    for spec in config.methods:
        try:
            if spec.display in broken:
                raise MethodFailed(broken[spec.display])
            spec = train_method(spec, config, shard)
            if shard.main:
                check_fingerprint(spec, config.protocols, run_dir / "outputs" / spec.display)
            summary = RunSummary()
            for protocol in config.protocols:  # a method per protocol: its options may differ
                built = (partial(record_built, run_dir, spec.display, protocol)
                         if shard.main else None)
                summary.add(runner.run(spec.display,
                                       method_factory(spec, config, protocol, device, built),
                                       [protocol]))
        except MethodFailed as error:
            summary = RunSummary(failure=str(error))
            logger.info(f"{spec.display}: {error}")
            if shard.main:
                store.append(method_failure_rows(spec.display, dataset.name, config.protocols,
                                                 metrics, str(error)))
            summaries[spec.display] = summary
            continue
        summaries[spec.display] = summary
        logger.info(f"{spec.display}: {summary.computed} pairs computed, {summary.reused} "
                    f"reused, {summary.skipped} skipped, {len(summary.unsupported)} it cannot "
                    f"run, {len(summary.problems)} errors ({summary.seconds:.1f} s)"
                    + (f" on rank {shard.rank}" if shard.world > 1 else ""))
    if shard.world > 1:
        barrier(shard)
        if shard.main:
            store.merge()
    logger.info(f"total {time.perf_counter() - start:.1f} s")
    return summaries
