"""Aggregation of result rows: summaries per method x dataset x protocol x metric x average.

Two averages of a pair-level metric, each named in :attr:`Summary.average`:

- ``per-pair``: the mean of the pairs' means (each pair weighs the same, whatever its length),
  with a percentile bootstrap 95% confidence interval (``BOOTSTRAP_SAMPLES`` resamples of the
  pairs, generator seeded with ``seed``);
- ``per-frame``: one mean over all frames of all pairs, as the papers and FOMM's
  ``pose-evaluation/cmp*.py`` compute it: ``sum(value * frames) / sum(frames)``, exact because a
  pair's value is the mean over its ``frames`` frames; its interval resamples pairs too (frames
  of one clip are not independent), each resample's statistic being the frame-weighted mean.
  Only metrics whose pair value is a mean over frames have it (``Metric.frame_mean``); AVD is
  per pair by nature.

A set-level metric (FID) has a single row per key, ``average = "set"``, and no interval.
Non-finite values propagate to the mean; the interval is then undefined (NaN). Pairs that were
skipped or failed are counted, never averaged in.

Coverage: every summary also says how much of the protocol it covers. ``n_pairs_total`` is the
number of pairs of the protocol that are scored (pairs the pair list itself skips, for lack of a
source face, are not), counted over every method's rows, so a method missing a pair's rows
altogether is seen short too; ``n_frames_total`` the frames of those pairs; ``coverage`` =
``n_frames / n_frames_total``, the share of the protocol's frames the value was computed on
(face metrics leave out frames without a face, failed pairs give none).

Ranking (:func:`rank`): in each column (dataset x protocol x metric x average) the methods that
are not bounds (``source-copy``, ``driving-copy``: :data:`thbench.baselines.reference.BOUNDS`)
and whose metric ranks (``Metric.ranked``; not the paper-compatible variants) are compared on
exactly the same pairs and frames: the largest group of methods sharing one set of scored pairs
and one frame count is the column's ranking group, and its count is the column's. The best mean
of the group is the column's best; every member gets the two-sided p-value of a paired bootstrap
of its difference from the best over those pairs (:func:`paired_p_value`: ``BOOTSTRAP_SAMPLES``
resamples of the pairs, the same draws for every method of the column, generator seeded with the
run's seed; the statistic is the column's average, so per-frame weighs each pair by its frames).
A member whose p-value is at least :data:`ALPHA` cannot be told apart from the best: the tables
bold it with the best. Bounds, unranked metrics, members of no group, set metrics (one value,
nothing to resample) and columns with fewer than two methods sharing pairs and frames get no
p-value (NaN) and a reason (:attr:`Summary.rank_note`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from thbench.baselines.reference import BOUNDS
from thbench.eval.metrics import metric_class
from thbench.eval.results import METHOD_PAIR_ID, ResultRow
from thbench.eval.set_metrics import SET_PAIR_ID

BOOTSTRAP_SAMPLES = 1000
ALPHA = 0.05
"""Level of the paired test: a method whose p-value against the column's best is at least this
cannot be told apart from the best (bold with it)."""
PER_PAIR, PER_FRAME, SET = "per-pair", "per-frame", "set"
AVERAGES = (PER_PAIR, PER_FRAME)
"""The averages a run config may choose as its headline (``average``)."""


@dataclass
class Summary:
    method: str
    dataset: str
    protocol: str
    metric: str
    higher_is_better: bool
    backend: str
    value: float
    ci_low: float
    ci_high: float
    n_pairs: int
    n_frames: int
    n_skipped: int
    n_errors: int
    status: str
    """``ok`` when at least one pair gave a value, else ``skipped`` or ``error``."""
    reason: str
    """The first reason among the pairs that gave no value (why skipped, what failed, why the
    method cannot run a pair), a scored pair's before one the pair list skips; empty when every
    pair gave one."""
    n_pairs_total: int = 0
    """The protocol's scored pairs (see the module docstring)."""
    n_frames_total: int = 0
    """Frames of those pairs."""
    average: str = PER_PAIR
    """``per-pair`` (mean of pair means), ``per-frame`` (mean over all frames) or ``set`` (one
    value over the set of frames: FID)."""
    n_unscored: int = 0
    """Of :attr:`n_skipped`, the pairs the pair list itself skips (no source face): outside
    the scored protocol, so not in :attr:`n_pairs_total`. The others are gaps in it."""
    bound: bool = False
    """A copy baseline (a bound of every metric): own band of the tables, never ranked."""
    p_value: float = math.nan
    """Two-sided paired bootstrap p-value of the difference from the column's best over the
    shared pairs (1.0 for the best itself); NaN when the cell is not ranked (:attr:`rank_note`)."""
    rank_note: str = ""
    """Why the cell is not ranked, empty when it is."""
    frames_real: int = 0
    """Set metrics (FID, KID): frames of the real set compared with; 0 when unknown."""
    spread: float = math.nan
    """Set metrics with one (KID): the standard deviation of the value over subsets."""

    @property
    def ranked(self) -> bool:
        return not math.isnan(self.p_value)

    @property
    def tied_best(self) -> bool:
        """The best of its column or not told apart from it at level :data:`ALPHA` (bold)."""
        return self.ranked and self.p_value >= ALPHA

    @property
    def coverage(self) -> float:
        """Share of the protocol's frames the value uses, in [0, 1]; NaN when unknown."""
        return self.n_frames / self.n_frames_total if self.n_frames_total else math.nan

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (self.method, self.dataset, self.protocol, self.metric, self.average)


def bootstrap_ci(values: np.ndarray, seed: int, samples: int = BOOTSTRAP_SAMPLES,
                 level: float = 0.95, weights: np.ndarray | None = None) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (N,), resampling the N items;
    with ``weights`` (N,) each resample's statistic is the weighted mean. NaN if undefined."""
    if len(values) == 0 or not np.isfinite(values).all():
        return math.nan, math.nan
    if len(values) == 1:
        return float(values[0]), float(values[0])
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, len(values), size=(samples, len(values)))
    if weights is None:
        means = values[drawn].mean(axis=1)
    else:
        means = (values[drawn] * weights[drawn]).sum(axis=1) / weights[drawn].sum(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def _direction(metric: str) -> bool:
    try:
        return metric_class(metric).higher_is_better
    except KeyError:
        return False


def has_per_frame(metric: str) -> bool:
    """Whether the metric's pair values are frame means (a per-frame average exists)."""
    try:
        return metric_class(metric).frame_mean
    except KeyError:
        return False


def headline(summaries: list[Summary], average: str) -> list[Summary]:
    """The summaries a table shows: each metric's ``average`` one, or where it has none (AVD:
    per pair by nature; FID: a set value) its only one; in the input's order."""
    chosen: dict[tuple, Summary] = {}
    for summary in summaries:
        key = summary.key[:4]
        if key not in chosen or summary.average == average:
            chosen[key] = summary
    return list(chosen.values())


def summarize(rows: Iterable[ResultRow], seed: int = 0,
              bounds: Iterable[str] = BOUNDS) -> list[Summary]:
    """Summaries in first-seen key order, ranked (:func:`rank`); ``bounds``: the method names
    (table labels) that are copy baselines. A method-level failure row (``METHOD_PAIR_ID``)
    counts only where the method has no other row for that metric: a later successful run's
    pair rows supersede it."""
    rows, bounds = list(rows), set(bounds)
    groups: dict[tuple, list[ResultRow]] = defaultdict(list)
    pair_frames: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for row in rows:
        groups[(row.method, row.dataset, row.protocol, row.metric)].append(row)
        if row.pair_id != SET_PAIR_ID and row.frames_total > 0:
            frames = pair_frames[(row.dataset, row.protocol)]
            frames[row.pair_id] = max(frames.get(row.pair_id, 0), row.frames_total)
    for key, group in groups.items():
        if any(r.pair_id != METHOD_PAIR_ID for r in group):
            groups[key] = [r for r in group if r.pair_id != METHOD_PAIR_ID]
    out, pairs = [], {}
    for (method, dataset, protocol, metric), group in groups.items():
        ok = [r for r in group if r.status == "ok"]
        problems = [r for r in group if r.status != "ok"]
        values = np.array([r.value for r in ok], dtype=np.float64)
        weights = np.array([r.frames for r in ok], dtype=np.float64)
        set_level = any(r.pair_id == SET_PAIR_ID for r in group)
        averages = [SET] if set_level else [PER_PAIR] + [PER_FRAME] * has_per_frame(metric)
        unscored = [r for r in problems if _unscored(r)]
        in_protocol = [r for r in problems if not _unscored(r)]
        reason = next((r.reason for r in in_protocol + unscored if r.reason), "")
        status = "ok" if ok else (
            "error" if any(r.status == "error" for r in group) else "skipped")
        if set_level:
            (row,) = group
            n_pairs, n_pairs_total = row.pairs, row.pairs + row.pairs_failed
            n_skipped, n_errors = row.pairs_skipped, row.pairs_failed
            n_frames_total, n_unscored = row.frames_total, row.pairs_skipped
        else:
            scored = pair_frames[(dataset, protocol)]
            n_pairs, n_pairs_total = len(ok), len(scored)
            n_skipped = sum(r.status == "skipped" for r in group)
            n_errors = sum(r.status == "error" for r in group)
            n_frames_total, n_unscored = sum(scored.values()), len(unscored)
        for average in averages:
            value, low, high = _average(values, weights, average, seed)
            out.append(Summary(
                method=method, dataset=dataset, protocol=protocol, metric=metric,
                higher_is_better=_direction(metric),
                backend=" + ".join(sorted({r.backend for r in ok} or {r.backend for r in group})),
                value=value, ci_low=low, ci_high=high,
                n_pairs=n_pairs, n_frames=sum(r.frames for r in ok),
                n_skipped=n_skipped, n_errors=n_errors, status=status, reason=reason,
                n_pairs_total=n_pairs_total, n_frames_total=n_frames_total, average=average,
                n_unscored=n_unscored, bound=method in bounds,
                frames_real=max((_real_frames(r) for r in ok), default=0),
                spread=_spread(ok) if set_level else math.nan,
            ))
            if not set_level:
                pairs[out[-1].key] = PairValues([r.pair_id for r in ok], values, weights)
    rank(out, pairs, seed)
    return out


def _real_frames(row: ResultRow) -> int:
    """The real-set size a set-level row records (``real_frames``; 0 for a layout without it)."""
    return getattr(row, "real_frames", 0)


def _spread(rows: list[ResultRow]) -> float:
    """A set-level row's own standard deviation (``std``: KID over subsets; None or absent
    where none applies), else NaN."""
    std = getattr(rows[0], "std", None) if len(rows) == 1 else None
    return math.nan if std is None else float(std)


@dataclass
class PairValues:
    """The scored pairs of one summary: ids, values and frames, in the same order."""

    ids: list[str]
    values: np.ndarray
    frames: np.ndarray

    def take(self, order: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(values, frames) in the order of the pair ids ``order`` (all of them present)."""
        index = {pair_id: i for i, pair_id in enumerate(self.ids)}
        chosen = [index[pair_id] for pair_id in order]
        return self.values[chosen], self.frames[chosen]


def paired_p_value(drawn: np.ndarray, a: np.ndarray, a_weights: np.ndarray, b: np.ndarray,
                   b_weights: np.ndarray) -> float:
    """Two-sided paired bootstrap p-value of ``mean(a) - mean(b)`` (weighted means) over the
    resamples ``drawn`` (S, N) of the N shared pairs: twice the smaller share of resampled
    differences on either side of 0, at most 1 (1 for identical values, 0 when every resample
    keeps one sign). NaN when a value is not finite; 1.0 for fewer than two pairs (no test)."""
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return math.nan
    if len(a) < 2:
        return 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        difference = ((a[drawn] * a_weights[drawn]).sum(1) / a_weights[drawn].sum(1)
                      - (b[drawn] * b_weights[drawn]).sum(1) / b_weights[drawn].sum(1))
    below, above = (difference <= 0).mean(), (difference >= 0).mean()
    return float(min(1.0, 2 * min(below, above)))


def _ranks(metric: str) -> bool:
    """``Metric.ranking``: False for the paper-compatible variants (aed_fomm, akd_fomm)."""
    try:
        return getattr(metric_class(metric), "ranking", True)
    except KeyError:
        return True


def rank(summaries: list[Summary], pairs: dict[tuple, PairValues], seed: int,
         samples: int = BOOTSTRAP_SAMPLES) -> None:
    """Set :attr:`Summary.p_value` and :attr:`Summary.rank_note` of every summary in place (see
    the module docstring); ``pairs``: each pair-level summary's scored pairs, by key."""
    columns: dict[tuple, list[Summary]] = defaultdict(list)
    for summary in summaries:
        columns[(summary.dataset, summary.protocol, summary.metric, summary.average)].append(
            summary)
    for (_, _, metric, average), column in columns.items():
        candidates = []
        for summary in column:
            if summary.bound:
                summary.rank_note = "a bound (copy baseline), never ranked"
            elif summary.status != "ok":
                summary.rank_note = f"no value ({summary.status})"
            elif average == SET:
                summary.rank_note = "one value over the set: no paired test"
            elif not _ranks(metric):
                summary.rank_note = "paper-compatible variant (the paper's frame rules): shown, " \
                                    "never ranked"
            else:
                candidates.append(summary)
        by_frames: dict[tuple, list[Summary]] = defaultdict(list)
        for summary in candidates:
            shared = (frozenset(pairs[summary.key].ids), summary.n_frames)
            by_frames[shared].append(summary)
        if not by_frames:
            continue
        (ids, frames), group = max(by_frames.items(),
                                   key=lambda item: (len(item[1]), len(item[0][0]), item[0][1]))
        members = {id(s) for s in group}
        for summary in candidates:
            if id(summary) not in members:
                summary.rank_note = (f"other pairs or frames than the column's ({summary.n_pairs} "
                                     f"pairs, {summary.n_frames} frames; the column: {len(ids)} "
                                     f"pairs, {frames} frames)")
        if len(group) < 2:
            group[0].rank_note = "no other method on the same pairs and frames"
            continue
        higher = group[0].higher_is_better
        values = [s.value for s in group]
        finite = [v for v in values if math.isfinite(v)] or values
        best = group[values.index(max(finite) if higher else min(finite))]
        order = sorted(ids)
        drawn = np.random.default_rng(seed).integers(0, len(order), size=(samples, len(order)))
        weigh = average == PER_FRAME
        best_values, best_frames = pairs[best.key].take(order)
        for summary in group:
            mine, my_frames = pairs[summary.key].take(order)
            summary.p_value = 1.0 if summary is best else paired_p_value(
                drawn, mine, my_frames if weigh else np.ones(len(order)), best_values,
                best_frames if weigh else np.ones(len(order)))
            if not summary.ranked:
                summary.rank_note = "a value is not finite: no test"


def _unscored(row: ResultRow) -> bool:
    """A row of a pair the pair list skips (no frames to score), not a gap in the protocol."""
    return row.status == "skipped" and row.frames_total == 0


def _average(values: np.ndarray, frames: np.ndarray, average: str,
             seed: int) -> tuple[float, float, float]:
    """(value, interval low, interval high) of the pairs' ``values`` (NaN when none)."""
    if len(values) == 0:
        return math.nan, math.nan, math.nan
    if average == SET:
        return float(values.mean()), math.nan, math.nan
    if average == PER_PAIR:
        return (float(values.mean()), *bootstrap_ci(values, seed))
    if frames.sum() == 0:
        return math.nan, math.nan, math.nan
    with np.errstate(invalid="ignore"):  # inf * 0 frames
        value = float((values * frames).sum() / frames.sum())
    return (value, *bootstrap_ci(values, seed, weights=frames))
