"""FID with pytorch-fid's own network and preprocessing, accumulated as mergeable running sums.

Features: ``pytorch_fid.inception.InceptionV3([3])`` (pool3, 2048-d): input in [0, 1], bilinear
resize to 299x299 (``align_corners=False``), then ``2x - 1`` -- all inside pytorch-fid's
``forward``. The weights come from the ``fid_inception`` asset (or an explicit path): the
network is pytorch-fid's ``fid_inception_v3`` structure with the state dict loaded from that file
instead of the torch hub download.

Statistics are running sums (count, sum (2048,), sum of outer products (2048, 2048), float64)
for the generated frames and for the real frames of the split, so partial sums can be saved per
pair (``state()`` -> npz), merged later (``merge``) or all-reduced across ranks (sum every array).
Mean and covariance follow ``np.mean`` / ``np.cov`` (ddof=1), the distance is
``pytorch_fid.fid_score.calculate_frechet_distance``. One value per method x dataset x protocol.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from thbench.core import atomic
from thbench.datasets.protocols import PROTOCOLS
from thbench.eval.metrics.base import FrameBatch, MetricValue, WeightsFileMetric

DIMS = 2048
ASSET = "fid_inception"
_BUILD_LOCK = threading.Lock()


class FeatureStats:
    """Running count, sum and sum of outer products of feature vectors (float64)."""

    def __init__(self, dims: int = DIMS) -> None:
        self.count = 0
        self.sum = np.zeros(dims, dtype=np.float64)
        self.outer = np.zeros((dims, dims), dtype=np.float64)

    def add(self, features: np.ndarray | torch.Tensor) -> None:
        f = torch.as_tensor(np.asarray(features) if not torch.is_tensor(features) else features)
        f = f.detach().to("cpu", torch.float64).reshape(len(f), -1)
        if f.shape[1] != self.sum.shape[0]:
            raise ValueError(f"expected {self.sum.shape[0]}-d features, got {f.shape[1]}")
        self.count += f.shape[0]
        self.sum += f.sum(0).numpy()
        self.outer += (f.T @ f).numpy()

    def merge(self, other: FeatureStats) -> None:
        self.count += other.count
        self.sum += other.sum
        self.outer += other.outer

    def mean(self) -> np.ndarray:
        return self.sum / self.count

    def cov(self) -> np.ndarray:
        """Unbiased covariance (ddof=1), as ``np.cov(features, rowvar=False)``."""
        if self.count < 2:
            raise ValueError("covariance needs at least 2 samples")
        mu = self.mean()
        return (self.outer - self.count * np.outer(mu, mu)) / (self.count - 1)


def frechet_distance(a: FeatureStats, b: FeatureStats) -> float:
    from pytorch_fid.fid_score import calculate_frechet_distance

    return float(calculate_frechet_distance(a.mean(), a.cov(), b.mean(), b.cov()))


def build_inception(weights: str | Path) -> torch.nn.Module:
    """pytorch-fid's ``InceptionV3([3])`` with the FID Inception weights read from ``weights``."""
    from pytorch_fid import inception

    state = torch.load(weights, map_location="cpu", weights_only=True)

    def from_file(url: str, *args, **kwargs) -> dict[str, torch.Tensor]:
        return state

    # fid_inception_v3() builds the patched network, then calls load_state_dict_from_url and
    # load_state_dict (strict); we only swap where the state dict comes from.
    with _BUILD_LOCK, mock.patch.object(inception, "load_state_dict_from_url", from_file):
        model = inception.InceptionV3([inception.InceptionV3.BLOCK_INDEX_BY_DIM[DIMS]])
    return model.eval().requires_grad_(False)


class FID(WeightsFileMetric):
    """Frechet Inception distance between generated frames and the split's real frames."""

    name = "fid"
    higher_is_better = False
    protocols = PROTOCOLS
    scope = "set"
    frame_mean = False  # one value over the set of all frames

    def __init__(
        self,
        weights: str | Path | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 32,
    ) -> None:
        self.weights, self.device, self.batch_size = weights, device, batch_size
        self._model: torch.nn.Module | None = None
        self.reset()

    # -- backend ------------------------------------------------------------------------------
    @property
    def backend(self) -> str:
        from importlib.metadata import version

        from thbench.core import assets

        weights = Path(self.weights).name if self.weights else assets.get(ASSET).filename
        return f"pytorch-fid-{version('pytorch-fid')}/InceptionV3 pool3 ({weights})"

    def asset(self) -> str:
        return ASSET

    def model(self) -> torch.nn.Module:
        if self._model is None:
            self._model = build_inception(self.weights_path()).to(self.device)
        return self._model

    @torch.no_grad()
    def features(self, frames: torch.Tensor) -> torch.Tensor:
        """Pool3 features (B, 2048) float64 of (B, 3, H, W) frames in [0, 1]."""
        model, out = self.model(), []
        for start in range(0, len(frames), self.batch_size):
            x = frames[start : start + self.batch_size].to(self.device, torch.float32)
            pred = model(x)[0]
            if pred.shape[2] != 1 or pred.shape[3] != 1:  # as pytorch-fid's get_activations
                pred = torch.nn.functional.adaptive_avg_pool2d(pred, (1, 1))
            out.append(pred.flatten(1).double().cpu())
        return torch.cat(out) if out else torch.zeros(0, DIMS, dtype=torch.float64)

    # -- accumulation -------------------------------------------------------------------------
    def update_generated(self, frames: torch.Tensor) -> None:
        self.generated.add(self.features(frames))

    def update_real(self, frames: torch.Tensor) -> None:
        """Add real frames; call once per distinct real frame of the split."""
        self.real.add(self.features(frames))

    def update(self, batch: FrameBatch) -> None:
        """Generated frames always; ``batch.driving`` as real frames only when
        ``batch.context["fid_real"]`` is true (the caller sets it the first time a driving clip
        is seen, so every real frame counts once). The runner does not use this batch path: it
        keeps features on disk per pair and per clip (``eval.set_metrics``) to be resumable."""
        self.update_generated(batch.generated)
        if batch.context.get("fid_real", False):
            self.update_real(batch.driving)

    def compute(self) -> MetricValue:
        if self.generated.count < 2 or self.real.count < 2:
            return MetricValue.skipped(
                f"fid needs at least 2 generated and 2 real frames (have {self.generated.count} "
                f"and {self.real.count}; real frames are added by update_real or by "
                f"batch.context['fid_real'] = True)"
            )
        value = frechet_distance(self.generated, self.real)
        return MetricValue(value, self.generated.count, real_frames=self.real.count)

    def reset(self) -> None:
        self.generated = FeatureStats()
        self.real = FeatureStats()

    # -- resumable / distributed state --------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        """The running sums as numpy arrays (save with ``np.savez``; all-reduce by summing)."""
        out: dict[str, np.ndarray] = {}
        for side, stats in (("generated", self.generated), ("real", self.real)):
            out[f"{side}_count"] = np.asarray(stats.count, dtype=np.int64)
            out[f"{side}_sum"] = stats.sum.copy()
            out[f"{side}_outer"] = stats.outer.copy()
        return out

    def merge(self, state: Mapping[str, np.ndarray]) -> None:
        """Add saved running sums (from :meth:`state`, or a loaded npz) to this metric's."""
        for side, stats in (("generated", self.generated), ("real", self.real)):
            other = FeatureStats(stats.sum.shape[0])
            other.count = int(state[f"{side}_count"])
            other.sum = np.asarray(state[f"{side}_sum"], dtype=np.float64)
            other.outer = np.asarray(state[f"{side}_outer"], dtype=np.float64)
            stats.merge(other)

    def save_state(self, path: str | Path) -> None:
        """Write :meth:`state` as an npz file at ``path`` (atomically, under that exact name)."""
        with atomic.replacing(path) as out:
            np.savez(out, **self.state())

    def load_state(self, path: str | Path) -> None:
        """Merge the sums saved at ``path`` (npz) into this metric."""
        with np.load(path) as data:
            self.merge({key: data[key] for key in data.files})


MIN_REAL_FRAMES = 2048
"""Real frames below which an FID (or KID) is flagged and never bold: with fewer frames than
the 2048 feature dimensions the real covariance is singular and FID's bias exceeds the
differences between methods."""

KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000
"""Bińkowski et al. (2018)'s estimator: the mean over random subsets of ``min(1000, n, m)`` frames
of each side, with its standard deviation over the subsets."""


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """KID's kernel ``(x . y / d + 1) ** 3`` between the rows of ``x`` (n, d) and ``y`` (m, d)."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased estimate of the squared MMD between samples ``x`` (n, d) and ``y`` (m, d)
    with :func:`polynomial_kernel` (diagonal terms left out of the within-sample means)."""
    n, m = len(x), len(y)
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within_x = (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
    within_y = (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within_x + within_y - 2.0 * kxy.mean())


def kernel_inception_distance(generated: np.ndarray, real: np.ndarray, seed: int = 0,
                              subsets: int = KID_SUBSETS,
                              subset_size: int = KID_SUBSET_SIZE) -> tuple[float, float]:
    """(mean, standard deviation) of :func:`mmd2_unbiased` over ``subsets`` seeded random
    subsets of ``min(subset_size, n, m)`` rows of each side, drawn without replacement."""
    generated, real = np.asarray(generated, np.float64), np.asarray(real, np.float64)
    size = min(subset_size, len(generated), len(real))
    if size < 2:
        raise ValueError(f"kid needs at least 2 generated and 2 real frames (have "
                         f"{len(generated)} and {len(real)})")
    rng = np.random.default_rng(seed)
    values = [mmd2_unbiased(generated[rng.choice(len(generated), size, replace=False)],
                            real[rng.choice(len(real), size, replace=False)])
              for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values))


class KID(FID):
    """Kernel Inception distance (Bińkowski et al. 2018) on FID's pool3 features: unbiased at
    small sample sizes, with its standard deviation over subsets (``MetricValue.std``)."""

    name = "kid"

    def __init__(self, weights: str | Path | None = None, device: str | torch.device = "cpu",
                 batch_size: int = 32, seed: int = 0) -> None:
        self.seed = seed
        super().__init__(weights, device, batch_size)

    @property
    def backend(self) -> str:
        return f"{super().backend}, cubic polynomial kernel, {KID_SUBSETS} subsets"

    def update_generated(self, frames: torch.Tensor) -> None:
        self._generated.append(self.features(frames).numpy())

    def update_real(self, frames: torch.Tensor) -> None:
        self._real.append(self.features(frames).numpy())

    def compute(self) -> MetricValue:
        return self.distance(np.concatenate(self._generated or [np.zeros((0, DIMS))]),
                             np.concatenate(self._real or [np.zeros((0, DIMS))]))

    def distance(self, generated: np.ndarray, real: np.ndarray) -> MetricValue:
        """KID of two feature arrays (n, 2048) and (m, 2048)."""
        try:
            mean, std = kernel_inception_distance(generated, real, self.seed)
        except ValueError as error:
            return MetricValue.skipped(str(error))
        return MetricValue(mean, len(generated), std=std, real_frames=len(real))

    def reset(self) -> None:
        super().reset()
        self._generated: list[np.ndarray] = []
        self._real: list[np.ndarray] = []
