"""A failure stays with its method: training or set-up that fails becomes that method's error
rows with the reason, the other methods and the reports are still written, the run exits
non-zero naming the failures, and a rerun after the fix runs the method for real. The pre-flight
block names what is missing before any work."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from thbench.cli.eval import main

BROKEN_TRAINING = """
name = "fomm-broken"
family = "fomm"
model = "tiny"
output_dir = "{out}"

[data]
name = "nowhere"
root = "{out}/no-such-dataset"

[optim]
steps = 2
batch_size = 1
"""


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_failed_methods_become_error_rows_and_the_run_goes_on(mini_dataset, run_config,
                                                               tmp_path: Path, capsys,
                                                               caplog) -> None:
    caplog.set_level(logging.INFO, logger="thbench")
    train = tmp_path / "broken-train.toml"
    train.write_text(BROKEN_TRAINING.format(out=tmp_path / "train"))
    checkpoint = tmp_path / "later.pth.tar"
    config = run_config(tmp_path, "failures", mini_dataset.root, ["l1", "psnr"],
                        ("same-identity",))
    config.write_text(config.read_text() + f"""
[[methods]]
name = "fomm"
label = "fomm-missing"
options = {{ checkpoint = "{checkpoint}", config = "tiny" }}

[[methods]]
name = "fomm"
label = "fomm-untrainable"
train = "{train}"
""")
    assert main(["run", "--config", str(config)]) == 1
    captured = capsys.readouterr()
    out = "\n".join(caplog.messages)
    # the pre-flight block comes first and names the missing checkpoint and what it disables
    assert out.index("pre-flight: ") < out.index("source-copy: ")
    assert f"checkpoint {checkpoint}: disables method fomm-missing" in out
    assert "2 methods failed: fomm-missing (set-up failed: " in captured.err
    assert "fomm-untrainable (training failed: " in captured.err

    run_dir = tmp_path / "runs" / "failures"
    board = {(r["method"], r["metric"]): r for r in _rows(run_dir / "leaderboard.csv")}
    assert board[("source-copy", "l1")]["status"] == "ok"
    assert board[("driving-copy", "psnr")]["status"] == "ok"
    for label in ("fomm-missing", "fomm-untrainable"):
        for metric in ("l1", "psnr"):
            assert board[(label, metric)]["status"] == "error"
    assert str(checkpoint) in board[("fomm-missing", "l1")]["reason"]
    assert "no-such-dataset" in board[("fomm-untrainable", "l1")]["reason"]
    tables = (run_dir / "tables.md").read_text()
    assert "| fomm-missing |" in tables and "| source-copy |" in tables

    # the fix: a real checkpoint at that path; the rerun builds the method and scores it
    from thbench.core.families import build

    build("fomm", config="tiny", allow_random_init=True).save(checkpoint)
    assert main(["run", "--config", str(config)]) == 1  # the untrainable one still fails
    board = {(r["method"], r["metric"]): r for r in _rows(run_dir / "leaderboard.csv")}
    assert board[("fomm-missing", "l1")]["status"] == "ok"
    assert board[("fomm-missing", "l1")]["n_errors"] == "0"
    row = board[("fomm-missing", "l1")]
    assert int(row["n_pairs"]) + int(row["n_skipped"]) == len(mini_dataset.pairs("same-identity"))
    assert "1 method failed: fomm-untrainable" in capsys.readouterr().err


def test_preflight_lists_each_missing_asset_once_with_what_it_disables(
        mini_dataset, run_config, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="thbench")
    config = run_config(tmp_path, "preflight", mini_dataset.root, ["l1", "lpips", "fid"],
                        ("same-identity",))
    assert main(["run", "--offline", "--config", str(config)]) == 0
    out = "\n".join(caplog.messages)
    block = out[out.index("pre-flight: "):out.index("source-copy: ")]
    assert block.startswith("pre-flight: 2 missing")
    assert "asset lpips_alexnet (alexnet-owt-7be5be79.pth): disables metric lpips" in block
    assert "asset fid_inception (pt_inception-2015-12-05-6726825d.pth): disables metric fid" \
        in block
    assert block.count("fix: run `python -m thbench eval assets download") == 2
    assert "THB_OFFLINE is set" in block


def test_preflight_names_what_a_training_recipe_needs(tmp_path: Path) -> None:
    """The official recipes' extra inputs: TPSMM's AVD stage starts from the first stage's
    export (init_from), face-vid2vid's head-pose loss needs Hopenet."""
    from thbench.eval.config import MethodConfig
    from thbench.eval.preflight import Findings, _check_training

    findings = Findings()
    for name, config in (("tpsmm", "tpsmm-vox256-avd"), ("fv2v", "fv2v-vox256")):
        _check_training(MethodConfig(name, train=f"configs/train/{config}.toml"), findings)
    gaps = {gap.what: gap for gap in findings.gaps.values()}
    assert gaps["checkpoint runs/train/tpsmm-vox256/checkpoint.pth.tar"].disables == [
        "training of tpsmm"]
    hopenet = gaps["asset hopenet (hopenet_robust_alpha1.pkl)"]
    assert hopenet.disables == ["training of fv2v (its head-pose loss needs Hopenet)"]
    assert "python -m thbench eval assets download hopenet" in hopenet.fix
