"""FID: running sums equal numpy mean/cov, the distance equals pytorch-fid's, and the feature
extractor is pytorch-fid's network with its preprocessing (seeded random weights)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from thbench.eval.metrics import build_metrics
from thbench.eval.metrics.base import FrameBatch
from thbench.eval.metrics.fid import FID, FeatureStats, frechet_distance


def _stats(features: np.ndarray) -> FeatureStats:
    stats = FeatureStats(features.shape[1])
    for chunk in np.array_split(features, 7):  # streaming, uneven batches
        stats.add(chunk)
    return stats


def test_running_sums_equal_numpy_mean_cov_and_distance() -> None:
    from pytorch_fid.fid_score import calculate_frechet_distance

    rng = np.random.default_rng(0)
    a = rng.normal(1.0, 2.0, size=(300, 32)) @ rng.normal(size=(32, 32))
    b = rng.normal(0.5, 1.0, size=(250, 32)) + 3.0
    sa, sb = _stats(a), _stats(b)
    assert np.allclose(sa.mean(), a.mean(0), atol=1e-12)
    assert np.allclose(sa.cov(), np.cov(a, rowvar=False), atol=1e-9, rtol=1e-9)
    expected = calculate_frechet_distance(
        a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    )
    assert frechet_distance(sa, sb) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(sa, _stats(a)) == pytest.approx(0.0, abs=1e-6)


def test_state_merge_and_npz_roundtrip(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    gen, real = rng.normal(size=(40, 2048)), rng.normal(size=(30, 2048))
    whole = FID()
    whole.generated.add(gen)
    whole.real.add(real)
    parts = []
    for g, r in ((gen[:25], real[:10]), (gen[25:], real[10:])):  # e.g. two pairs or two ranks
        part = FID()
        part.generated.add(g)
        part.real.add(r)
        parts.append(part)
    parts[1].save_state(tmp_path / "part1.npz")
    merged = FID()
    merged.merge(parts[0].state())
    merged.load_state(tmp_path / "part1.npz")
    for key, value in whole.state().items():
        assert np.allclose(merged.state()[key], value, rtol=1e-12, atol=1e-9), key
    assert merged.generated.count == 40 and merged.real.count == 30


def test_fid_skipped_without_asset_or_real_frames(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("THB_ASSETS_DIR", str(tmp_path / "offline"))
    monkeypatch.setenv("THB_CACHE_DIR", str(tmp_path / "cache"))
    (metric,) = build_metrics(["fid"])
    assert metric.scope == "set" and not metric.higher_is_better
    assert "fid_inception" in metric.available() and "fix:" in metric.available()
    metric.generated.add(np.zeros((3, 2048)))
    result = metric.compute()
    assert result.status == "skipped" and "fid_real" in result.reason


def test_extractor_is_pytorch_fids_network(
    tmp_path: Path, monkeypatch, random_fid_weights: Path
) -> None:
    from pytorch_fid.fid_score import calculate_activation_statistics, get_activations
    from pytorch_fid.inception import InceptionV3

    weights = random_fid_weights
    monkeypatch.setenv("TORCH_HOME", str(weights.parents[2]))
    rng = np.random.default_rng(2)
    files = {}
    for side, n in (("gen", 4), ("real", 3)):
        files[side] = []
        for i in range(n):
            image = rng.integers(0, 256, size=(72, 96, 3), dtype=np.uint8)  # non-square, resized
            files[side].append(tmp_path / f"{side}{i}.png")
            Image.fromarray(image).save(files[side][-1])
    reference = InceptionV3([3]).eval()  # pytorch-fid loads the hub file: same weights

    metric = FID(weights=weights, batch_size=3)
    assert metric.available() == ""
    frames = {
        side: torch.stack(
            [torch.from_numpy(np.asarray(Image.open(f))).permute(2, 0, 1) for f in paths]
        ).float()
        / 255
        for side, paths in files.items()
    }
    ours = metric.features(frames["gen"]).numpy()
    theirs = get_activations(
        [str(f) for f in files["gen"]], reference, batch_size=2, device="cpu", num_workers=0
    )
    assert np.abs(theirs).max() > 0
    assert np.allclose(ours, theirs, rtol=1e-5, atol=1e-6)

    metric.update(
        FrameBatch(
            generated=frames["gen"][:2],
            driving=frames["real"],
            source=frames["real"][0],
            context={"fid_real": True},
        )
    )
    metric.update(
        FrameBatch(generated=frames["gen"][2:], driving=frames["real"], source=frames["real"][0])
    )
    assert metric.generated.count == 4 and metric.real.count == 3  # real frames counted once
    mu, sigma = calculate_activation_statistics(
        [str(f) for f in files["gen"]], reference, batch_size=2, num_workers=0
    )
    assert np.allclose(metric.generated.mean(), mu, rtol=1e-5, atol=1e-6)
    assert np.allclose(metric.generated.cov(), sigma, rtol=1e-4, atol=1e-6)
    result = metric.compute()
    assert result.status == "ok" and result.frames == 4 and np.isfinite(result.value)
    assert "pytorch-fid-0.3.0" in metric.backend and weights.name in metric.backend


@pytest.mark.parametrize("rank_deficient", [False, True])
def test_distance_equals_pytorch_fid_and_the_commuting_closed_form(rank_deficient: bool) -> None:
    """For diagonal covariances the Frechet distance has a closed form:
    |mu1 - mu2|^2 + sum_i (sqrt(s1_i) - sqrt(s2_i))^2. Rank-deficient: some variances are 0 (as
    with fewer frames than feature dimensions)."""
    from pytorch_fid.fid_score import calculate_frechet_distance

    rng = np.random.default_rng(7)
    dims = 12
    s1, s2 = rng.uniform(0.5, 3.0, dims), rng.uniform(0.5, 3.0, dims)
    if rank_deficient:
        s1[:4] = 0.0
        s2[2:7] = 0.0
    mu1, mu2 = rng.normal(size=dims), rng.normal(size=dims)
    closed = float(((mu1 - mu2) ** 2).sum() + ((np.sqrt(s1) - np.sqrt(s2)) ** 2).sum())
    a, b = FeatureStats(dims), FeatureStats(dims)
    # 2 * dims samples mu +- c_i e_i: mean mu, covariance (ddof 1) diag(2 c_i^2 / (2 dims - 1))
    for stats, mu, var in ((a, mu1, s1), (b, mu2, s2)):
        offsets = np.diag(np.sqrt(var * (2 * dims - 1) / 2))
        stats.add(np.concatenate([mu + offsets, mu - offsets]))
    assert np.allclose(a.cov(), np.diag(s1), atol=1e-12)
    assert np.allclose(b.cov(), np.diag(s2), atol=1e-12)
    ours = frechet_distance(a, b)
    theirs = calculate_frechet_distance(a.mean(), a.cov(), b.mean(), b.cov())
    assert ours == pytest.approx(theirs, rel=1e-12)
    # sqrtm of a singular product is accurate to ~1e-8 relative; pytorch-fid's number is kept
    assert ours == pytest.approx(closed, rel=1e-7)


def test_scipy_is_pinned_below_the_release_that_drops_sqrtm_disp() -> None:
    from importlib.metadata import requires, version

    from packaging.version import Version

    pins = [r for r in requires("talkinghead-bench") if r.startswith("scipy")]
    assert pins == ["scipy<1.18,>=1.11"] or pins == ["scipy>=1.11,<1.18"], pins
    assert Version(version("scipy")) < Version("1.18")


def _explicit_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased squared MMD through the kernel's explicit feature map: with z = [v / sqrt(d),
    1], ``(x . y / d + 1) ** 3 = phi(x) . phi(y)`` for ``phi(v) = z (x) z (x) z``, so the
    estimate is ``(|sum phi(x)|^2 - sum |phi(x)|^2) / (n (n - 1))`` + the same for y
    ``- 2 mean phi(x) . mean phi(y)`` -- no kernel matrix involved."""
    d = x.shape[1]

    def phi(v: np.ndarray) -> np.ndarray:
        z = np.append(v / np.sqrt(d), 1.0)
        return np.kron(np.kron(z, z), z)

    px, py = np.array([phi(v) for v in x]), np.array([phi(v) for v in y])

    def within(p: np.ndarray) -> float:
        total = p.sum(axis=0)
        return (total @ total - (p * p).sum()) / (len(p) * (len(p) - 1))

    return float(within(px) + within(py) - 2 * px.mean(axis=0) @ py.mean(axis=0))


def test_kid_is_the_unbiased_polynomial_mmd_of_the_kid_paper() -> None:
    from thbench.eval.metrics.fid import kernel_inception_distance, mmd2_unbiased

    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(12, 5)), rng.normal(0.5, 1.0, size=(9, 5))
    assert mmd2_unbiased(x, y) == pytest.approx(_explicit_mmd2(x, y), rel=1e-10)
    # unbiased: two samples of one distribution average to about 0 (the biased V-statistic
    # would sit clearly above 0)
    same = [mmd2_unbiased(rng.normal(size=(20, 5)), rng.normal(size=(20, 5)))
            for _ in range(200)]
    assert abs(np.mean(same)) < 3 * np.std(same) / np.sqrt(len(same))
    # subsets of min(1000, n, m) rows: with m = 9 real rows every subset holds all of them
    mean, std = kernel_inception_distance(x, y, seed=3, subsets=50)
    generator = np.random.default_rng(3)
    values = [_explicit_mmd2(x[generator.choice(12, 9, replace=False)],
                             y[generator.choice(9, 9, replace=False)]) for _ in range(50)]
    assert mean == pytest.approx(np.mean(values), rel=1e-10)
    assert std == pytest.approx(np.std(values), rel=1e-10) and std > 0
    assert mean > 0  # shifted by 0.5 in every dimension
    with pytest.raises(ValueError, match="at least 2"):
        kernel_inception_distance(x, y[:1])


def test_kid_without_weights_is_skipped_with_the_fix(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("THB_ASSETS_DIR", str(tmp_path))
    monkeypatch.setenv("THB_CACHE_DIR", str(tmp_path))
    (kid,) = build_metrics(["kid"])
    reason = kid.available()
    assert "fid_inception" in reason and "fix" in reason
    assert kid.scope == "set" and not kid.higher_is_better
    result = kid.distance(np.zeros((1, 4)), np.zeros((5, 4)))
    assert result.status == "skipped" and "at least 2" in result.reason
