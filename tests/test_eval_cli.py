"""``python -m thbench eval run`` and ``score`` from config files, one-line errors, the embedded
default."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from thbench.cli.eval import main

REPO = Path(__file__).resolve().parents[1]


def _leaderboard(path: Path) -> dict[tuple[str, str], float]:
    with path.open() as handle:
        return {(r["method"], r["metric"]): float(r["value"]) for r in csv.DictReader(handle)}


def test_run_then_score_existing_outputs(mini_dataset, run_config, tmp_path: Path,
                                         capsys) -> None:
    config = run_config(tmp_path, "cli", mini_dataset.root, ["psnr", "l1"], ("same-identity",),
                        driving_label="driving copy")
    assert main(["run", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    run_dir = tmp_path / "runs" / "cli"
    assert f"tables: {run_dir / 'leaderboard.csv'}, " in out and str(run_dir / "tables.md") in out
    board = _leaderboard(run_dir / "leaderboard.csv")
    assert board[("driving copy", "l1")] == 0.0 and board[("source-copy", "l1")] > 0.01
    tables = (run_dir / "tables.md").read_text()
    # a copy baseline is a bound: in its own band, never bold
    assert "| driving copy | 58.92 ± 0.00 | 0.0000 ± 0.0000 |" in tables
    assert "**" not in tables
    assert "(per-pair average)" in tables

    outputs = run_dir / "outputs" / "source-copy" / "mini" / "same-identity"
    score = ["score", "--config", str(config), "--outputs", str(outputs), "--method", "mine",
             "--protocol", "same-identity"]
    assert main(score) == 2  # the run folder has results: only with --append
    assert "run folder already holds results; pass --append" in capsys.readouterr().err
    assert main([*score, "--append"]) == 0
    assert "mine: 3 pairs scored, 0 already scored, 0 of 3 pairs missing" in \
        capsys.readouterr().out
    board = _leaderboard(run_dir / "leaderboard.csv")
    assert board[("mine", "l1")] == board[("source-copy", "l1")]


@pytest.mark.parametrize("content, message", [
    ("name = [", "invalid TOML"),
    ('name = "x"\ncolour = "red"', "unknown key 'colour' in the top level"),
])
def test_bad_config_is_one_line(tmp_path: Path, capsys, content: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content)
    assert main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {path}") and message in err and "\n" not in err


def test_unknown_method_is_one_line(mini_dataset, run_config, tmp_path: Path, capsys) -> None:
    config = run_config(tmp_path, "cli", mini_dataset.root, ["l1"])
    config.write_text(config.read_text().replace('name = "source-copy"', 'name = "nope"'))
    assert main(["run", "--config", str(config)]) == 2
    assert "unknown method 'nope'" in capsys.readouterr().err


@pytest.mark.slow
def test_embedded_default_end_to_end(tmp_path: Path) -> None:
    """The README's benchmark command on the embedded default, in a subprocess."""
    result = subprocess.run(
        [sys.executable, "-m", "thbench", "eval", "run", "--config", "configs/default.toml",
         "--output-dir", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, env={**_env(), "THB_PROGRESS": "0"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    board = _leaderboard(tmp_path / "default" / "leaderboard.csv")
    assert board[("driving-copy", "l1")] == 0.0
    assert board[("source-copy", "psnr")] < board[("driving-copy", "psnr")]


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


def test_settings_from_the_command_line(mini_dataset, run_config, tmp_path: Path,
                                        capsys) -> None:
    """``--set`` changes the dataset root, a top-level key and a method's field; run.json keeps
    the assignments; a dataset folder that does not exist is caught before any work."""
    import json

    config = run_config(tmp_path, "cli-set", tmp_path / "elsewhere", ["l1"], ("same-identity",))
    assert main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert "elsewhere: dataset folder of 'mini' not found; fix: " in err and "\n" not in err
    settings = [f"dataset.root={mini_dataset.root}", "seed=7",
                'methods.driving-copy.label="truth"']
    assert main(["run", "--config", str(config), *(f"--set={s}" for s in settings)]) == 0
    record = json.loads((tmp_path / "runs" / "cli-set" / "run.json").read_text())
    assert record["config"]["settings"] == settings
    assert record["config"]["seed"] == 7
    assert record["dataset_root"] == str(mini_dataset.root)
    board = _leaderboard(tmp_path / "runs" / "cli-set" / "leaderboard.csv")
    assert board[("truth", "l1")] == 0.0
    assert main(["run", "--config", str(config), "--set", "methods.nobody.checkpoint=x"]) == 2
    assert "no method labelled 'nobody'" in capsys.readouterr().err


def test_sample_set_cache_folder_is_named_by_its_settings(monkeypatch, tmp_path: Path) -> None:
    """The embedded default's prepared clips are found again under the same name (a fresh run
    once failed building this name), and another setting gets its own folder."""
    from dataclasses import replace

    from thbench.datasets.config import sample_set_root
    from thbench.datasets.sample import SAMPLE_OPTIONS

    monkeypatch.setenv("THB_CACHE_DIR", str(tmp_path))
    root = sample_set_root(SAMPLE_OPTIONS, 1, 0)
    assert root == tmp_path / "datasets" / "sample-v2-256-s4-l16-c1-seed0"
    assert sample_set_root(replace(SAMPLE_OPTIONS, fps=25.0), 1, 0).name.endswith("-fps25")
