"""LPIPS (Zhang et al. 2018) with the ``lpips`` package: AlexNet trunk by default, VGG16 selectable.

The package ships only the linear heads (``lpips/weights/v0.1/{alex,vgg}.pth``); the trunk is
torchvision's ImageNet network, which the package would download. Offline route used here: build
``lpips.LPIPS(net=..., pnet_rand=True, pretrained=True)`` (random trunk, shipped heads) and load
the torchvision ``features.{i}`` weights from the asset file into ``net.slice{k}.{i}``. The result
is the package's own network with the package's own weights, so numbers equal
``lpips.LPIPS(net=...)`` with the trunk in the torch hub cache.

Per frame, generated vs ground truth, inputs mapped from [0, 1] to [-1, 1]; lower is better.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import torch

from thbench.datasets.protocols import RECONSTRUCTION
from thbench.eval.metrics.base import FrameBatch, FrameMeanMetric, WeightsFileMetric

SLICES: dict[str, tuple[tuple[int, int], ...]] = {
    "alex": ((0, 2), (2, 5), (5, 8), (8, 10), (10, 12)),
    "vgg": ((0, 4), (4, 9), (9, 16), (16, 23), (23, 30)),
}
ASSETS = {"alex": "lpips_alexnet", "vgg": "lpips_vgg16"}


def trunk_state_dict(
    torchvision_state: dict[str, torch.Tensor], net: str
) -> dict[str, torch.Tensor]:
    """Map torchvision ``features.{i}.*`` keys to lpips' ``net.slice{k}.{i}.*`` keys."""
    mapped = {}
    for key, value in torchvision_state.items():
        parts = key.split(".")
        if parts[0] != "features":
            continue
        index = int(parts[1])
        for k, (start, stop) in enumerate(SLICES[net], start=1):
            if start <= index < stop:
                mapped[".".join(["net", f"slice{k}", *parts[1:]])] = value
                break
    return mapped


def build_lpips(net: str, weights: str | Path) -> torch.nn.Module:
    """The ``lpips`` package's LPIPS network with the trunk loaded from a torchvision file."""
    import lpips

    if net not in SLICES:
        raise ValueError(f"lpips net must be one of {sorted(SLICES)}, got {net!r}")
    with contextlib.redirect_stdout(io.StringIO()), _quiet_torchvision():
        model = lpips.LPIPS(net=net, pnet_rand=True, pretrained=True, verbose=False)
    state = torch.load(weights, map_location="cpu", weights_only=True)
    trunk = trunk_state_dict(state, net)
    expected = {k for k in model.state_dict() if k.startswith("net.")}
    if set(trunk) != expected:
        missing, extra = sorted(expected - set(trunk)), sorted(set(trunk) - expected)
        raise ValueError(
            f"{weights}: not a torchvision {net} state dict (missing {missing[:3]}, "
            f"unexpected {extra[:3]})"
        )
    model.load_state_dict(trunk, strict=False)
    return model.eval().requires_grad_(False)


@contextlib.contextmanager
def _quiet_torchvision():
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Arguments other than a weight enum")
        warnings.filterwarnings("ignore", message="The parameter 'pretrained' is deprecated")
        yield


class LPIPS(WeightsFileMetric, FrameMeanMetric):
    """Learned perceptual distance to the ground truth (lower is better)."""

    name = "lpips"
    higher_is_better = False
    protocols = RECONSTRUCTION

    def __init__(
        self,
        net: str = "alex",
        weights: str | Path | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 16,
    ) -> None:
        if net not in SLICES:
            raise ValueError(f"lpips net must be one of {sorted(SLICES)}, got {net!r}")
        self.net, self.weights, self.device, self.batch_size = net, weights, device, batch_size
        self._model: torch.nn.Module | None = None
        super().__init__()

    @property
    def backend(self) -> str:
        from importlib.metadata import version

        trunk = Path(self.weights).name if self.weights else _asset_filename(ASSETS[self.net])
        return f"lpips-{version('lpips')}/{self.net} v0.1 (trunk {trunk})"

    def asset(self) -> str:
        return ASSETS[self.net]

    def model(self) -> torch.nn.Module:
        if self._model is None:
            self._model = build_lpips(self.net, self.weights_path()).to(self.device)
        return self._model

    @torch.no_grad()
    def distance(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-image LPIPS (B,) of (B, 3, H, W) images in [0, 1]."""
        model, out = self.model(), []
        for start in range(0, len(x), self.batch_size):
            a = x[start : start + self.batch_size].to(self.device, torch.float32) * 2 - 1
            b = y[start : start + self.batch_size].to(self.device, torch.float32) * 2 - 1
            out.append(model(a, b).flatten().double().cpu())
        return torch.cat(out)

    def per_frame(self, batch: FrameBatch) -> torch.Tensor:
        if batch.ground_truth is None:
            raise ValueError("lpips needs ground-truth frames (same-identity pairs only)")
        return self.distance(batch.generated, batch.ground_truth)


def _asset_filename(name: str) -> str:
    from thbench.core import assets

    return assets.get(name).filename
