"""Face metrics (CSIM, AED-identity, AKD, MKR, AED-3dmm, APD, AVD) on analyses we construct."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch

from thbench.datasets.protocols import ALL_PROTOCOLS, CROSS_IDENTITY, RECONSTRUCTION
from thbench.eval.metrics import build_metrics
from thbench.eval.metrics.base import FrameBatch
from thbench.eval.metrics.identity import CSIM, AEDFomm, AEDIdentity
from thbench.eval.metrics.landmarks import AKD, MKR, AKDFomm
from thbench.eval.metrics.morphable import (
    AED3DMM,
    APD,
    AVDDriving,
    AVDSource,
    identity_mesh_distance,
    neutral_mesh,
)


@dataclass
class Analysis:
    """The fields of facegeom's FrameAnalysis that metrics read."""

    has_face: bool = True
    landmarks: np.ndarray = field(default_factory=lambda: np.zeros((68, 2)))
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    identity: np.ndarray = field(default_factory=lambda: np.zeros(63))
    expression: np.ndarray = field(default_factory=lambda: np.zeros(6))
    dlib_descriptor: np.ndarray | None = None
    arcface: np.ndarray | None = None


NO_FACE = Analysis(has_face=False, landmarks=None, identity=None, expression=None)


def _batch(generated: list, **others: list) -> FrameBatch:
    roles = {"generated": generated, **others}
    if "ground_truth" not in roles and "driving" in roles:
        roles["ground_truth"] = roles["driving"]
    frames = torch.zeros(len(generated), 3, 8, 8)
    return FrameBatch(
        generated=frames,
        driving=frames,
        source=frames[0],
        context={"analyses": lambda role: roles[role]},
    )


def _run(metric, batch: FrameBatch):
    metric.update(batch)
    return metric.compute()


def test_csim_cosine_and_exclusions() -> None:
    src = Analysis(dlib_descriptor=np.array([1.0, 0.0, 0.0]))
    gen = [
        Analysis(dlib_descriptor=np.array([1.0, 0.0, 0.0])),
        Analysis(dlib_descriptor=np.array([1.0, 1.0, 0.0])),
        NO_FACE,
    ]
    result = _run(CSIM(), _batch(gen, source=[src]))
    assert result.value == pytest.approx((1.0 + 2**-0.5) / 2)
    assert result.frames == 2 and result.excluded == 1
    metric = CSIM()
    assert metric.reference == "source" and metric.higher_is_better
    assert metric.protocols == ALL_PROTOCOLS  # robustness too: no ground truth needed
    assert metric.parts == ("dlib",)


def test_identity_metrics_need_the_chosen_embedding() -> None:
    src = Analysis(dlib_descriptor=np.ones(128))
    gen = [Analysis(dlib_descriptor=np.ones(128))]  # no arcface field filled
    with pytest.raises(ValueError, match="'arcface'"):
        CSIM(backend="arcface").update(_batch(gen, source=[src]))
    with pytest.raises(ValueError, match="identity backend"):
        CSIM(backend="facenet")


def test_arcface_missing_is_skipped_not_replaced(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("THB_ASSETS_DIR", str(tmp_path))
    monkeypatch.setenv("THB_CACHE_DIR", str(tmp_path))
    (csim,) = build_metrics(["csim"], {"csim": {"backend": "arcface"}})
    reason = csim.available()
    assert "arcface_r50" in reason and "fix:" in reason
    assert "arcface" in csim.backend and "dlib" not in csim.backend
    (default,) = build_metrics(["csim"])
    assert default.available() == "" and "dlib" in default.backend


def test_aed_identity_l2_symmetric() -> None:
    a, b = np.array([0.0, 3.0, 0.0]), np.array([4.0, 0.0, 0.0])
    forward = _run(AEDIdentity(), _batch([Analysis(dlib_descriptor=a)],
                                         driving=[Analysis(dlib_descriptor=b)]))
    backward = _run(AEDIdentity(), _batch([Analysis(dlib_descriptor=b)],
                                          driving=[Analysis(dlib_descriptor=a)]))
    assert forward.value == pytest.approx(5.0) == backward.value
    same = _run(
        AEDIdentity(), _batch([Analysis(dlib_descriptor=a)], driving=[Analysis(dlib_descriptor=a)])
    )
    assert same.value == 0.0
    metric = AEDIdentity()
    assert metric.protocols == RECONSTRUCTION and metric.reference == "ground_truth"
    with pytest.raises(TypeError):
        AEDIdentity(distance="mean_abs")  # the old, wrongly documented variant is gone


def test_aed_fomm_is_cmp_py_sum_of_squared_differences() -> None:
    """pose-evaluation cmp.py (5a5c45e): mean over frames of sum(|e_gt - e_gen| ** 2)."""
    rng = np.random.default_rng(4)
    truth = [rng.normal(size=128) for _ in range(3)]
    generated = [rng.normal(size=128) for _ in range(3)]
    per_frame = []
    for g, t in zip(generated, truth, strict=True):  # the script's loop, written out
        total = 0.0
        for k in range(128):
            total += abs(t[k] - g[k]) ** 2
        per_frame.append(total)
    expected = sum(per_frame) / len(per_frame)
    gen = [Analysis(dlib_descriptor=g) for g in generated] + [NO_FACE]
    drv = [Analysis(dlib_descriptor=t) for t in truth] + [Analysis(dlib_descriptor=truth[0])]
    result = _run(AEDFomm(), _batch(gen, driving=drv))
    assert result.value == pytest.approx(expected, rel=1e-12)
    assert result.frames == 3 and result.excluded == 1
    assert "cmp.py@5a5c45e" in AEDFomm().backend
    # with the Euclidean aed_identity the same frames read the square root per frame
    euclid = _run(AEDIdentity(), _batch(gen, driving=drv)).value
    assert euclid == pytest.approx(np.mean(np.sqrt(per_frame)), rel=1e-12)


def test_arcface_embeddings_are_l2_normalised_before_distances() -> None:
    a, b = np.array([3.0, 4.0, 0.0]), np.array([0.0, 0.0, 10.0])
    gen, drv = [Analysis(arcface=a)], [Analysis(arcface=b)]
    # unit vectors (0.6, 0.8, 0) and (0, 0, 1): Euclidean sqrt(2), squared 2
    assert _run(AEDIdentity(backend="arcface"), _batch(gen, driving=drv)).value == pytest.approx(
        2 ** 0.5)
    assert _run(AEDFomm(backend="arcface"), _batch(gen, driving=drv)).value == pytest.approx(2.0)
    # dlib descriptors are used as dlib returns them
    assert _run(AEDIdentity(), _batch([Analysis(dlib_descriptor=a)],
                                      driving=[Analysis(dlib_descriptor=b)])).value == (
        pytest.approx(np.linalg.norm(a - b)))


def test_akd_fomm_is_cmp_kp_mean_abs_coordinate_difference() -> None:
    """pose-evaluation cmp_kp.py (5a5c45e): mean over frames of mean(|kp_gt - kp_gen|) over the
    68x2 coordinates; frames whose generated landmarks are missing are left out."""
    rng = np.random.default_rng(5)
    truth = [rng.uniform(0, 256, size=(68, 2)) for _ in range(3)]
    generated = [t + rng.normal(0, 3, size=(68, 2)) for t in truth[:2]]
    per_frame = []
    for g, t in zip(generated, truth[:2], strict=True):
        total = 0.0
        for point in range(68):
            for axis in range(2):
                total += abs(t[point, axis] - g[point, axis])
        per_frame.append(total / 136)
    expected = sum(per_frame) / 2
    gen = [Analysis(landmarks=g) for g in generated] + [NO_FACE]
    drv = [Analysis(landmarks=t) for t in truth]
    result = _run(AKDFomm(), _batch(gen, driving=drv))
    assert result.value == pytest.approx(expected, rel=1e-12)
    assert result.frames == 2 and result.excluded == 1
    assert "cmp_kp.py@5a5c45e" in AKDFomm().backend
    # a (3, 4) pixel shift: Euclidean AKD 5, cmp_kp's mean |coordinate| 3.5
    shifted = [Analysis(landmarks=truth[0] + [3.0, 4.0])]
    assert _run(AKDFomm(), _batch(shifted, driving=drv[:1])).value == pytest.approx(3.5)
    assert _run(AKD(), _batch(shifted, driving=drv[:1])).value == pytest.approx(5.0)


def test_akd_pixels_and_mkr_rate() -> None:
    rng = np.random.default_rng(0)
    truth_points = rng.uniform(0, 256, size=(68, 2))
    truth = [
        Analysis(landmarks=truth_points),
        Analysis(landmarks=truth_points),
        NO_FACE,
        Analysis(landmarks=truth_points),
    ]
    generated = [
        Analysis(landmarks=truth_points + [3.0, 4.0]),
        NO_FACE,
        NO_FACE,
        Analysis(landmarks=truth_points),
    ]
    akd = _run(AKD(), _batch(generated, driving=truth))
    assert akd.value == pytest.approx(2.5) and akd.frames == 2 and akd.excluded == 2
    mkr = _run(MKR(), _batch(generated, driving=truth))
    assert mkr.value == pytest.approx(1 / 3) and mkr.frames == 3 and mkr.excluded == 1
    empty = _run(MKR(), _batch([NO_FACE], driving=[NO_FACE]))
    assert empty.status == "skipped" and empty.excluded == 1


def test_aed_3dmm_and_apd_closed_forms() -> None:
    drv = Analysis(
        expression=np.array([0.1, 0.2, 0.0, 0.0, 0.5, 0.0]), yaw=179.0, pitch=10.0, roll=-5.0
    )
    gen = Analysis(
        expression=np.array([0.4, 0.2, 0.0, 0.3, 0.5, 0.0]), yaw=-179.0, pitch=4.0, roll=-2.0
    )
    aed = _run(AED3DMM(backend="test"), _batch([gen, NO_FACE], driving=[drv, drv]))
    assert aed.value == pytest.approx(0.1) and aed.frames == 1 and aed.excluded == 1
    apd = _run(APD(backend="test"), _batch([gen], driving=[drv]))
    assert apd.value == pytest.approx((2.0 + 6.0 + 3.0) / 3)  # yaw wraps around +-180
    for metric in (AED3DMM(backend="t"), APD(backend="t")):
        assert _run(metric, _batch([drv], driving=[drv])).value == 0.0
        assert metric.protocols == ALL_PROTOCOLS


@dataclass
class TinyModel:
    identity_basis: np.ndarray
    mean: np.ndarray
    units: str = "mm"

    def shape(self, identity, expression=None):
        return self.mean + self.identity_basis @ identity


def test_avd_mesh_distance_closed_form_and_directions() -> None:
    rng = np.random.default_rng(1)
    model = TinyModel(identity_basis=rng.normal(size=(50, 3, 4)), mean=rng.normal(size=(50, 3)))
    a, b = rng.normal(size=4), rng.normal(size=4)
    explicit = np.linalg.norm(neutral_mesh(a, model) - neutral_mesh(b, model), axis=-1).mean()
    assert identity_mesh_distance(a, b, model) == pytest.approx(explicit, rel=1e-12)
    assert identity_mesh_distance(a, b, model) == pytest.approx(identity_mesh_distance(b, a, model))
    assert identity_mesh_distance(a, a, model) == 0.0

    # one canonical mesh per clip: the mean of the frames' identity coefficients
    c = rng.normal(size=4)
    gen = [Analysis(identity=a), Analysis(identity=c), NO_FACE]
    clip = (a + c) / 2
    avd_s = _run(
        AVDSource(backend="t", model=model), _batch(gen, source=[Analysis(identity=b)], driving=gen)
    )
    assert avd_s.value == pytest.approx(identity_mesh_distance(clip, b, model), rel=1e-12)
    assert avd_s.frames == 2 and avd_s.excluded == 1
    driving = [Analysis(identity=b), Analysis(identity=c), Analysis(identity=a)]
    avd_d = AVDDriving(backend="t", model=model)
    avd_d.update(_batch(gen[:2], driving=driving[:2]))  # two batches of one pair
    avd_d.update(_batch(gen[2:], driving=driving[2:]))
    result = avd_d.compute()
    assert result.value == pytest.approx(
        identity_mesh_distance(clip, (a + b + c) / 3, model), rel=1e-12)
    assert result.frames == 2 and result.excluded == 1
    avd_d.reset()
    assert _run(avd_d, _batch([NO_FACE], driving=[Analysis(identity=b)])).status == "skipped"
    assert not AVDSource.higher_is_better and AVDDriving.higher_is_better
    assert AVDSource.reference == "source" and AVDDriving.reference == "driving"
    # same-identity pairs have one right shape: AVD is a cross-identity metric only
    assert AVDSource.protocols == AVDDriving.protocols == (CROSS_IDENTITY,)


def test_avd_on_the_surrey_face_model(monkeypatch) -> None:
    pytest.importorskip("eos")
    (avd,) = build_metrics(["avd_s"])
    assert avd.available() == ""
    identity = np.zeros(63)
    identity[0] = 1.0  # one standard deviation of the first shape component
    d = identity_mesh_distance(identity, np.zeros(63), avd.model)
    print(f"AVD of 1 s.d. along SFM identity component 0: {d:.2f} {avd.units}")
    assert avd.units == "mm" and 0.5 < d < 50
    assert "lambda_id" in avd.backend


def test_missing_fit_raises_and_backend_comes_from_analyses() -> None:
    label = "det=dlib-hog(upsample=1)|lmk=dlib-x|fit=eos-1.5.0:lambda_id=3|dlib=dlib-resnet-v1"
    unfitted = Analysis(identity=np.full(63, np.nan))
    with pytest.raises(ValueError, match="parts including 'fit'"):
        AVDSource(model=object()).update(_batch([unfitted], source=[unfitted]))
    fitted = Analysis()
    fitted.backend = label
    metric = APD()
    metric.update(_batch([fitted], driving=[fitted]))
    assert metric.backend == "fit=eos-1.5.0:lambda_id=3"
    akd = AKD()
    akd.update(_batch([fitted], driving=[fitted]))
    assert akd.backend == "det=dlib-hog(upsample=1)|lmk=dlib-x"
    csim = CSIM()
    fitted.dlib_descriptor = np.ones(3)
    csim.update(_batch([fitted], source=[fitted]))
    assert csim.backend == "dlib=dlib-resnet-v1" and csim.compute().value == pytest.approx(1.0)


def test_face_metrics_need_analyses_in_context() -> None:
    frames = torch.zeros(1, 3, 8, 8)
    batch = FrameBatch(generated=frames, driving=frames, source=frames[0], ground_truth=frames)
    with pytest.raises(KeyError, match="analyses"):
        AKD().update(batch)


def test_registry_builds_every_metric() -> None:
    names = [
        "psnr",
        "ssim",
        "l1",
        "lpips",
        "fid",
        "csim",
        "aed_identity",
        "akd",
        "mkr",
        "aed_3dmm",
        "apd",
        "avd_s",
        "avd_d",
    ]
    metrics = build_metrics(names)
    assert [m.name for m in metrics] == names
    for metric in metrics:
        assert metric.scope in ("pair", "set")
        assert isinstance(metric.available(), str)
        assert set(metric.protocols) <= set(ALL_PROTOCOLS)
    by_name = {m.name: m for m in metrics}
    assert by_name["avd_d"].higher_is_better and not by_name["avd_s"].higher_is_better
