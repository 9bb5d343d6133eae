"""Metric registry: ``build_metrics(names, options)`` -> ready metric objects.

Every metric is a small object (``update``/``compute``/``reset``) with ``name``,
``higher_is_better``, ``protocols``, ``scope`` (``"pair"`` or ``"set"``), ``backend`` and
``available()`` (empty string when it can run, else the reason and the fix). Modules are
imported lazily, so asking for ``psnr`` does not import ``lpips``. Definitions: docs/metrics.md.

``options`` maps a metric name to keyword arguments for its constructor, e.g.
``{"lpips": {"net": "vgg"}, "csim": {"backend": "arcface"}}``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import Any

from thbench.eval.metrics.base import (
    FrameBatch,
    FrameMeanMetric,
    Metric,
    MetricValue,
)

REGISTRY: dict[str, str] = {
    "psnr": "thbench.eval.metrics.image:PSNR",
    "ssim": "thbench.eval.metrics.image:SSIM",
    "l1": "thbench.eval.metrics.image:L1",
    "lpips": "thbench.eval.metrics.lpips_metric:LPIPS",
    "fid": "thbench.eval.metrics.fid:FID",
    "csim": "thbench.eval.metrics.identity:CSIM",
    "aed_identity": "thbench.eval.metrics.identity:AEDIdentity",
    "aed_fomm": "thbench.eval.metrics.identity:AEDFomm",
    "akd": "thbench.eval.metrics.landmarks:AKD",
    "akd_fomm": "thbench.eval.metrics.landmarks:AKDFomm",
    "mkr": "thbench.eval.metrics.landmarks:MKR",
    "no_face": "thbench.eval.metrics.landmarks:NoFace",
    "aed_3dmm": "thbench.eval.metrics.morphable:AED3DMM",
    "apd": "thbench.eval.metrics.morphable:APD",
    "avd_s": "thbench.eval.metrics.morphable:AVDSource",
    "avd_d": "thbench.eval.metrics.morphable:AVDDriving",
    "avd_share": "thbench.eval.metrics.morphable:AVDShare",
    "kid": "thbench.eval.metrics.fid:KID",
}
"""Metric name -> ``"module:Class"``; the class takes the name's options as keyword arguments."""

DEFAULT_METRICS: tuple[str, ...] = tuple(REGISTRY)


def metric_class(name: str) -> type[Metric]:
    if name not in REGISTRY:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(REGISTRY)}")
    module, _, attribute = REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module), attribute)


def ranking(name: str) -> bool:
    """Whether metric ``name`` may rank and bold methods (False: a paper-compatible variant,
    shown with its paper's own frame rules, never bold)."""
    return metric_class(name).ranking


def build_metrics(
    names: Iterable[str] | None = None, options: Mapping[str, Mapping[str, Any]] | None = None,
    device: str | None = None,
) -> list[Metric]:
    """Instantiate the named metrics (all registered ones when ``names`` is None), in order.

    ``device`` (the run's) goes to every metric whose constructor takes one (LPIPS, FID's
    Inception) unless its options name a device."""
    options = options or {}
    unknown = set(options) - set(REGISTRY)
    if unknown:
        raise KeyError(
            f"options for unknown metrics {sorted(unknown)}; known: {', '.join(REGISTRY)}"
        )
    names = list(DEFAULT_METRICS if names is None else names)
    built = []
    for name in names:
        cls, kwargs = metric_class(name), dict(options.get(name, {}))
        if device is not None and "device" not in kwargs and _takes_device(cls):
            kwargs["device"] = device
        built.append(cls(**kwargs))
    return built


def _takes_device(cls: type) -> bool:
    import inspect

    return "device" in inspect.signature(cls).parameters


__all__ = [
    "DEFAULT_METRICS",
    "REGISTRY",
    "FrameBatch",
    "FrameMeanMetric",
    "Metric",
    "MetricValue",
    "build_metrics",
    "metric_class",
    "ranking",
]
