"""The FAN landmark backend (face-alignment): weights through the asset manager, loaded strictly.

The real weights cannot be downloaded here; the tests make state dicts of face-alignment's own
networks (every name and shape of the real files), save them under the manifest's file names
and load them through the same code path as the real ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("face_alignment")

from thbench.core import assets  # noqa: E402
from thbench.eval.metrics import build_metrics  # noqa: E402
from thbench.facegeom.fan import (  # noqa: E402
    DETECTOR_ASSET,
    LANDMARK_ASSET,
    FANLandmarks,
    load_detector,
    load_landmark_network,
)


@pytest.fixture(scope="module")
def fan_weights(tmp_path_factory) -> Path:
    from face_alignment.detection.sfd.net_s3fd import s3fd
    from face_alignment.models.fan import FAN

    folder = tmp_path_factory.mktemp("fan_assets")
    torch.manual_seed(0)
    torch.save(FAN(4).state_dict(), folder / assets.get(LANDMARK_ASSET).filename)
    torch.save(s3fd().state_dict(), folder / assets.get(DETECTOR_ASSET).filename)
    return folder


@pytest.fixture
def fan_offline(fan_weights: Path, monkeypatch) -> Path:
    """The made weights as the offline asset folder (their digests are not the published ones,
    so the manifest's digest prefixes are lifted for these two assets only)."""
    monkeypatch.setenv("THB_ASSETS_DIR", str(fan_weights))
    table = dict(assets.manifest())
    for name in (DETECTOR_ASSET, LANDMARK_ASSET):
        table[name] = assets.Asset(**{**table[name].__dict__, "sha256": ""})
    monkeypatch.setattr(assets, "manifest", lambda: table)
    return fan_weights


def test_manifest_names_face_alignments_urls() -> None:
    from face_alignment.api import models_urls
    from face_alignment.detection.sfd.sfd_detector import models_urls as detector_urls

    assert assets.get(LANDMARK_ASSET).url == models_urls["2DFAN-4"]
    assert assets.get(DETECTOR_ASSET).url == detector_urls["s3fd"]
    for name in (LANDMARK_ASSET, DETECTOR_ASSET):
        asset = assets.get(name)
        assert asset.sha256 and asset.sha256 in asset.filename  # the published prefix


def test_made_weights_load_strictly(fan_weights: Path, tmp_path: Path) -> None:
    path = fan_weights / assets.get(LANDMARK_ASSET).filename
    state = torch.load(path, weights_only=True)
    network = load_landmark_network(path)
    assert all(torch.equal(v, network.state_dict()[k]) for k, v in state.items())
    broken = dict(state)
    del broken["conv1.weight"]
    torch.save(broken, tmp_path / "missing.pth")
    with pytest.raises(RuntimeError, match="Missing key"):
        load_landmark_network(tmp_path / "missing.pth")
    wrong = dict(state, **{"l3.weight": torch.zeros(67, 256, 1, 1)})
    torch.save(wrong, tmp_path / "shape.pth")
    with pytest.raises(RuntimeError, match="size mismatch"):
        load_landmark_network(tmp_path / "shape.pth")
    detector = fan_weights / assets.get(DETECTOR_ASSET).filename
    assert load_detector(detector).face_detector.conv1_1.weight.shape == (64, 3, 3, 3)
    extra = dict(torch.load(detector, weights_only=True), unexpected=torch.zeros(1))
    torch.save(extra, tmp_path / "extra.pth")
    with pytest.raises(RuntimeError, match="Unexpected key"):
        load_detector(tmp_path / "extra.pth")


def test_landmarks_land_in_the_face_box_of_a_real_frame(fan_offline: Path,
                                                        pyfeat_data: Path) -> None:
    """Whatever the (made) weights predict, face-alignment's geometry maps the heatmap maxima
    into the crop around the box: every point lies within the box grown by the crop margin."""
    from thbench.core.media import iter_video
    from thbench.facegeom.detect import FaceDetector

    frame = next(iter_video(pyfeat_data / "single_face.mp4"))
    (face, *_) = FaceDetector().detect(frame)
    fan = FANLandmarks()
    assert fan.available() == ""
    points = fan.landmarks_in_box(frame, face.bbox)
    assert points.shape == (68, 2) and points.dtype == np.float32 and np.isfinite(points).all()
    x0, y0, x1, y1 = face.bbox
    side = (x1 - x0 + y1 - y0) / 195 * 200  # the crop's side in image pixels
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2 - (y1 - y0) * 0.12])
    assert (np.abs(points - centre) <= side / 2 + 1).all()
    assert "s3fd+2DFAN-4" in fan.backend and "2DFAN4-11f355bf06" in fan.backend


def test_metrics_read_fan_landmarks_and_skip_without_the_weights(tmp_path: Path,
                                                                 monkeypatch) -> None:
    akd, mkr = build_metrics(["akd_fomm", "mkr"], {"akd_fomm": {"landmarks": "fan"},
                                                   "mkr": {"landmarks": "fan"}})
    assert akd.parts == ("fan",) and mkr.parts == ("fan",)
    monkeypatch.setenv("THB_ASSETS_DIR", str(tmp_path))
    monkeypatch.setenv("THB_CACHE_DIR", str(tmp_path))
    assert "fan_s3fd" in akd.available() and "fix:" in akd.available()
    with pytest.raises(ValueError, match="landmarks must be one of"):
        build_metrics(["akd"], {"akd": {"landmarks": "mediapipe"}})


def test_analyzer_fan_part_and_cache_roundtrip(fan_offline: Path, pyfeat_data: Path,
                                               tmp_path: Path) -> None:
    from thbench.core.media import iter_video
    from thbench.eval.metrics.base import FrameBatch
    from thbench.facegeom.analysis import FaceAnalyzer

    frame = next(iter_video(pyfeat_data / "single_face.mp4"))[:256, :256].copy()
    analyzer = FaceAnalyzer(parts=("fan",), cache=tmp_path / "cache", strict=True)
    assert "fan=face-alignment-" in analyzer.backend
    record = analyzer.analyze(frame)
    # seeded random S3FD weights "find" faces; the landmarks are FAN's on the largest box
    assert record.fan_landmarks is not None and record.fan_landmarks.shape == (68, 2)
    again = FaceAnalyzer(parts=("fan",), cache=tmp_path / "cache", strict=True).analyze(frame)
    assert np.array_equal(again.fan_landmarks, record.fan_landmarks)
    # AKD with landmarks="fan" reads those points (zero against the same frame)
    (akd,) = build_metrics(["akd"], {"akd": {"landmarks": "fan"}})
    frames = torch.zeros(1, 3, 8, 8)
    akd.update(FrameBatch(generated=frames, driving=frames, source=frames[0],
                          ground_truth=frames,
                          context={"analyses": lambda role: [record]}))
    result = akd.compute()
    assert result.value == 0.0 and result.frames == 1
    assert akd.backend.startswith("fan=face-alignment-")


@pytest.mark.slow
def test_fan_path_is_pose_evaluations(fan_offline: Path, pyfeat_data: Path, tmp_path: Path,
                                      monkeypatch) -> None:
    """pose-evaluation's ``extract_face_pose``: ``FaceAlignment(LandmarksType._2D,
    flip_input=False)``, ``get_landmarks(frame)``, ``kp[0]`` (the first face, no mirrored crop).
    face-alignment's own object, given the same (made) weights, gives our landmarks exactly,
    and the flip-averaged pipeline does not."""
    from face_alignment import FaceAlignment, LandmarksType

    from thbench.core.media import iter_video

    hub = tmp_path / "torch_home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / assets.get(LANDMARK_ASSET).filename).symlink_to(
        fan_offline / assets.get(LANDMARK_ASSET).filename)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    detector = str(fan_offline / assets.get(DETECTOR_ASSET).filename)
    frame = np.ascontiguousarray(next(iter_video(pyfeat_data / "single_face.mp4"))[:128, :128])

    fan = FANLandmarks()
    # seeded random S3FD weights "find" many boxes; both sides see only the first two (in the
    # detector's order), so face-alignment runs FAN twice, not hundreds
    boxes = fan.detector.detect_from_image(frame.copy())[:2]
    assert len(boxes) == 2
    monkeypatch.setattr(type(fan.detector), "detect_from_image", lambda self, image: boxes)

    def theirs(flip: bool):
        aligner = FaceAlignment(LandmarksType.TWO_D, device="cpu", flip_input=flip,
                                compile=False, face_detector_kwargs={"path_to_detector": detector})
        return aligner.get_landmarks(frame)

    expected = theirs(False)
    ours = fan.landmarks(frame)
    assert ours is not None and np.allclose(ours, expected[0], atol=1e-4)
    assert not np.allclose(ours, theirs(True)[0], atol=1e-4)
