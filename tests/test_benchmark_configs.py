"""The paper-protocol benchmark configs (configs/vox1-test.toml, vox2-test.toml, th1kh-val.toml):
each loads, names the four methods with their official options per protocol, the paper-faithful
backends and a dataset whose protocol docs/protocols.md defines; the pre-flight check names every
placeholder checkpoint with a one-line fix; and configs/vox1-test.toml runs end to end on a
miniature VoxCeleb1 tree prepared from the real sample videos, with --set pointing at it and at
official-layout checkpoints, into tables whose published rows appear and are marked."""

from __future__ import annotations

import inspect
import json
import logging
from pathlib import Path

import pytest
import torch

from thbench.core.families import method_class
from thbench.eval.benchmark import check_methods, protocol_options
from thbench.eval.config import load_config
from thbench.eval.metrics import build_metrics
from thbench.eval.preflight import check_dataset, preflight
from thbench.reports.published import read_published
from thbench.reports.tables import BOUND_BAND, PUBLISHED_BAND
from thbench.training.config import load_train_config

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {  # config -> (dataset name, HiDe-NeRF training config)
    "vox1-test": ("voxceleb1-test", "hidenerf-paper-vox1"),
    "vox2-test": ("voxceleb2-test", "hidenerf-paper-vox2"),
    "th1kh-val": ("talkinghead1kh-val", "hidenerf-paper-th1kh"),
}
METHODS = ["source-copy", "driving-copy", "fomm", "tpsmm", "fv2v", "hidenerf"]


@pytest.mark.parametrize("name", CONFIGS)
def test_config_names_the_protocols_methods_and_backends(name: str) -> None:
    config = load_config(REPO / "configs" / f"{name}.toml")
    dataset, training = CONFIGS[name]
    assert config.name == name and config.dataset.name == dataset
    assert config.dataset.size == 256
    assert config.protocols == ["same-identity", "cross-identity"]
    check_methods(config)
    assert [m.display for m in config.methods] == METHODS
    metrics = {m.name: m for m in build_metrics(config.metrics, config.metric_options)}
    assert "arcface" in metrics["csim"].backend.lower()
    assert {"fid", "lpips", "akd", "akd_fomm", "aed_fomm", "avd_s"} <= set(metrics)
    assert config.metric_options["akd"] == {"landmarks": "fan"}
    options = {m.display: {p: protocol_options(m, p) for p in config.protocols}
               for m in config.methods}
    for label in ("fomm", "tpsmm"):  # reconstruction absolute, transfer relative (the papers)
        assert options[label]["same-identity"]["mode"] == "absolute"
        assert options[label]["cross-identity"]["mode"] == "relative"
        assert options[label]["same-identity"]["config"] == "vox256"
    assert options["fv2v"]["same-identity"]["config"] == "vox256"
    hidenerf = options["hidenerf"]["same-identity"]
    assert hidenerf["config"] == "paper"
    exported = load_train_config(REPO / "configs" / "train" / f"{training}.toml").exported
    assert Path(hidenerf["checkpoint"]) == exported
    for spec in config.methods:  # every option is one the method's constructor takes
        accepted = {name for klass in method_class(spec.name).__mro__ if "__init__" in vars(klass)
                    for name in inspect.signature(klass.__init__).parameters}
        for protocol in config.protocols:
            assert set(options[spec.display][protocol]) <= accepted, (spec.name, protocol)


@pytest.mark.parametrize("name", CONFIGS)
def test_protocols_are_documented_and_published_rows_use_the_dataset_names(name: str) -> None:
    docs = (REPO / "docs" / "protocols.md").read_text()
    dataset, _ = CONFIGS[name]
    assert f"`configs/{name}.toml` | `{dataset}`" in docs
    datasets = {row.dataset for row in read_published()}
    assert datasets <= {d for d, _ in CONFIGS.values()}


@pytest.mark.parametrize("name", CONFIGS)
def test_preflight_names_each_placeholder_with_a_one_line_fix(name: str, tmp_path: Path) -> None:
    path = REPO / "configs" / f"{name}.toml"
    missing = load_config(path, [f"dataset.root={tmp_path / 'absent'}"])
    with pytest.raises(FileNotFoundError) as error:
        check_dataset(missing)
    assert "fix: --set dataset.root=FOLDER" in str(error.value)
    assert "\n" not in str(error.value)
    for protocol in ("same-identity", "cross-identity"):  # the layout a preparation writes
        (tmp_path / "prepared" / "pairs").mkdir(parents=True, exist_ok=True)
        (tmp_path / "prepared" / "pairs" / f"{protocol}.jsonl").write_text("")
    (tmp_path / "prepared" / "clips").mkdir()
    given = tmp_path / "vox.pth.tar"
    given.write_bytes(b"")
    config = load_config(path, [f"dataset.root={tmp_path / 'prepared'}",
                                f"methods.tpsmm.checkpoint={given}"])
    gaps = {gap.what: gap for gap in preflight(config, [])}
    expected = {spec.display: spec.options["checkpoint"] for spec in config.methods
                if spec.options.get("checkpoint") and spec.display != "tpsmm"}
    assert sorted(gaps) == sorted(f"checkpoint {p}" for p in expected.values())
    for label, checkpoint in expected.items():
        gap = gaps[f"checkpoint {checkpoint}"]
        assert gap.disables == [f"method {label}"]
        assert gap.fix.startswith(f"--set methods.{label}.checkpoint=/path/to/"
                                  f"{Path(checkpoint).name} ")
        assert "\n" not in gap.fix


# --- VoxCeleb1 end to end ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def checkpoints(official_checkpoints: dict[str, Path], tmp_path_factory) -> dict[str, Path]:
    """Official-layout FOMM and TPSMM checkpoints (tests/minivox.py) plus face-vid2vid's
    (generator, kp_detector, he_estimator) and a HiDe-NeRF export, all tiny with seeded random
    weights."""
    from thbench.core.families import build
    from thbench.hidenerf.checkpoint import save_checkpoint
    from thbench.hidenerf.config import get_config
    from thbench.hidenerf.model import HiDeNeRF

    folder = tmp_path_factory.mktemp("more_checkpoints")
    torch.manual_seed(0)
    paths = dict(official_checkpoints)
    paths["fv2v"] = folder / "fv2v-tiny.pth.tar"
    build("fv2v", config="tiny", allow_random_init=True).save(paths["fv2v"])
    paths["hidenerf"] = folder / "model.pt"
    save_checkpoint(paths["hidenerf"], HiDeNeRF(get_config("tiny")))
    return paths


def test_vox1_config_runs_on_a_prepared_mini_vox1_with_published_rows(
        vox_png_root: Path, vox1_csv: Path, checkpoints: dict[str, Path], tmp_path: Path,
        capsys, caplog) -> None:
    """The README's three commands: prepare, run (with --set), open the report."""
    from thbench.cli.datasets import main as datasets_main
    from thbench.cli.eval import main as eval_main

    prepared = tmp_path / "prepared" / "vox1-test"
    assert datasets_main(["prepare", "--dataset", "voxceleb1", "--layout", "fomm",
                          "--root", str(vox_png_root), "--split", "test", "--list",
                          str(vox1_csv), "--out", str(prepared)]) == 0
    settings = [f"dataset.root={prepared}",
                'metrics=["psnr", "l1", "aed_fomm", "no_face"]',
                "metric_options.aed_fomm.backend=dlib"]
    for label, path in checkpoints.items():
        settings += [f"methods.{label}.checkpoint={path}", f"methods.{label}.config=tiny"]
    capsys.readouterr()
    caplog.set_level(logging.INFO, logger="thbench")
    code = eval_main(["run", "--config", str(REPO / "configs" / "vox1-test.toml"),
                      "--output-dir", str(tmp_path / "runs"),
                      *(f"--set={s}" for s in settings)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "pre-flight: every asset and file the run needs is here" in caplog.messages
    run = tmp_path / "runs" / "vox1-test"
    record = json.loads((run / "run.json").read_text())
    assert record["config"]["settings"] == settings and record["size"] == 256
    assert record["method_options"]["fomm"]["same-identity"] == {
        "mode": "absolute", "checkpoint": str(checkpoints["fomm"]), "config": "tiny"}
    assert record["method_options"]["tpsmm"]["cross-identity"]["mode"] == "relative"
    tables = (run / "tables.md").read_text()
    sections = {block.split("\n")[0]: block for block in tables.split("### ")[1:]}
    section = sections["voxceleb1-test / same-identity"]
    rows = [line.split(" | ")[0][2:] for line in section.splitlines()
            if line.startswith("| ") and not line.startswith("| method")]
    # the methods, then the copy baselines in their own band, then the papers' figures
    assert rows == [*METHODS[2:], f"*{BOUND_BAND}*", *METHODS[:2], f"*{PUBLISHED_BAND}*",
                    "*FOMM (published, NeurIPS'19)*"]
    # FOMM's AED has our aed_fomm's formula but OpenFace embeddings: a note, not a value
    assert "AED = 0.1400 not comparable: backend: paper OpenFace identity embeddings " \
        "(thnkim/OpenFacePytorch, as pose-evaluation's README names it), ours dlib" in section
    assert "(published" not in sections["voxceleb1-test / cross-identity"]
    assert "FOMM (published, NeurIPS&#x27;19)" in (run / "report.html").read_text()
    assert r"\textit{FOMM (published, NeurIPS'19)}" in (run / "tables.tex").read_text()
    for board in (run / "leaderboard.csv", run.parent / "leaderboard.csv"):
        methods = {line.split(",")[1] for line in board.read_text().splitlines()[1:]}
        assert methods == set(METHODS)
