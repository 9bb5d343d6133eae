"""Face geometry on real frames (detection, 3DMM fit) and the rasterizer against closed forms."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from thbench.core.media import iter_video
from thbench.facegeom import raster
from thbench.facegeom.analysis import FaceAnalyzer
from thbench.facegeom.detect import FaceDetector
from thbench.facegeom.fitting import Fitter
from thbench.facegeom.morphable import load_bfm


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


@pytest.fixture(scope="module")
def fitter() -> Fitter:
    fitter = Fitter()  # the Surrey Face Model shipped in facegeom/sfm/
    assert fitter.available() == ""
    return fitter


def _frames(path: Path, step: int, stop: int | None = None) -> list[tuple[int, np.ndarray]]:
    return list(itertools.islice(
        ((i, f) for i, f in enumerate(iter_video(path)) if i % step == 0), stop))


# -- detection ---------------------------------------------------------------------------------

def test_face_found_in_every_frame_of_the_face_videos(pyfeat_data: Path, detector) -> None:
    for name, step in (("single_face.mp4", 3), ("WolfgangLanger_Pexels.mp4", 8)):
        frames = _frames(pyfeat_data / name, step)
        missing = [i for i, frame in frames if detector.largest(frame) is None]
        assert missing == [], f"{name}: no face found in frames {missing}"


def test_frames_where_the_face_leaves_are_marked(pyfeat_data: Path, detector) -> None:
    found = {i: detector.largest(f) is not None
             for i, f in _frames(pyfeat_data / "face_noface.mov", 8)}
    assert all(found[i] for i in range(0, 65, 8))  # the man is there for the first 2.5 s
    # checked by eye: a cut to black at frame 72, then a cartoon sky without a face
    assert not any(found[i] for i in range(72, 169, 8))


def test_no_face_video_gives_a_no_face_record(pyfeat_data: Path) -> None:
    analyzer = FaceAnalyzer(parts=())
    records = [analyzer.analyze(f) for _, f in _frames(pyfeat_data / "no_face.mp4", 19)]
    assert len(records) == 5 and not any(r.has_face for r in records)
    assert all(np.isnan(r.landmarks).all() and r.num_faces == 0 for r in records)


# -- 3DMM fitting ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def woman_fits(pyfeat_data: Path, detector, fitter) -> dict[int, tuple]:
    """(face, fit) of every 16th frame of the woman's video."""
    fits = {}
    for index, frame in _frames(pyfeat_data / "WolfgangLanger_Pexels.mp4", 16):
        face = detector.largest(frame)
        fits[index] = (face, fitter.fit(face.landmarks, frame.shape[1], frame.shape[0]))
    return fits


def test_fit_reprojects_the_landmarks(woman_fits) -> None:
    errors = [fit.reprojection_iod for _, fit in woman_fits.values()]
    print(f"\nmean landmark reprojection error {100 * np.mean(errors):.2f}% of the "
          f"inter-ocular distance over {len(errors)} frames (max {100 * max(errors):.2f}%)")
    assert np.mean(errors) < 0.07 and max(errors) < 0.10


def test_yaw_follows_the_head_turn(woman_fits) -> None:
    # checked by eye: at frame 160 she looks toward image left, at 368 toward image right
    assert woman_fits[160][1].yaw == pytest.approx(-14.6, abs=4)
    assert woman_fits[368][1].yaw == pytest.approx(14.6, abs=4)
    # independent cue on every frame: the nose tip's offset from the outer eye corners' midpoint
    offsets, yaws = [], []
    for face, fit in woman_fits.values():
        points = face.landmarks
        eye_mid = (points[36] + points[45]) / 2
        offsets.append((points[30][0] - eye_mid[0]) / np.linalg.norm(points[45] - points[36]))
        yaws.append(fit.yaw)
    assert np.corrcoef(offsets, yaws)[0, 1] > 0.8


def test_canonical_meshes(woman_fits, fitter) -> None:
    _, fit = woman_fits[368]
    model = fitter.model
    neutral, expressive = fit.neutral_mesh(model), fit.expressive_mesh(model)
    assert neutral.shape == (model.num_vertices, 3)
    expected = model.mean + model.identity_basis @ fit.identity.astype(np.float64)
    assert np.allclose(neutral, expected, atol=1e-3)
    offset = model.expression_basis @ fit.expression.astype(np.float64)
    assert np.allclose(expressive - neutral, offset, atol=1e-3)
    assert np.abs(offset).max() > 0.5  # she smiles: the expression moves vertices (mm)


def test_shared_identity_per_clip(woman_fits, fitter) -> None:
    faces = [woman_fits[i][0] for i in (0, 16, 32)]
    fits = fitter.fit_clip([f.landmarks for f in faces], 640, 360)
    assert all(np.array_equal(fits[0].identity, f.identity) for f in fits)
    assert all(f.reprojection_iod < 0.1 for f in fits)


# -- analysis cache ----------------------------------------------------------------------------

def test_analysis_cache_hits_and_repairs(pyfeat_data: Path, tmp_path: Path) -> None:
    _, frame = _frames(pyfeat_data / "single_face.mp4", 1, 1)[0]
    analyzer = FaceAnalyzer(parts=("fit",), cache=tmp_path, fitter=Fitter())
    first = analyzer.analyze(frame)
    second = analyzer.analyze(frame)
    assert analyzer.cache.hits == 1 and analyzer.cache.misses == 1
    assert first.to_dict() == second.to_dict() and first.has_face
    key = analyzer.cache.key(frame, analyzer.backend)
    analyzer.cache.path(key).write_bytes(b"torn")
    assert analyzer.analyze(frame).to_dict() == first.to_dict()  # recomputed, rewritten
    assert analyzer.cache.misses == 2


# -- rasterizer --------------------------------------------------------------------------------

def test_single_triangle_coverage_and_interpolated_attribute() -> None:
    size = 16
    # right triangle with legs along the top and left borders; a pixel is covered when its
    # centre is inside or on an edge: x + y <= 16
    screen = torch.tensor([[0.0, 0.0, 1.0], [16.0, 0.0, 1.0], [0.0, 16.0, 1.0]])
    faces = torch.tensor([[0, 1, 2]])
    fragments = raster.rasterize(screen, faces, size, size)
    centres_y, centres_x = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5,
                                          indexing="ij")
    inside = centres_x + centres_y <= 16
    assert torch.equal(fragments.mask[0], inside)
    assert int(inside.sum()) == 16 * 17 / 2  # closed form: i + j <= 15 for pixel (i, j)
    # an attribute linear in x, y is interpolated exactly at every covered pixel centre
    values = raster.interpolate(screen[:, :2] @ torch.tensor([[2.0], [-1.0]]), fragments, faces)
    expected = 2 * centres_x - centres_y
    assert torch.allclose(values[0, ..., 0][inside], expected[inside], atol=1e-4)
    assert (values[0, ..., 0][~inside] == 0).all()


def _plane(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    corners = torch.tensor([[0.0, 0.0], [size, 0.0], [size, size], [0.0, size]])
    return corners, torch.tensor([[0, 1, 2], [0, 2, 3]])


def test_orthographic_plane_depth_is_the_plane_equation() -> None:
    size = 24
    corners, faces = _plane(size)
    depth = 5.0 + 0.25 * corners[:, 0] - 0.1 * corners[:, 1]
    fragments = raster.rasterize(torch.cat([corners, depth[:, None]], 1), faces, size, size)
    ys, xs = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    assert fragments.mask.all()
    assert torch.allclose(fragments.depth[0], 5.0 + 0.25 * xs - 0.1 * ys, atol=1e-4)


def test_pinhole_tilted_plane_depth_is_perspective_correct() -> None:
    size, focal, z0, slope = 32, 40.0, 10.0, 0.3
    k = torch.tensor([[focal, 0.0, size / 2], [0.0, focal, size / 2], [0.0, 0.0, 1.0]])
    # camera-space plane Z = z0 + slope * X, spanning more than the view
    pixels = torch.tensor([[-4.0, -4.0], [size + 4, -4.0], [size + 4, size + 4], [-4.0, size + 4]])
    rays = (pixels - size / 2) / focal  # X/Z, Y/Z
    z = z0 / (1 - slope * rays[:, 0])
    points = torch.cat([rays * z[:, None], z[:, None]], 1)
    fragments = raster.rasterize(raster.pinhole(points, k), torch.tensor([[0, 1, 2], [0, 2, 3]]),
                                 size, size, perspective=True)
    ys, xs = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    expected = z0 / (1 - slope * (xs - size / 2) / focal)  # ray-plane intersection
    assert fragments.mask.all()
    assert torch.allclose(fragments.depth[0], expected, rtol=1e-4)
    # linear interpolation in screen space would be visibly wrong here
    assert (expected.max() - expected.min()) > 2.0


def test_nearer_triangle_wins() -> None:
    corners, faces = _plane(8)
    far = torch.cat([corners, torch.full((4, 1), 9.0)], 1)
    near = torch.cat([corners, torch.full((4, 1), 2.0)], 1)
    fragments = raster.rasterize(torch.cat([far, near]), torch.cat([faces, faces + 4]), 8, 8)
    assert (fragments.depth == 2.0).all() and (fragments.face_index >= 2).all()


def test_secc_of_the_mean_shape_is_left_right_symmetric(fitter) -> None:
    from thbench.facegeom.secc import render_secc

    model = fitter.model
    secc = render_secc(np.zeros(model.num_identity), np.zeros(model.num_expression), 128, model)
    mask = secc.sum(0) > 0
    mirrored, mirrored_mask = secc.flip(-1), mask.flip(-1)
    both = mask & mirrored_mask
    assert both.sum() / (mask | mirrored_mask).sum() > 0.97
    # x colour mirrors (c -> 1 - c), y and z colours are equal on mirrored pixels
    assert (secc[0][both] - (1 - mirrored[0][both])).abs().mean() < 0.02
    assert (secc[1:][:, both] - mirrored[1:][:, both]).abs().mean() < 0.02
    # the eye regions are holes in the map
    eyes = model.eye_mask
    assert 0 < eyes.sum() < 0.1 * model.num_vertices


# -- BFM loader --------------------------------------------------------------------------------

def test_bfm_loader_on_a_file_of_the_same_structure(tmp_path: Path) -> None:
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    vertices = 70
    mean = rng.normal(size=(vertices, 3)) + [10.0, -5.0, 2.0]
    savemat(tmp_path / "BFM_model_front.mat", {
        "meanshape": mean.reshape(1, -1),
        "idBase": rng.normal(size=(3 * vertices, 80)),
        "exBase": rng.normal(size=(3 * vertices, 64)),
        "tri": np.array([[1, 2, 3], [2, 3, 4]]),
        "keypoints": np.arange(1, 69).reshape(1, 68),
    })
    model = load_bfm(tmp_path / "BFM_model_front.mat")
    assert (model.num_vertices, model.num_identity, model.num_expression) == (70, 80, 64)
    assert np.allclose(model.mean, mean - mean.mean(0), atol=1e-5)  # recentred, as Deep3D
    assert model.triangles.tolist() == [[0, 1, 2], [1, 2, 3]]  # 1-based -> 0-based
    assert model.landmark_vertices[0] == 0 and model.landmark_vertices[-1] == 67
    identity = rng.normal(size=80)
    shifted = model.shape(identity)
    assert np.allclose(shifted - model.mean, model.identity_basis @ identity, atol=1e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_rasterizer_equals_cpu() -> None:
    n = 24
    ys, xs = torch.meshgrid(torch.linspace(8, 120, n), torch.linspace(8, 120, n), indexing="ij")
    vertices = torch.stack([xs, ys, torch.zeros_like(xs)], -1).reshape(-1, 3)
    quads = [(i * n + j) for i in range(n - 1) for j in range(n - 1)]
    faces = torch.tensor([t for a in quads for t in ([a, a + 1, a + n], [a + 1, a + n + 1, a + n])])
    generator = torch.Generator().manual_seed(0)
    batch = vertices[None].repeat(3, 1, 1)
    batch[..., :2] += torch.randn(3, len(vertices), 2, generator=generator)
    batch[..., 2] = torch.rand(3, len(vertices), generator=generator) * 10 + 1
    cpu = raster.rasterize(batch, faces, 128, 128)
    gpu = raster.rasterize(batch.cuda(), faces.cuda(), 128, 128)
    assert torch.equal(cpu.face_index, gpu.face_index.cpu())
    assert torch.allclose(cpu.depth, gpu.depth.cpu(), atol=1e-4)
    assert torch.allclose(cpu.bary, gpu.bary.cpu(), atol=1e-5)


def test_identity_from_stable_landmarks_ignores_the_jaw_and_inner_mouth(pyfeat_data) -> None:
    """The speech-robust identity is fitted to points 17-59 only: moving the jaw line and the
    inner mouth (as speech does) leaves it unchanged, while pose and expression still come
    from all 68 points."""
    pytest.importorskip("eos")
    from thbench.facegeom.fitting import STABLE_IDENTITY_LANDMARKS

    frame = next(iter_video(pyfeat_data / "single_face.mp4"))
    points = FaceDetector().largest(frame).landmarks.astype(np.float64)
    fitter = Fitter(identity_landmarks=STABLE_IDENTITY_LANDMARKS)
    assert "identity_from=17-59" in fitter.backend and "identity_from" not in Fitter().backend
    opened = points.copy()
    opened[list(range(3, 14)) + list(range(60, 68)), 1] += 12.0  # jaw and inner mouth drop
    base, moved = fitter.fit(points, frame.shape[1], frame.shape[0]), fitter.fit(
        opened, frame.shape[1], frame.shape[0])
    assert np.allclose(base.identity, moved.identity, atol=1e-5)
    plain = Fitter()
    assert not np.allclose(plain.fit(points, frame.shape[1], frame.shape[0]).identity,
                           plain.fit(opened, frame.shape[1], frame.shape[0]).identity, atol=1e-3)
    assert not np.allclose(base.expression, moved.expression, atol=1e-4)
