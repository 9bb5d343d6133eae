"""The project installs under one name, ``thbench``, so it shares an environment with Hugging
Face ``datasets`` (and anything else owning a bare ``datasets``, ``eval`` or ``reports``): both
are installed into one fresh environment, both import, a benchmark command runs from the
installed wheel, and uninstalling the project leaves ``datasets`` whole."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ours = ("core", "facegeom", "training", "baselines", "hidenerf", "eval", "datasets", "reports")


def _pip(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True,
                          timeout=timeout)


def _environment(folder: Path) -> tuple[Path, Path]:
    """A fresh virtual environment whose only packages besides its own are this test run's
    dependencies (torch, the face stack), seen through a folder of links that leaves the
    project itself out; returns its interpreter and its site-packages."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder / "env")],
                   check=True, timeout=120)
    python = folder / "env" / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; "
                                "print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    deps = folder / "deps"
    deps.mkdir()
    for folder in (Path(p) for p in sys.path if p.endswith("site-packages")):
        for entry in folder.iterdir():
            skip = entry.name.startswith(("talkinghead_bench", "__editable__", "thbench"))
            if not skip and not (deps / entry.name).exists():
                (deps / entry.name).symlink_to(entry)
    (site / "test-deps.pth").write_text(f"{deps}\n")
    return python, site


def test_installs_beside_hugging_face_datasets(mini_dataset, run_config, tmp_path: Path) -> None:
    python, site = _environment(tmp_path)
    hf = _pip("--python", str(python), "install", "--quiet", "datasets")
    if hf.returncode != 0:
        pytest.skip(f"Hugging Face datasets cannot be installed here: {hf.stderr[-300:]}")
    source = tmp_path / "source"  # a copy: building in place would leave build/ in the checkout
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".nox", "runs", "build", "*.egg-info", "__pycache__", ".*_cache"))
    wheel = _pip("wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w",
                 str(tmp_path / "wheel"), str(source))
    assert wheel.returncode == 0, wheel.stderr[-2000:]
    installed = _pip("--python", str(python), "install", "--quiet", "--no-deps",
                     *map(str, (tmp_path / "wheel").glob("*.whl")))
    assert installed.returncode == 0, installed.stderr[-2000:]

    assert (site / "datasets" / "arrow_dataset.py").is_file()  # Hugging Face's, untouched
    assert all((site / "thbench" / name / "__init__.py").is_file() for name in ours)
    assert not any((site / name).exists() for name in ours if name != "datasets")

    env = {**os.environ, "THB_PROGRESS": "0"}
    env.pop("PYTHONPATH", None)
    both = subprocess.run(
        [str(python), "-c", "import datasets, thbench.datasets.config as ours; "
         "print(datasets.Dataset.from_dict({'a': [1, 2, 3]}).num_rows, datasets.__file__, "
         "ours.__file__)"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert both.returncode == 0, both.stderr[-2000:]
    rows, hf_file, our_file = both.stdout.split()
    assert rows == "3" and hf_file.startswith(str(site / "datasets"))
    assert our_file.startswith(str(site / "thbench" / "datasets"))

    config = run_config(tmp_path / "run", "coexist", mini_dataset.root, ["l1"], ("same-identity",))
    run = subprocess.run([str(python), "-m", "thbench", "eval", "run", "--config", str(config)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    with (tmp_path / "run" / "runs" / "coexist" / "leaderboard.csv").open() as handle:
        l1 = {r["method"]: float(r["value"]) for r in csv.DictReader(handle)
              if r["metric"] == "l1"}
    assert l1["driving-copy"] == 0.0 and l1["source-copy"] > 0.01

    removed = _pip("--python", str(python), "uninstall", "--yes", "talkinghead-bench")
    assert removed.returncode == 0, removed.stderr[-2000:]
    assert not (site / "thbench").exists()
    after = subprocess.run([str(python), "-c", "import datasets; print(datasets.__version__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert after.returncode == 0, after.stderr[-2000:]
