"""HiDe-NeRF's training critics: the multi-scale discriminator with feature matching (on in the
paper config) and the ArcFace identity loss (skipped, with the reason recorded, without it)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from thbench.hidenerf.config import tiny
from thbench.hidenerf.critics import (
    discriminator_gan_loss,
    feature_matching_loss,
    generator_gan_loss,
    identity_loss,
    load_identity_network,
)
from thbench.hidenerf.losses import HiDeNeRFLossWeights, HiDeNeRFObjective
from thbench.hidenerf.model import HiDeNeRF
from thbench.training.config import load_train_config

REPO = Path(__file__).resolve().parents[1]


def _batch(model: HiDeNeRF, size: int = 64) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    images = {k: torch.rand(2, 3, size, size, generator=gen)
              for k in ("source", "driving", "posed_secc", "source_secc", "driving_secc")}
    cameras = {"source_camera": model.camera(torch.tensor([0.0, 10.0]), 0.0, 0.0),
               "driving_camera": model.camera(torch.tensor([5.0, -10.0]), 3.0, 0.0)}
    boxes = {"mouth_box": torch.tensor([[0.35, 0.6, 0.65, 0.8]] * 2)}
    return images | {k: c.vector() for k, c in cameras.items()} | boxes


def test_lsgan_and_feature_matching_known_answers():
    zeros, ones = torch.zeros(2, 1, 4, 4), torch.ones(2, 1, 4, 4)
    feature = torch.rand(2, 8, 8, 8)
    assert generator_gan_loss([[feature, zeros], [feature, zeros]]).item() == 1.0
    assert generator_gan_loss([[feature, ones]]).item() == 0.0
    assert discriminator_gan_loss([[feature, ones]], [[feature, zeros]]).item() == 0.0
    assert discriminator_gan_loss([[feature, zeros]], [[feature, ones]]).item() == 2.0
    assert feature_matching_loss([[feature, zeros]], [[feature, ones]]).item() == 0.0
    moved = [[feature + 0.5, zeros]]
    assert feature_matching_loss(moved, [[feature, ones]]).item() == pytest.approx(0.5)


def test_paper_config_trains_with_a_multiscale_discriminator_and_feature_matching(
        monkeypatch, tmp_path):
    config = load_train_config(REPO / "configs/train/hidenerf-paper-vox1.toml")
    weights = HiDeNeRFLossWeights.from_dict(config.loss, "paper")
    assert weights.adversarial > 0 and weights.feature_matching > 0 and weights.identity > 0
    model = HiDeNeRF(tiny()).train()
    objective = HiDeNeRFObjective(model, weights, None)
    batch = _batch(model)
    early, _ = objective(batch)  # the adversarial term starts once the mouth is learnt
    assert not {"adversarial", "feature_matching"} & set(early) and "mouth_l1" in early
    objective.steps_seen.fill_(weights.adversarial_start)
    losses, visuals = objective(batch)
    assert {"adversarial", "feature_matching"} <= set(losses)
    scales = objective.discriminator(visuals["output"])
    assert len(scales) == 3
    sizes = [out[-1].shape[-1] for out in scales]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] == 2 * sizes[1]
    objective.discriminator.requires_grad_(False)  # as the Trainer does in the generator step
    sum(losses.values()).backward()
    assert all(p.grad is None for p in objective.discriminator.parameters())
    assert model.decoder.net[0].weight.grad.abs().sum() > 0
    objective.discriminator.requires_grad_(True)
    objective.discriminator_loss(visuals, batch).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all()
               for p in objective.discriminator.parameters())
    with pytest.raises(ValueError, match="feature_matching needs"):
        HiDeNeRFLossWeights.from_dict({"feature_matching": 1.0}, "x")


def test_identity_loss_is_skipped_with_its_reason_without_the_arcface_weights(
        monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("THB_ASSETS_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("THB_CACHE_DIR", str(tmp_path / "cache"))
    with caplog.at_level(logging.WARNING):
        network, backend = load_identity_network(torch.device("cpu"))
    assert network is None and backend.startswith("skipped") and "arcface_r50" in backend
    assert "identity loss skipped" in caplog.text
    model = HiDeNeRF(tiny())
    objective = HiDeNeRFObjective(model, HiDeNeRFLossWeights(identity=0.1), None,
                                  (network, backend))
    losses, _ = objective(_batch(model))
    assert "identity" not in losses and objective.identity_backend == backend


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript ONNX exporter
def test_identity_loss_with_an_arcface_shaped_onnx_network(monkeypatch, tmp_path):
    """A small network with ArcFace's interface (RGB 112 x 112 in [-1, 1] -> 512-d), exported
    to ONNX, stands in for w600k_r50: the loss is 0 for equal faces, positive otherwise, and
    differentiable in the output image."""
    pytest.importorskip("onnx2torch")
    from thbench.core import assets

    torch.manual_seed(0)
    stand_in = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, 4, 1), torch.nn.PReLU(8),
                                   torch.nn.Conv2d(8, 8, 4, 4), torch.nn.Flatten(),
                                   torch.nn.Linear(8 * 7 * 7, 512)).eval()
    path = tmp_path / "w600k_r50.onnx"
    torch.onnx.export(stand_in, (torch.rand(1, 3, 112, 112),), str(path), dynamo=False,
                      opset_version=11, input_names=["input.1"],
                      dynamic_axes={"input.1": {0: "batch"}})
    monkeypatch.setattr(assets, "resolve", lambda name, offline=None: path)
    network, backend = load_identity_network(torch.device("cpu"))
    assert network is not None and "arcface-r50" in backend
    face = torch.rand(2, 3, 128, 128)
    assert identity_loss(network, face, face.clone()).item() == pytest.approx(0.0, abs=1e-5)
    other = torch.rand(2, 3, 128, 128, requires_grad=True)
    loss = identity_loss(network, other, face)
    assert loss.item() > 1e-3
    loss.backward()
    assert other.grad.abs().sum() > 0
    # only the face box matters: changing the border leaves the loss unchanged
    border = face.clone()
    border[..., :20, :] = 0
    assert identity_loss(network, border, face).item() == pytest.approx(0.0, abs=1e-5)
