"""The GPU acceptance script (``python -m thbench.profiling.gpu``) in its reduced CPU form: the
fast checks here, the whole reduced run (torchrun, training, resume, evaluation) marked slow."""

from __future__ import annotations

import tomllib

import pytest
import torch

from thbench.profiling import gpu
from thbench.profiling.endtoend import face_frames


def test_inference_stage_compares_every_method(monkeypatch) -> None:
    frames = face_frames(2, 128)
    checks = gpu.inference_checks(torch.device("cpu"), "reduced", frames)
    assert [c.what.split()[0] for c in checks] == ["fomm", "tpsmm", "fv2v", "hidenerf"]
    assert all(c.ok and c.value == 0 for c in checks)  # the CPU against itself: bit-equal


def test_a_mismatch_fails_the_check() -> None:
    assert not gpu.Check("inference", "x", 0.01, gpu.INFERENCE_TOLERANCE).ok
    assert not gpu.Check("training", "x", float("nan"), 1.0).ok
    assert gpu.Check("training", "x", 0.0, 0.0).ok


@pytest.mark.parametrize("family", ["hidenerf", "fomm"])
def test_training_configs_take_the_profiled_model_device_and_amp(tmp_path, family,
                                                                  monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the recipe is found from the package, not the directory
    path = gpu.training_config(family, "full", torch.device("cuda:0"), 100, tmp_path)
    config = tomllib.loads(path.read_text())
    assert config["model"] == ("paper" if family == "hidenerf" else "vox256")
    assert config["device"] == "cuda" and config["output_dir"] == tmp_path.as_posix()
    assert config["optim"]["steps"] == 100 and config["optim"]["checkpoint_every"] == 50
    assert config["optim"]["amp"] == ("bf16" if family == "hidenerf" else "off")


@pytest.mark.slow
def test_reduced_acceptance_run_passes(tmp_path, monkeypatch) -> None:
    # The default --out is relative, as CI runs it: the configs the script writes resolve
    # relative paths against their own folder, so a relative --out once doubled the path.
    monkeypatch.chdir(tmp_path)
    assert gpu.main(["--reduced", "--steps", "2"]) == 0
