"""LPIPS: our offline loader equals the lpips package with the same trunk weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from thbench.eval.metrics import build_metrics
from thbench.eval.metrics.base import FrameBatch
from thbench.eval.metrics.lpips_metric import LPIPS, trunk_state_dict

HUB_NAMES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}


def _random_torchvision_weights(net: str, folder: Path) -> Path:
    """A seeded random torchvision state dict under the hub file name.

    The classifier is stored as a stride-0 view of one zero (a few bytes on disk): the trunk is
    all LPIPS uses, and torchvision's strict load only needs the shapes.
    """
    torch.manual_seed(0)
    features = (
        torchvision.models.alexnet if net == "alex" else torchvision.models.vgg16
    )().features
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    shapes = {
        "alex": [(4096, 9216), (4096,), (4096, 4096), (4096,), (1000, 4096), (1000,)],
        "vgg": [(4096, 25088), (4096,), (4096, 4096), (4096,), (1000, 4096), (1000,)],
    }[net]
    for (index, kind), shape in zip(
        [(i, k) for i in ((1, 4, 6) if net == "alex" else (0, 3, 6)) for k in ("weight", "bias")],
        shapes,
        strict=True,
    ):
        state[f"classifier.{index}.{kind}"] = torch.zeros(1).expand(shape)
    path = folder / "hub" / "checkpoints" / HUB_NAMES[net]
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def _frames() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    x = torch.rand(3, 3, 64, 64, generator=g)
    y = (x + 0.2 * torch.rand(3, 3, 64, 64, generator=g)).clamp(0, 1)
    return x, y


@pytest.mark.parametrize("net", ["alex", pytest.param("vgg", marks=pytest.mark.slow)])
def test_lpips_equals_package_with_same_trunk(net: str, tmp_path: Path, monkeypatch) -> None:
    import lpips

    path = _random_torchvision_weights(net, tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    reference = lpips.LPIPS(net=net, verbose=False).eval()  # trunk from $TORCH_HOME/hub/checkpoints

    metric = LPIPS(net=net, weights=path)
    assert metric.available() == ""
    x, y = _frames()
    ours = metric.distance(x, y)
    with torch.no_grad():
        expected = reference(x, y, normalize=True).flatten().double()
    assert torch.allclose(ours, expected, atol=1e-6, rtol=0), (ours, expected)
    assert (ours > 0).all()

    batch = FrameBatch(generated=x, driving=y, source=y[0], ground_truth=y)
    metric.update(batch)
    result = metric.compute()
    assert result.frames == 3
    assert result.value == pytest.approx(float(expected.mean()), abs=1e-6)
    assert metric.distance(x, x).abs().max() == 0
    assert metric.backend.startswith(f"lpips-0.1.4/{net} v0.1")


def test_trunk_mapping_covers_every_slice() -> None:
    state = {f"features.{i}.weight": torch.zeros(1) for i in (0, 3, 6, 8, 10)}
    mapped = trunk_state_dict(state, "alex")
    assert sorted(mapped) == sorted(
        [
            "net.slice1.0.weight",
            "net.slice2.3.weight",
            "net.slice3.6.weight",
            "net.slice4.8.weight",
            "net.slice5.10.weight",
        ]
    )


def test_lpips_skipped_without_asset(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("THB_ASSETS_DIR", str(tmp_path / "offline"))
    monkeypatch.setenv("THB_CACHE_DIR", str(tmp_path / "cache"))
    (metric,) = build_metrics(["lpips"])
    reason = metric.available()
    assert "lpips_alexnet" in reason and "fix:" in reason and "alexnet-owt-7be5be79.pth" in reason
    (vgg,) = build_metrics(["lpips"], {"lpips": {"net": "vgg"}})
    assert "vgg16-397923af.pth" in vgg.available()
    assert metric.scope == "pair" and not metric.higher_is_better


def test_wrong_state_dict_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 11, 11)}, path)
    with pytest.raises(ValueError, match="not a torchvision alex state dict"):
        LPIPS(weights=path).model()
