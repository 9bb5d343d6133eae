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


def test_a_shipped_checkpoint_is_evaluated_instead_of_training_and_checked(tmp_path: Path,
                                                                           mini_dataset, caplog):
    """The default's route: a checkpoint shipped with its record stands in for the training
    run it came from, gives that run's numbers, and is refused once altered or once its
    training config says something else; ``retrain`` trains instead."""
    from thbench.training.config import load_train_config
    from thbench.training.shipped import RECORD, ship

    run = write_configs(tmp_path, mini_dataset.root, steps=2)
    trained = run_benchmark(load_config(run))["fomm-mini"]
    train_config = load_train_config(tmp_path / "fomm-train.toml",
                                     output_dir=str(tmp_path / "runs" / "train"))
    folder = tmp_path / "checkpoints" / "fomm-mini"
    shipped = ship(train_config, folder, threads=1)
    record = json.loads((folder / RECORD).read_text())
    assert record["steps"] == 2 and record["recipe"]["optim"]["steps"] == 2
    assert "output_dir" not in record["recipe"] and record["file"] == shipped.name

    def results(output: str) -> dict[str, float]:
        with (tmp_path / output / "trained" / "results.csv").open() as handle:
            return {r["pair_id"]: float(r["value"]) for r in csv.DictReader(handle)
                    if r["method"] == "fomm-mini" and r["metric"] == "l1"}

    run.write_text(run.read_text() + f'shipped = "{folder}"\n')
    caplog.set_level(logging.INFO, logger="thbench")
    caplog.clear()
    summary = run_benchmark(load_config(run, output_dir=str(tmp_path / "out")))["fomm-mini"]
    assert summary.computed == trained.computed and not summary.failed
    assert not any("training from" in line for line in caplog.messages)
    assert any("shipped checkpoint" in line for line in caplog.messages)
    assert not (tmp_path / "out" / "train").exists()
    assert results("out") == results("runs")  # the same weights, the same numbers

    def failure(output: str, **overrides) -> str:
        config = load_config(run, output_dir=str(tmp_path / output), **overrides)
        return run_benchmark(config)["fomm-mini"].failed

    # the recipe changed since the checkpoint was trained: refused, with the fix
    train_file = tmp_path / "fomm-train.toml"
    train_file.write_text(train_file.read_text().replace("steps = 2", "steps = 3"))
    assert "optim.steps: 2 -> 3" in failure("changed") and "--retrain" in failure("changed2")
    # retrain: trains the changed recipe into the run's own folder
    assert not failure("retrained", retrain=True)
    assert (tmp_path / "retrained" / "train" / "fomm-mini" / "checkpoint.pth.tar").is_file()

    train_file.write_text(train_file.read_text().replace("steps = 3", "steps = 2"))
    data = bytearray(shipped.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shipped.write_bytes(bytes(data))
    assert "sha256 differs" in failure("altered")
