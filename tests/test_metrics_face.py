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
from thbench.eval.metrics.landmarks import AKD, MKR, AKDFomm, chance_distance
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
    dlib_frame: np.ndarray | None = None
    arcface_frame: np.ndarray | None = None
    in_reference_box: bool = False


NO_FACE = Analysis(has_face=False, landmarks=None, identity=None, expression=None)


def in_box(**fields) -> Analysis:
    """A generated frame without a detected face, analysed inside its reference's face box."""
    return Analysis(has_face=False, in_reference_box=True, **fields)


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


def test_csim_cosine_and_no_face_frames_scored() -> None:
    src = Analysis(dlib_descriptor=np.array([1.0, 0.0, 0.0]))
    gen = [
        Analysis(dlib_descriptor=np.array([1.0, 0.0, 0.0])),
        Analysis(dlib_descriptor=np.array([1.0, 1.0, 0.0])),
        NO_FACE,  # no face and no in-box analysis: chance, cosine 0
        in_box(dlib_descriptor=np.array([0.0, 1.0, 1.0])),  # its in-box embedding is read
    ]
    result = _run(CSIM(), _batch(gen, source=[src]))
    assert result.value == pytest.approx((1.0 + 2**-0.5 + 0.0 + 0.0) / 4)
    assert result.frames == 4 and result.excluded == 0
    # a source without a face leaves every frame out
    none = _run(CSIM(), _batch(gen[:1], source=[NO_FACE]))
    assert none.status == "skipped" and none.excluded == 1
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
    # cmp.py embeds whole frames: a frame with no face (on either side) still counts
    gen = [Analysis(dlib_frame=g) for g in generated[:2]]
    gen.append(Analysis(has_face=False, dlib_frame=generated[2]))
    drv = [Analysis(dlib_frame=t) for t in truth[:2]]
    drv.append(Analysis(has_face=False, dlib_frame=truth[2]))
    result = _run(AEDFomm(), _batch(gen, driving=drv))
    assert result.value == pytest.approx(expected, rel=1e-12)
    assert result.frames == 3 and result.excluded == 0
    assert "cmp.py@5a5c45e" in AEDFomm().backend and AEDFomm().parts == ("dlib_frame",)
    assert not AEDFomm.ranking and AEDIdentity.ranking
    # with the Euclidean aed_identity the same (face-aligned) vectors read the root per frame
    faces = [Analysis(dlib_descriptor=g) for g in generated]
    truths = [Analysis(dlib_descriptor=t) for t in truth]
    euclid = _run(AEDIdentity(), _batch(faces, driving=truths)).value
    assert euclid == pytest.approx(np.mean(np.sqrt(per_frame)), rel=1e-12)


def test_arcface_embeddings_are_l2_normalised_before_distances() -> None:
    a, b = np.array([3.0, 4.0, 0.0]), np.array([0.0, 0.0, 10.0])
    gen, drv = [Analysis(arcface=a)], [Analysis(arcface=b)]
    # unit vectors (0.6, 0.8, 0) and (0, 0, 1): Euclidean sqrt(2), squared 2
    assert _run(AEDIdentity(backend="arcface"), _batch(gen, driving=drv)).value == pytest.approx(
        2 ** 0.5)
    whole = [Analysis(arcface_frame=a)], [Analysis(arcface_frame=b)]
    assert _run(AEDFomm(backend="arcface"), _batch(whole[0], driving=whole[1])).value == (
        pytest.approx(2.0))
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
    assert "cmp_kp.py@5a5c45e" in AKDFomm().backend and not AKDFomm.ranking
    # cmp_kp.py's rule holds even where an in-box analysis exists: such a frame is left out
    boxed = gen[:2] + [in_box(landmarks=truth[2])]
    assert _run(AKDFomm(), _batch(boxed, driving=drv)).frames == 2
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
    chance = chance_distance(truth_points)
    # the no-face frame whose ground truth has a face is scored at chance, not dropped
    assert akd.value == pytest.approx((5.0 + chance + 0.0) / 3)
    assert akd.frames == 3 and akd.excluded == 1
    # an in-box analysis is read, but never better than chance
    near = _run(AKD(), _batch([in_box(landmarks=truth_points + [3.0, 4.0])],
                              driving=truth[:1]))
    assert near.value == pytest.approx(chance)
    far = truth_points + [1000.0, 0.0]
    assert _run(AKD(), _batch([in_box(landmarks=far)], driving=truth[:1])).value == (
        pytest.approx(1000.0))
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
    # E|e - U(0, 1)| = (e^2 + (1 - e)^2) / 2 per coefficient
    chance = np.mean([(e**2 + (1 - e) ** 2) / 2 for e in drv.expression])
    assert aed.value == pytest.approx((0.1 + chance) / 2) and aed.frames == 2
    assert aed.excluded == 0
    apd = _run(APD(backend="test"), _batch([gen, NO_FACE], driving=[drv, drv]))
    assert apd.value == pytest.approx(((2.0 + 6.0 + 3.0) / 3 + 90.0) / 2)  # yaw wraps at 180
    left_out = _run(APD(backend="test"), _batch([gen, gen], driving=[drv, NO_FACE]))
    assert left_out.frames == 1 and left_out.excluded == 1
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

    # one canonical mesh per clip: the mean of the frames' identity coefficients, over the
    # frames whose driving frame has a face (an in-box analysis counts; no driving face: out)
    c, d = rng.normal(size=4), rng.normal(size=4)
    gen = [Analysis(identity=a), in_box(identity=c), Analysis(identity=d)]
    driving = [Analysis(identity=b), Analysis(identity=c), NO_FACE]
    clip = (a + c) / 2
    source = [Analysis(identity=b)]
    avd_s = _run(AVDSource(backend="t", model=model), _batch(gen, source=source, driving=driving))
    assert avd_s.value == pytest.approx(identity_mesh_distance(clip, b, model), rel=1e-12)
    assert avd_s.frames == 2 and avd_s.excluded == 1
    avd_d = AVDDriving(backend="t", model=model)
    avd_d.update(_batch(gen[:2], driving=driving[:2], source=source))  # two batches of a pair
    avd_d.update(_batch(gen[2:], driving=driving[2:], source=source))
    result = avd_d.compute()
    assert result.value == pytest.approx(
        identity_mesh_distance(clip, (b + c) / 2, model), rel=1e-12)
    assert result.frames == 2 and result.excluded == 1
    avd_d.reset()
    assert _run(avd_d, _batch([NO_FACE], driving=[NO_FACE], source=source)).status == "skipped"
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
        AVDSource(model=object()).update(_batch([unfitted], source=[unfitted],
                                                driving=[unfitted]))
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
        "avd_share",
        "kid",
    ]
    metrics = build_metrics(names)
    assert [m.name for m in metrics] == names
    for metric in metrics:
        assert metric.scope in ("pair", "set")
        assert isinstance(metric.available(), str)
        assert set(metric.protocols) <= set(ALL_PROTOCOLS)
    by_name = {m.name: m for m in metrics}
    assert by_name["avd_d"].higher_is_better and not by_name["avd_s"].higher_is_better
