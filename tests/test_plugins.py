"""Third-party methods join the benchmark without editing this repository: a package made here
declares a method under the ``thbench.methods`` entry-point group, or a run config names its
class as ``package.module:Class``; ``python -m thbench eval run`` scores it beside
``source-copy``."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

METHOD = '''
"""Half the source image, half the driving frame: a method whose L1 is known in advance."""

import torch

from thbench.core.method import FramewiseMethod


class HalfBlend(FramewiseMethod):
    name = "half-blend"

    def setup(self, source: torch.Tensor, driving_first: torch.Tensor) -> None:
        self.source = source

    def forward_batch(self, driving: torch.Tensor) -> torch.Tensor:
        return 0.5 * self.source.unsqueeze(0) + 0.5 * driving
'''


def _run(config: Path, site: Path | None) -> subprocess.CompletedProcess:
    env = {**os.environ, "THB_PROGRESS": "0"}
    if site is not None:
        env["PYTHONPATH"] = str(site)
    return subprocess.run([sys.executable, "-m", "thbench", "eval", "run", "--config",
                           str(config)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)


def _l1(board: Path) -> dict[str, float]:
    with board.open() as handle:
        return {r["method"]: float(r["value"]) for r in csv.DictReader(handle)
                if r["metric"] == "l1" and r["average"] == "per-pair"}


def test_an_installed_package_adds_a_method(mini_dataset, run_config, plugin_site,
                                            tmp_path: Path) -> None:
    config = run_config(tmp_path / "run", "plugin", mini_dataset.root, ["l1"],
                        ("same-identity",))
    config.write_text(config.read_text() + textwrap.dedent("""
        [[methods]]
        name = "half-blend"

        [[methods]]
        name = "blend_plugin.method:HalfBlend"
        label = "half-blend-by-path"
        """))
    without = _run(config, None)
    assert without.returncode == 2 and "unknown method 'half-blend'" in without.stderr

    site = plugin_site(tmp_path, "blend-plugin", "1.0", {"method": METHOD},
                       {"half-blend": "method:HalfBlend"})
    result = _run(config, site)
    assert result.returncode == 0, result.stderr[-2000:]
    l1 = _l1(tmp_path / "run" / "runs" / "plugin" / "leaderboard.csv")
    # |(s + d) / 2 - d| = |s - d| / 2 per pixel, up to the 8-bit rounding of the saved frames
    assert l1["half-blend"] == pytest.approx(l1["source-copy"] / 2, abs=2e-3)
    assert l1["half-blend-by-path"] == l1["half-blend"]
    assert l1["driving-copy"] == 0.0
    folders = tmp_path / "run" / "runs" / "plugin" / "outputs"
    assert {p.name for p in folders.iterdir()} >= {"half-blend", "half-blend-by-path"}


def test_the_registry_declares_each_family_once() -> None:
    from thbench.core.families import BUILT_IN, available, family, trainable
    from thbench.core.method import Method

    assert trainable() == ["fomm", "fv2v", "hidenerf", "tpsmm"]
    assert available() == sorted(f.name for f in BUILT_IN)
    for entry in BUILT_IN:  # each names a Method whose own name is the family's
        cls = entry.method_class()
        assert issubclass(cls, Method) and cls.name == entry.name
    with pytest.raises(KeyError, match="unknown method 'nope'; known: driving-copy, fomm"):
        family("nope")
    with pytest.raises(ValueError, match="module no_such_package not found"):
        family("no_such_package.method:Thing").method_class()
    with pytest.raises(TypeError, match="pathlib:Path is not a Method subclass"):
        family("pathlib:Path").method_class()
