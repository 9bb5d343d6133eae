"""A benchmark method with a ``train`` config: trained first, evaluated from the checkpoint its
run exports, reused by reruns, and never mixed with outputs of another checkpoint."""

from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path

import pytest

from thbench.eval.benchmark import run_benchmark
from thbench.eval.config import load_config


def write_configs(folder: Path, dataset_root: Path, steps: int) -> Path:
    train = folder / "fomm-train.toml"
    train.write_text(f"""
name = "fomm-mini"
family = "fomm"
model = "tiny"
output_dir = "elsewhere"
[data]
name = "mini"
root = "{dataset_root}"
holdout = 1
pairs_per_clip = 4
[optim]
steps = {steps}
batch_size = 2
[loss]
perceptual_backend = "l1"
""")
    run = folder / "run.toml"
    run.write_text(f"""
name = "trained"
output_dir = "{folder / 'runs'}"
protocols = ["same-identity"]
metrics = ["l1", "psnr"]
[dataset]
name = "mini"
root = "{dataset_root}"
[[methods]]
name = "fomm"
label = "fomm-mini"
train = "{train}"
""")
    return run


def test_a_method_is_trained_then_evaluated_and_reruns_reuse_both(tmp_path: Path, mini_dataset,
                                                                   caplog):
    run = write_configs(tmp_path, mini_dataset.root, steps=3)
    caplog.set_level(logging.INFO, logger="thbench")
    first = run_benchmark(load_config(run))["fomm-mini"]
    assert first.computed == len(mini_dataset.pairs("same-identity")) and not first.problems
    assert any("training from" in line for line in caplog.messages)
    exported = tmp_path / "runs" / "train" / "fomm-mini" / "checkpoint.pth.tar"  # run's folder
    assert exported.is_file()
    with (tmp_path / "runs" / "trained" / "results.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["method"] == "fomm-mini"]
    assert {r["metric"] for r in rows} == {"l1", "psnr"}
    assert all(r["status"] == "ok" for r in rows if r["metric"] == "l1")

    caplog.clear()
    again = run_benchmark(load_config(run))["fomm-mini"]
    assert again.computed == 0 and again.reused == first.computed
    assert any("already trained" in line for line in caplog.messages)

    # a copied run folder holds the same checkpoint elsewhere: the same model, reused
    shutil.copytree(tmp_path / "runs", tmp_path / "copy")
    moved = run_benchmark(load_config(run, output_dir=str(tmp_path / "copy")))["fomm-mini"]
    assert moved.computed == 0 and moved.reused == first.computed

    # training further changes the checkpoint: its old outputs must not be reused under the label
    write_configs(tmp_path, mini_dataset.root, steps=4)
    with pytest.raises(ValueError, match="method.json: method 'fomm-mini' changed"):
        run_benchmark(load_config(run))


def test_a_train_config_for_another_family_is_refused(tmp_path: Path, mini_dataset):
    run = write_configs(tmp_path, mini_dataset.root, steps=1)
    run.write_text(run.read_text().replace('name = "fomm"\nlabel', 'name = "tpsmm"\nlabel'))
    with pytest.raises(ValueError, match="trains 'fomm', but the method is 'tpsmm'"):
        run_benchmark(load_config(run))


def test_a_trained_method_keeps_its_protocol_options(tmp_path: Path, mini_dataset):
    """FOMM reconstructs with absolute keypoints by default; a config's ``protocol_options``
    (here: relative) must survive the swap to the trained checkpoint."""
    run = write_configs(tmp_path, mini_dataset.root, steps=1)
    run.write_text(run.read_text()
                   + 'protocol_options = { same-identity = { mode = "relative" } }\n')
    run_benchmark(load_config(run))
    record = json.loads((tmp_path / "runs" / "trained" / "outputs" / "fomm-mini"
                         / "method.json").read_text())
    options = record["protocol_options"]["same-identity"]
    assert options["mode"] == "relative"
    assert options["checkpoint"].endswith("checkpoint.pth.tar")
