"""The benchmark runner: methods x protocols on a prepared dataset -> result rows.

For each pair: generate the frames (cached on disk as PNG, so a rerun reuses them), read them
back and feed every metric in one pass over the frames, then append the pair's rows. Metrics
always see the saved uint8 frames, so cached and fresh outputs give the same numbers. A pair
whose rows are all present is skipped, so a rerun continues where the last one stopped, and
deleting rows recomputes exactly those pairs.

Pairs run as a pipeline: while the method generates pair k + 1 on the calling thread, pair k is
scored (decoding, face analysis, metrics, FID features) on one worker thread, which alone appends
rows, in pair order. Under torchrun each rank takes its share of the pairs (``eval.distributed``).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from thbench.core import atomic
from thbench.core.cli import one_line
from thbench.core.media import (
    MediaError,
    prefetch,
    read_image,
    stack_batches,
    to_tensor,
    to_uint8,
    write_png,
)
from thbench.core.method import Method, PairUnsupported
from thbench.core.progress import progress
from thbench.datasets.prepared_dataset import PreparedDataset
from thbench.datasets.protocols import Pair
from thbench.eval.distributed import Shard, all_sum, any_rank
from thbench.eval.frame_analyses import analyses_provider, build_analyzer
from thbench.eval.metrics import FrameBatch, Metric, MetricValue
from thbench.eval.metrics.face import AnalysisMetric
from thbench.eval.metrics.fid import FID, KID, FeatureStats
from thbench.eval.metrics.morphable import FitMetric
from thbench.eval.noise_floor import measure_floor
from thbench.eval.results import ResultRow, ResultStore
from thbench.eval.set_metrics import SET_PAIR_ID, FIDFeatures, real_frames, stats_arrays, stats_from

logger = logging.getLogger(__name__)

COMPLETE = ".complete"
FLOOR_FILE = "floor.json"


class MethodFailed(RuntimeError):
    """A method could not be trained or built: the failure belongs to the method, not a pair."""


@dataclass
class PairProblem:
    method: str
    protocol: str
    pair_id: str
    message: str


@dataclass
class RunSummary:
    computed: int = 0
    reused: int = 0
    skipped: int = 0
    problems: list[PairProblem] = field(default_factory=list)
    unsupported: list[PairProblem] = field(default_factory=list)
    """Pairs the method cannot run by design (:class:`~thbench.core.method.PairUnsupported`):
    skipped rows with the reason, counted as the method's gap."""
    seconds: float = 0.0
    crashes: list[PairProblem] = field(default_factory=list)
    """Pairs whose generation raised an exception other than the expected media, value,
    runtime and OS errors (a bug of the method, e.g. a KeyError): also among ``problems``."""
    failure: str = ""
    """Why the method could not run at all (training or set-up), empty when it ran."""

    def add(self, other: RunSummary) -> None:
        """Count another run of the same method (another protocol) in this summary."""
        self.computed += other.computed
        self.reused += other.reused
        self.skipped += other.skipped
        self.problems += other.problems
        self.unsupported += other.unsupported
        self.crashes += other.crashes
        self.seconds += other.seconds

    @property
    def failed(self) -> str:
        """Why the run of this method counts as failed: :attr:`failure`, else the first
        exception it raised while animating and how many pairs raised one; empty when fine."""
        if self.failure or not self.crashes:
            return self.failure
        first = self.crashes[0]
        more = f" and {len(self.crashes) - 1} more pairs" if len(self.crashes) > 1 else ""
        return f"{first.message} in {first.protocol} {first.pair_id}{more}"


class OutputCache:
    """Generated frames of one method x dataset x protocol: ``<root>/<pair_id>/000000.png``.

    A folder is complete when its marker holds the number of frames the pair has now; outputs
    of an older pair list (another frame count) are generated again."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, pair_id: str) -> Path:
        return self.root / pair_id

    def complete(self, pair_id: str, count: int) -> bool:
        marker = self.folder(pair_id) / COMPLETE
        return marker.is_file() and marker.read_text().strip() == str(count)

    def frames(self, pair_id: str, count: int) -> Iterator[np.ndarray]:
        folder = self.folder(pair_id)
        for index in range(count):
            yield read_image(folder / f"{index:06d}.png")


def generate(
    method: Method, dataset: PreparedDataset, pair: Pair, cache: OutputCache, batch_size: int
) -> None:
    """Animate one pair and write its frames; the folder is marked complete only at the end,
    and made only when the method yields its first frames (a method that fails at once, such
    as ``eval score``'s stand-in for missing outputs, leaves no empty folder behind)."""
    folder = cache.folder(pair.pair_id)
    if folder.exists():
        shutil.rmtree(folder)
    source = to_tensor(dataset.clip(pair.source_clip).frame(pair.source_frame))
    driving_clip = dataset.clip(pair.driving_clip)
    shapes: list[tuple[int, ...]] = []

    def driving() -> Iterator[torch.Tensor]:
        for batch in prefetch(stack_batches(driving_clip.frames(pair.driving_frames),
                                            batch_size)):
            shapes.append((len(batch), 3, *batch.shape[1:3]))
            yield to_tensor(batch)

    index = 0
    for generated in method.animate(source, driving()):
        expected = shapes.pop(0)
        if tuple(generated.shape) != expected:
            raise ValueError(
                f"method returned shape {tuple(generated.shape)} for a driving batch of {expected}"
            )
        if not torch.isfinite(generated).all():
            raise ValueError("method returned NaN or infinite values")
        folder.mkdir(parents=True, exist_ok=True)
        for frame in to_uint8(generated):
            write_png(folder / f"{index:06d}.png", frame)
            index += 1
    if index != len(pair.driving_frames):
        raise ValueError(f"method returned {index} frames for {len(pair.driving_frames)}")
    folder.mkdir(parents=True, exist_ok=True)
    atomic.write_text(folder / COMPLETE, str(index))


def score(
    metrics: list[Metric],
    dataset: PreparedDataset,
    pair: Pair,
    generated_frames: Iterator[np.ndarray],
    batch_size: int,
    analyzer=None,
    on_generated: Callable[[np.ndarray], None] | None = None,
) -> dict[str, MetricValue]:
    """Feed each pair-level metric every batch of the pair once; returns name -> value.

    ``analyzer`` (a FaceAnalyzer) fills ``context["analyses"]`` for the face metrics;
    ``on_generated`` sees each uint8 batch of generated frames (set-level metrics' features).
    """
    for metric in metrics:
        metric.reset()
    source_frame = dataset.clip(pair.source_clip).frame(pair.source_frame)
    source = to_tensor(source_frame)
    driving_clip = dataset.clip(pair.driving_clip)
    for generated, driving in zip(
        prefetch(stack_batches(generated_frames, batch_size)),
        prefetch(stack_batches(driving_clip.frames(pair.driving_frames), batch_size)),
        strict=True,
    ):
        if generated.shape != driving.shape:
            raise ValueError(f"generated frames are {generated.shape[1:]}, driving frames "
                             f"{driving.shape[1:]}")
        driving_t = to_tensor(driving)
        batch = FrameBatch(
            generated=to_tensor(generated),
            driving=driving_t,
            source=source,
            ground_truth=driving_t if pair.ground_truth else None,
        )
        if analyzer is not None:
            batch.context["analyses"] = analyses_provider(
                analyzer, generated, driving, source_frame, pair.ground_truth)
        for metric in metrics:
            metric.update(batch)
        if on_generated is not None:
            on_generated(generated)
    return {metric.name: metric.compute() for metric in metrics}


def _build(make_method: Callable[[], Method]) -> Method:
    try:
        return make_method()
    except Exception as error:  # any set-up failure is the method's
        raise MethodFailed(f"set-up failed: {type(error).__name__}: {one_line(error)}") \
            from error


class Runner:
    """Runs methods over a dataset's pair lists and appends rows to a :class:`ResultStore`.

    ``work_dir`` holds what the run derives besides rows: face analyses are cached in
    ``analysis_cache`` (shared across runs) and FID features under ``work_dir / "fid"``.
    """

    def __init__(
        self,
        dataset: PreparedDataset,
        store: ResultStore,
        output_root: Path,
        metrics: list[Metric],
        batch_size: int = 8,
        analysis_cache: Path | None = None,
        shard: Shard | None = None,
    ) -> None:
        self.dataset = dataset
        self.store = store
        self.output_root = output_root
        self.metrics = metrics
        self.batch_size = batch_size
        self.analysis_cache = analysis_cache or output_root.parent / "analyses"
        self.shard = shard or Shard()
        self._unavailable = {m.name: reason for m in metrics if (reason := m.available())}
        self._analyzer = None
        fid = [m for m in metrics if isinstance(m, FID) and m.name not in self._unavailable]
        fid.sort(key=lambda m: isinstance(m, KID))  # the features' owner: FID itself first
        self.fid = FIDFeatures(fid[0], output_root.parent / "fid", dataset) if fid else None

    def applicable(self, protocol: str, scope: str = "pair") -> list[Metric]:
        return [m for m in self.metrics if protocol in m.protocols and m.scope == scope]

    def unavailable(self) -> dict[str, str]:
        """Metric name -> why it cannot run here and the fix (missing asset, ...)."""
        return dict(self._unavailable)

    def analyzer(self):
        """The run's FaceAnalyzer for the runnable face metrics (built on first use)."""
        if self._analyzer is None:
            runnable = [m for m in self.metrics if m.name not in self._unavailable]
            self._analyzer = build_analyzer(runnable, self.analysis_cache,
                                            str(self.shard.device)) or False
        return self._analyzer or None

    def cache(self, method_name: str, protocol: str) -> OutputCache:
        return OutputCache(self.output_root / method_name / self.dataset.name / protocol)

    def run(
        self,
        method_name: str,
        make_method: Callable[[], Method],
        protocols: list[str],
        caches: dict[str, OutputCache] | None = None,
    ) -> RunSummary:
        """Generate and score every pending pair; the method is built only if needed.

        ``caches`` replaces the output folder per protocol (used to score existing outputs).
        """
        summary = RunSummary()
        start = time.perf_counter()
        done = self.store.done()
        method: Method | None = None
        for protocol in protocols:
            metrics = self.applicable(protocol)
            cache = (caches or {}).get(protocol) or self.cache(method_name, protocol)
            pairs = self.dataset.pairs(protocol)
            mine = self.shard.take(pairs)
            pending = [p for p in mine if not self._finished(method_name, protocol, p, done,
                                                             metrics, cache)]
            summary.reused += len(mine) - len(pending)
            bar = progress(pending, desc=f"{method_name} {protocol}", unit="pair",
                           enabled=self.shard.main and bool(pending))
            # pipeline of depth one: pair k is scored on a worker thread while the method
            # generates pair k + 1; rows are appended in pair order, by the worker only
            previous: Future | None = None
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="scoring") as scorer:
                for pair in bar:
                    problem, unsupported = "", False
                    if not pair.skip and not cache.complete(pair.pair_id,
                                                            len(pair.driving_frames)):
                        if method is None:
                            method = _build(make_method)
                        try:
                            generate(method, self.dataset, pair, cache, self.batch_size)
                        except PairUnsupported as error:
                            problem, unsupported = one_line(error), True
                        except (MediaError, ValueError, RuntimeError, OSError) as error:
                            problem = one_line(error)
                        except Exception as error:  # the method's own bug: its rows only
                            problem = f"{type(error).__name__}: {one_line(error)}"
                            summary.crashes.append(PairProblem(method_name, protocol,
                                                               pair.pair_id, problem))
                    if previous is not None:
                        previous.result()  # re-raises anything unexpected
                    previous = scorer.submit(self._score_and_record, summary, method_name,
                                             protocol, pair, cache, metrics, problem,
                                             unsupported)
                if previous is not None:
                    previous.result()
            self._score_set(method_name, protocol, pairs, cache, done, recompute=bool(pending))
        self.noise_floor(protocols)
        summary.seconds = time.perf_counter() - start
        return summary

    def floor_path(self) -> Path:
        return self.output_root.parent / FLOOR_FILE

    def noise_floor(self, protocols: list[str]) -> None:
        """Measure the 3DMM metrics' noise floor on the dataset's real clips once per run
        (:mod:`thbench.eval.noise_floor`; ``floor.json`` beside the results) when one of them
        runs."""
        runnable = [m for m in self.metrics
                    if isinstance(m, FitMetric) and m.name not in self._unavailable]
        if not runnable or not self.shard.main:
            return
        analyzer = self.analyzer()
        path = self.floor_path()
        if path.is_file() and json.loads(path.read_text()).get("backend") == analyzer.backend:
            return
        from thbench.facegeom.morphable import load_sfm

        floor = measure_floor(self.dataset, protocols, analyzer, load_sfm())
        atomic.write_json(path, floor)

    def _score_and_record(self, summary: RunSummary, method_name: str, protocol: str,
                          pair: Pair, cache: OutputCache, metrics: list[Metric],
                          problem: str, unsupported: bool = False) -> None:
        """Score one generated pair (or record why it has no scores) and append its rows."""
        if pair.skip:
            self.store.append(self._skip_rows(method_name, protocol, pair, metrics))
            summary.skipped += 1
            return
        if unsupported:
            summary.unsupported.append(PairProblem(method_name, protocol, pair.pair_id, problem))
            logger.info(f"  not run: {method_name} {protocol} {pair.pair_id}: {problem}")
            value = MetricValue.skipped(f"{method_name} cannot run this pair: {problem}")
            self.store.append([self._row(method_name, protocol, pair.pair_id, m, value,
                                         len(pair.driving_frames)) for m in metrics])
            return
        if not problem:
            try:
                values = self._score(method_name, protocol, pair, cache, metrics)
            except (MediaError, ValueError, RuntimeError, OSError) as error:
                problem = one_line(error)
        if problem:
            summary.problems.append(PairProblem(method_name, protocol, pair.pair_id, problem))
            logger.info(f"  error: {method_name} {protocol} {pair.pair_id}: {problem}")
            self.store.append(self._error_rows(method_name, protocol, pair, metrics, problem))
            return
        self.store.append(self._rows(method_name, protocol, pair, metrics, values))
        summary.computed += 1

    def _score(self, method_name: str, protocol: str, pair: Pair, cache: OutputCache,
               metrics: list[Metric]) -> dict[str, MetricValue]:
        runnable = [m for m in metrics if m.name not in self._unavailable]
        fid_chunks: list[np.ndarray] = []
        wants_fid = self.fid is not None and protocol in self.fid.fid.protocols
        values = score(
            runnable, self.dataset, pair, cache.frames(pair.pair_id, len(pair.driving_frames)),
            self.batch_size,
            analyzer=self.analyzer() if any(isinstance(m, AnalysisMetric) for m in runnable)
            else None,
            on_generated=(lambda frames: fid_chunks.append(self.fid.features(frames)))
            if wants_fid else None,
        )
        if fid_chunks:
            self.fid.save_pair(method_name, protocol, pair.pair_id, fid_chunks)
        return values | {n: MetricValue.skipped(r) for n, r in self._unavailable.items()}

    def _score_set(self, method_name: str, protocol: str, pairs: list[Pair], cache: OutputCache,
                   done: dict, recompute: bool) -> None:
        """One row per set-level metric (FID) over the protocol's generated frames and real
        frames (:func:`thbench.eval.set_metrics.real_frames`). Pairs the pair list skips and pairs
        whose frames are missing or unreadable are left out and counted on the row; a failure of the
        distance itself is an error row with the reason. Every rank takes part (its pairs, its
        share of the real clips); rank 0 writes."""
        shard = self.shard
        scored = [p for p in pairs if not p.skip]
        counts = {"frames_total": sum(len(p.driving_frames) for p in scored),
                  "pairs_skipped": len(pairs) - len(scored)}
        for metric in self.applicable(protocol, scope="set"):
            key = (method_name, self.dataset.name, protocol, SET_PAIR_ID, metric.name)
            if metric.name in self._unavailable:
                if shard.main and (recompute or key not in done):
                    value = MetricValue.skipped(self._unavailable[metric.name])
                    self.store.append([self._row(method_name, protocol, SET_PAIR_ID, metric,
                                                 value, **counts)])
                continue
            if not any_rank(recompute or key not in done, shard):
                continue
            mine = [p for p in shard.take(pairs) if not p.skip]
            real = real_frames(pairs, self.dataset)
            error, failed = "", []
            try:
                generated, reference, failed = self.fid.partial_stats(
                    method_name, protocol, mine, {c: real[c] for c in shard.take(list(real))},
                    lambda p: cache.frames(p.pair_id, len(p.driving_frames))
                    if cache.complete(p.pair_id, len(p.driving_frames)) else None)
            except (MediaError, ValueError, OSError) as problem:
                error = one_line(problem)
                generated, reference = FeatureStats(), FeatureStats()
            failed_anywhere = any_rank(bool(error), shard)
            n_failed = int(all_sum([np.array([float(len(failed))])], shard)[0][0])
            generated, reference = (stats_from(all_sum(stats_arrays(s), shard))
                                    for s in (generated, reference))
            if not shard.main:
                continue
            if failed_anywhere:
                value = MetricValue(math.nan, 0, status="error",
                                    reason=error or "failed on another rank (see its log)")
            elif isinstance(metric, KID):
                value = metric.distance(*self.fid.feature_arrays(
                    method_name, protocol, scored, real))
            else:
                self.fid.save_stats(method_name, protocol, generated, reference)
                value = self._distance(generated, reference)
            self.store.append([self._row(
                method_name, protocol, SET_PAIR_ID, metric, value, pairs=len(scored) - n_failed,
                pairs_failed=n_failed, **counts)])

    def _distance(self, generated: FeatureStats, reference: FeatureStats) -> MetricValue:
        """The set metric's value, or an error value naming what failed (e.g. ``sqrtm``'s
        "Imaginary component"): the rows already computed are never lost to it."""
        try:
            return self.fid.distance(generated, reference)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as problem:
            self.fid.fid.reset()
            return MetricValue(math.nan, generated.count, status="error",
                               reason=f"fid distance failed: {one_line(problem)}")

    def _finished(self, method: str, protocol: str, pair: Pair, done: dict, metrics,
                  cache: OutputCache) -> bool:
        """All its rows are present, for the pair's current frames; without pair-level metrics
        (FID alone), its frames are."""
        frames = len(pair.driving_frames)
        if not metrics:
            return bool(pair.skip) or cache.complete(pair.pair_id, frames)
        expected = 0 if pair.skip else frames
        return all(done.get((method, self.dataset.name, protocol, pair.pair_id, m.name))
                   == expected for m in metrics)

    def _row(self, method, protocol, pair_id: str, metric, value: MetricValue,
             frames_total: int, pairs: int = 0, pairs_skipped: int = 0,
             pairs_failed: int = 0) -> ResultRow:
        return ResultRow(
            method=method,
            dataset=self.dataset.name,
            protocol=protocol,
            pair_id=pair_id,
            metric=metric.name,
            backend=metric.backend,
            value=value.value,
            frames=value.frames,
            status=value.status,
            reason=value.reason,
            frames_total=frames_total,
            pairs=pairs,
            pairs_skipped=pairs_skipped,
            pairs_failed=pairs_failed,
            real_frames=value.real_frames,
            std=None if math.isnan(value.std) else value.std,
        )

    def _rows(self, method, protocol, pair, metrics, values) -> list[ResultRow]:
        total = len(pair.driving_frames)
        return [self._row(method, protocol, pair.pair_id, m, values[m.name], total,
                          pairs=int(values[m.name].status == "ok")) for m in metrics]

    def _skip_rows(self, method, protocol, pair, metrics) -> list[ResultRow]:
        """The pair list skips this pair (no source face): not part of the scored protocol."""
        value = MetricValue.skipped(pair.skip)
        return [self._row(method, protocol, pair.pair_id, m, value, 0) for m in metrics]

    def _error_rows(self, method, protocol, pair, metrics, message) -> list[ResultRow]:
        value = MetricValue(value=math.nan, frames=0, status="error", reason=message)
        return [self._row(method, protocol, pair.pair_id, m, value, len(pair.driving_frames))
                for m in metrics]
