"""Set-level metrics (FID, KID): one value per method x dataset x protocol, resumable.

While a pair is scored, the pool3 features of its generated frames are computed from the frames
already decoded for the pair metrics and saved as ``<root>/<method>/<dataset>/<protocol>/
<pair_id>.npy``. Features of the real frames are saved once per driving clip under
``<root>/real/<dataset>/<clip_id>.npy``. The real set depends on the protocol
(:func:`real_frames`): same-identity, the pairs' distinct driving frames (the ground truth);
cross-identity, the frames of the source identities' clips, never the drivers' (copying the
driver must not score well). When every pair of a protocol is done, the running sums
are built by streaming those files (never all features in memory) and the distance is computed.
A rerun reuses every saved file; a pair scored without its feature file is recomputed from its
cached output frames. A pair whose frames are missing, unreadable or of the wrong size is
left out and counted as failed; it never aborts the row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from thbench.core import atomic
from thbench.core.media import MediaError, stack_batches, to_tensor
from thbench.datasets.prepared_dataset import PreparedDataset
from thbench.datasets.protocols import CROSS_IDENTITY, Pair
from thbench.eval.metrics import MetricValue
from thbench.eval.metrics.fid import DIMS, FID, FeatureStats

SET_PAIR_ID = "(all pairs)"
"""``pair_id`` of a set-level metric's result row."""


def _save(path: Path, array: np.ndarray) -> None:
    with atomic.replacing(path) as out:
        np.save(out, array)


class FIDFeatures:
    """Feature files of one run folder for the FID metric ``fid``."""

    def __init__(self, fid: FID, root: Path, dataset: PreparedDataset) -> None:
        self.fid, self.root, self.dataset = fid, root, dataset

    def pair_path(self, method: str, protocol: str, pair_id: str) -> Path:
        return self.root / method / self.dataset.name / protocol / f"{pair_id}.npy"

    def real_path(self, clip_id: str) -> Path:
        return self.root / "real" / self.dataset.name / f"{clip_id}.npy"

    def features(self, frames_uint8: np.ndarray) -> np.ndarray:
        """(B, H, W, 3) uint8 -> (B, 2048) float64 pool3 features."""
        return self.fid.features(to_tensor(frames_uint8)).numpy()

    def _features_of(self, frames: Iterable[np.ndarray]) -> np.ndarray:
        """(N, 2048) features of a stream of uint8 frames, 16 at a time."""
        return np.concatenate([self.features(batch) for batch in stack_batches(frames, 16)])

    def save_pair(self, method: str, protocol: str, pair_id: str, chunks: list[np.ndarray]) -> None:
        _save(self.pair_path(method, protocol, pair_id), np.concatenate(chunks))

    def pair_features(
        self, method: str, protocol: str, pair: Pair, frames: Iterable[np.ndarray]
    ) -> np.ndarray:
        """Saved features of a pair's generated frames; computed from ``frames`` if absent
        (each frame must have the driving frames' size, as for the pair metrics)."""
        path = self.pair_path(method, protocol, pair.pair_id)
        if not path.is_file():
            size = self.dataset.clip(pair.driving_clip).info.size
            _save(path, self._features_of(_sized(frames, (size, size), pair.pair_id)))
        return np.load(path)

    def clip_features(self, clip_id: str) -> np.ndarray:
        """Features of every frame of a prepared clip (computed once, then read from disk)."""
        path = self.real_path(clip_id)
        if not path.is_file():
            clip = self.dataset.clip(clip_id)
            _save(path, self._features_of(clip.frames(list(range(len(clip))))))
        return np.load(path)

    def partial_stats(
        self, method: str, protocol: str, generated_pairs: list[Pair], real_frames: dict,
        output_frames: Callable[[Pair], Iterable[np.ndarray]] | None,
    ) -> tuple[FeatureStats, FeatureStats, list[str]]:
        """Running sums of ``generated_pairs``' output frames and of ``real_frames``
        (clip id -> frame indices), and the ids of the pairs left out because their frames
        are missing (``output_frames(pair)`` is None), unreadable or of the wrong size."""
        generated, real, failed = FeatureStats(), FeatureStats(), []
        for pair in generated_pairs:
            frames = output_frames(pair)
            if frames is None:
                failed.append(pair.pair_id)
                continue
            try:
                generated.add(self.pair_features(method, protocol, pair, frames))
            except (MediaError, ValueError, OSError):
                failed.append(pair.pair_id)
        for clip_id, frames in real_frames.items():
            real.add(self.clip_features(clip_id)[frames])
        return generated, real, failed

    def stats_path(self, method: str, protocol: str) -> Path:
        return self.root / method / self.dataset.name / f"{protocol}.stats.npz"

    def save_stats(self, method: str, protocol: str, generated: FeatureStats,
                   real: FeatureStats) -> None:
        """The protocol's reduced running sums (``FID.state()`` layout), kept beside the row so
        that the distance can be recomputed or the sums merged with other runs."""
        self.fid.generated, self.fid.real = generated, real
        with atomic.replacing(self.stats_path(method, protocol)) as out:
            np.savez(out, **self.fid.state())
        self.fid.reset()

    def feature_arrays(self, method: str, protocol: str, pairs: list[Pair],
                       real_frames: dict) -> tuple[np.ndarray, np.ndarray]:
        """Every saved feature of ``pairs``' generated frames (pairs without a feature file, the
        failed ones, left out) and of ``real_frames`` (clip id -> frame indices), for KID, which
        needs the features themselves, not their sums."""
        paths = [self.pair_path(method, protocol, p.pair_id) for p in pairs]
        generated = [np.load(path) for path in paths if path.is_file()]
        real = [self.clip_features(clip)[frames] for clip, frames in real_frames.items()]
        empty = np.zeros((0, DIMS))
        return (np.concatenate(generated) if generated else empty,
                np.concatenate(real) if real else empty)

    def distance(self, generated: FeatureStats, real: FeatureStats) -> MetricValue:
        self.fid.generated, self.fid.real = generated, real
        value = self.fid.compute()
        self.fid.reset()
        return value


def real_frames(pairs: list[Pair], dataset: PreparedDataset) -> dict[str, list[int]]:
    """The real set of a protocol's pairs, as sorted clip id -> sorted frame indices.

    Same-identity: the distinct driving frames of the pairs (the ground truth; pairs skipped
    for lack of a source face included: the real distribution does not depend on any method).
    Cross-identity: every frame of the pairs' source clips (a still image is one frame), the
    frames of the identities the outputs should show; source clips that also drive a pair of
    the protocol, and sources without a face, are left out, so that copying the driver is never
    rewarded. (Against the driving frames, ``driving-copy`` would score about 0.)
    """
    used: dict[str, set[int]] = {}
    if pairs and pairs[0].protocol == CROSS_IDENTITY:
        drivers = {pair.driving_clip for pair in pairs}
        for pair in pairs:
            if pair.source_face and pair.source_clip not in drivers:
                used[pair.source_clip] = set(range(len(dataset.clip(pair.source_clip))))
    else:
        for pair in pairs:
            used.setdefault(pair.driving_clip, set()).update(pair.driving_frames)
    return {clip: sorted(frames) for clip, frames in sorted(used.items())}


def _sized(frames: Iterable[np.ndarray], size: tuple[int, int], pair_id: str):
    for index, frame in enumerate(frames):
        if tuple(frame.shape[:2]) != size:
            raise ValueError(f"{pair_id}: frame {index} is {frame.shape[1]}x{frame.shape[0]}, "
                             f"the driving frames {size[1]}x{size[0]}")
        yield frame


def stats_arrays(stats: FeatureStats) -> list[np.ndarray]:
    """The running sums as arrays (count, sum, outer), e.g. to add them across ranks."""
    return [np.array([float(stats.count)]), stats.sum, stats.outer]


def stats_from(arrays: list[np.ndarray]) -> FeatureStats:
    stats = FeatureStats(len(arrays[1]))
    stats.count, stats.sum, stats.outer = int(arrays[0][0]), arrays[1], arrays[2]
    return stats
