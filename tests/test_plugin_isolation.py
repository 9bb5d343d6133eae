"""One plug-in never costs a run: a package that fails to import is listed by ``thbench
methods`` with its error and blocks no built-in command, and a method raising an unexpected
exception (here a KeyError on its second pair) becomes that method's error rows while the other
methods' rows stay intact; the run then exits 1 with a one-line summary. All through real
subprocesses, with the packages installed by pip."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

BROKEN = '''
import thbench_needs_this_missing_dependency  # noqa: F401  (the package's own bug)
'''

FLAKY = '''
"""Copies the driving frame, but looks up a key it never set on the second pair it animates."""

import torch

from thbench.core.method import FramewiseMethod


class Flaky(FramewiseMethod):
    name = "flaky"
    pairs_seen = 0

    def setup(self, source: torch.Tensor, driving_first: torch.Tensor) -> None:
        Flaky.pairs_seen += 1
        if Flaky.pairs_seen == 2:
            {}["calibration"]

    def forward_batch(self, driving: torch.Tensor) -> torch.Tensor:
        return driving
'''


@pytest.fixture(scope="module")
def trouble_site(tmp_path_factory: pytest.TempPathFactory, plugin_site) -> Path:
    """A site folder with one package declaring two methods: ``broken`` (its module fails to
    import) and ``flaky`` (a KeyError on its second pair)."""
    return plugin_site(tmp_path_factory.mktemp("trouble"), "trouble-plugin", "0.1",
                       {"broken": BROKEN, "flaky": FLAKY},
                       {"broken": "broken:Broken", "flaky": "flaky:Flaky"})


def _thbench(site: Path, *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = {**os.environ, "THB_PROGRESS": "0", "PYTHONPATH": str(site),
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "thbench", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_a_broken_plugin_leaves_every_built_in_command_working(
        trouble_site: Path, mini_dataset, run_config, pyfeat_data: Path, tmp_path: Path) -> None:
    listing = _thbench(trouble_site, "methods")
    assert listing.returncode == 0, listing.stderr[-2000:]
    assert "broken  [plug-in (trouble-plugin 0.1)]  NOT LOADABLE" in listing.stdout
    assert ("error: plug-in 'broken' (trouble_plugin.broken:Broken, from trouble-plugin): "
            "ModuleNotFoundError: No module named 'thbench_needs_this_missing_dependency'"
            ) in listing.stdout
    assert "fomm  [built-in]  thbench.baselines.fomm:FOMM" in listing.stdout
    assert "flaky  [plug-in (trouble-plugin 0.1)]  trouble_plugin.flaky:Flaky" in listing.stdout
    assert "1 of 8 methods do not load" in listing.stderr
    assert _thbench(trouble_site, "methods", "--strict").returncode == 1

    config = run_config(tmp_path / "eval", "builtin", mini_dataset.root, ["l1"],
                        ("same-identity",))
    run = _thbench(trouble_site, "eval", "run", "--config", str(config))
    assert run.returncode == 0, run.stderr[-2000:]
    assert {r["method"] for r in _rows(tmp_path / "eval" / "runs" / "builtin" / "results.csv")
            } == {"source-copy", "driving-copy"}

    train = tmp_path / "train.toml"
    train.write_text(textwrap.dedent(f"""
        name = "fomm-one-step"
        family = "fomm"
        output_dir = "out"
        [data]
        name = "mini"
        root = "{mini_dataset.root}"
        holdout = 1
        pairs_per_clip = 2
        [optim]
        steps = 1
        batch_size = 1
        [loss]
        perceptual_backend = "l1"
        """))
    trained = _thbench(trouble_site, "train", "--config", str(train))
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert (tmp_path / "out" / "fomm-one-step" / "checkpoint.pth.tar").is_file()

    out = tmp_path / "animated"
    animated = _thbench(trouble_site, "animate", "--method", "driving-copy", "--checkpoint",
                        "random", "--source", str(pyfeat_data / "single_face.jpg"), "--driving",
                        str(pyfeat_data / "single_face.mp4"), "--max-frames", "2", "--out",
                        str(out))
    assert animated.returncode == 0, animated.stderr[-2000:]
    for command in (["metrics", "psnr"], ["datasets", "layouts"], ["eval", "assets", "list"],
                    ["reports", "--help"]):
        result = _thbench(trouble_site, *command)
        assert result.returncode == 0, (command, result.stderr[-2000:])


def test_a_plugin_raising_mid_run_costs_only_its_own_rows(
        trouble_site: Path, mini_dataset, run_config, tmp_path: Path) -> None:
    config = run_config(tmp_path, "isolated", mini_dataset.root, ["l1", "psnr"],
                        ("same-identity",))
    config.write_text(config.read_text() + textwrap.dedent("""
        [[methods]]
        name = "flaky"

        [[methods]]
        name = "broken"
        """))
    result = _thbench(trouble_site, "eval", "run", "--config", str(config))
    assert result.returncode == 1, result.stderr[-2000:]
    summary = result.stderr.strip().splitlines()[-1]
    assert summary.startswith("2 methods failed: flaky (KeyError: 'calibration' in "
                              "same-identity "), summary
    assert "broken (cannot load: plug-in 'broken'" in summary
    assert "method broken: disables method broken" in result.stdout  # the pre-flight block

    rows = _rows(tmp_path / "runs" / "isolated" / "results.csv")
    pairs = {p.pair_id for p in mini_dataset.pairs("same-identity")}
    for method in ("source-copy", "driving-copy"):  # the others finished, every row ok
        mine = [r for r in rows if r["method"] == method]
        assert {r["pair_id"] for r in mine} == pairs and len(mine) == 2 * len(pairs)
        assert all(r["status"] == "ok" for r in mine)
    flaky = [r for r in rows if r["method"] == "flaky"]
    errors = [r for r in flaky if r["status"] == "error"]
    assert len(errors) == 2 and {r["reason"] for r in errors} == {"KeyError: 'calibration'"}
    assert sum(r["status"] == "ok" for r in flaky) == 2 * (len(pairs) - 1)
    assert {r["status"] for r in rows if r["method"] == "broken"} == {"error"}
    assert (tmp_path / "runs" / "isolated" / "leaderboard.csv").is_file()
