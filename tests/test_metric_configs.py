"""Which face backends the shipped run configs choose: paper-faithful for VoxCeleb, dlib offline."""

from __future__ import annotations

from pathlib import Path

from thbench.eval.config import load_config
from thbench.eval.metrics import build_metrics

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _metrics(name: str) -> dict:
    config = load_config(CONFIGS / name)
    return {m.name: m for m in build_metrics(config.metrics, config.metric_options)}


def test_voxceleb_config_names_arcface_and_fan() -> None:
    metrics = _metrics("vox1-test.toml")
    for name in ("csim", "aed_identity"):
        assert metrics[name].parts == ("arcface",), name
    assert metrics["aed_fomm"].parts == ("arcface_frame",)  # whole frames, as cmp.py
    for name in ("akd", "akd_fomm", "mkr"):
        assert metrics[name].landmarks == "fan" and metrics[name].parts == ("fan",), name
    assert {"no_face", "avd_s", "avd_d", "avd_share", "kid"} <= set(metrics)


def test_offline_default_keeps_dlib() -> None:
    metrics = _metrics("default.toml")
    assert metrics["csim"].parts == ("dlib",) and metrics["akd"].landmarks == "dlib"
    assert "dlib" in (CONFIGS / "default.toml").read_text().split("metrics =")[0]
