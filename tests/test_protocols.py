"""The papers' protocols around the warping baselines: same-identity is FOMM's reconstruction
(source = the clip's frame 0, every frame of the clip driving it, absolute keypoints), and
cross-identity transfers motion relative to the driving clip's first frame (animate.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from thbench.cli.eval import main
from thbench.core.families import build
from thbench.core.media import read_image, to_tensor, to_uint8


@pytest.fixture(scope="module")
def protocol_run(mini_dataset, tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    folder = tmp_path_factory.mktemp("protocols")
    checkpoints = {}
    for name in ("fomm", "tpsmm"):
        torch.manual_seed(0)
        checkpoints[name] = folder / f"{name}.pth.tar"
        build(name, config="tiny", allow_random_init=True).save(checkpoints[name])
    config = folder / "config.toml"
    config.write_text(f"""
name = "protocols"
output_dir = "{folder / 'runs'}"
protocols = ["same-identity", "cross-identity"]
metrics = ["l1"]

[dataset]
name = "mini"
root = "{mini_dataset.root}"
""" + "".join(f"""
[[methods]]
name = "{name}"
options = {{ checkpoint = "{path}", config = "tiny" }}
""" for name, path in checkpoints.items()))
    assert main(["run", "--config", str(config)]) == 0
    return folder / "runs" / "protocols", checkpoints


@pytest.mark.parametrize("name", ["fomm", "tpsmm"])
def test_same_identity_is_the_reconstruction_protocol(protocol_run, mini_dataset, name) -> None:
    """Each output frame equals the model run on (frame 0, that frame) alone, in absolute mode:
    a computation that knows nothing of the pair lists. Random tiny weights make nearly
    constant images, so this alone could not tell modes or sources apart: which frames are
    source and driving is checked exactly with the reference methods below, and the mode each
    protocol builds through run.json and method.json."""
    run_dir, checkpoints = protocol_run
    method = build(name, checkpoint=checkpoints[name], config="tiny", mode="absolute")
    checked = 0
    for clip_id in ("man-000", "woman-000"):
        clip = mini_dataset.clip(clip_id)
        frames = [clip.frame(i) for i in range(len(clip))]
        source = to_tensor(frames[0])
        folder = run_dir / "outputs" / name / "mini" / "same-identity" / clip_id
        assert len(list(folder.glob("*.png"))) == len(frames)  # frame 0 drives too
        for index, frame in enumerate(frames):
            lone = to_tensor(frame[None])
            expected = to_uint8(next(method.animate(source, iter([lone]))))[0]
            output = read_image(folder / f"{index:06d}.png")
            assert np.abs(output.astype(int) - expected.astype(int)).max() <= 1, (clip_id, index)
            checked += 1
    assert checked == 10


def test_same_identity_sources_frame_0_and_drives_with_the_others(mini_dataset, run_config,
                                                                   tmp_path: Path) -> None:
    config = run_config(tmp_path, "frames", mini_dataset.root, ["l1"], ("same-identity",))
    assert main(["run", "--config", str(config)]) == 0
    outputs = tmp_path / "runs" / "frames" / "outputs"
    for pair in mini_dataset.pairs("same-identity"):
        if pair.skip:
            continue
        clip = mini_dataset.clip(pair.source_clip)
        for index in range(len(clip)):
            name = f"{pair.pair_id}/{index:06d}.png"
            driven = read_image(outputs / "driving-copy" / "mini" / "same-identity" / name)
            kept = read_image(outputs / "source-copy" / "mini" / "same-identity" / name)
            assert np.array_equal(driven, clip.frame(index))
            assert np.array_equal(kept, clip.frame(0))


def test_run_record_names_each_protocols_options(protocol_run) -> None:
    run_dir, _ = protocol_run
    record = json.loads((run_dir / "run.json").read_text())
    for name in ("fomm", "tpsmm"):
        options = record["method_options"][name]
        assert options["same-identity"]["mode"] == "absolute"
        assert options["cross-identity"]["mode"] == "relative"
    method = json.loads((run_dir / "outputs" / "fomm" / "method.json").read_text())
    assert method["protocol_options"]["same-identity"]["mode"] == "absolute"


def test_protocol_options_override_the_papers_defaults(mini_dataset, run_config,
                                                       tmp_path: Path) -> None:
    from thbench.eval.benchmark import protocol_options
    from thbench.eval.config import MethodConfig

    spec = MethodConfig("fomm", options={"mode": "relative"},
                        protocol_options={"cross-identity": {"mode": "absolute"}})
    assert protocol_options(spec, "same-identity")["mode"] == "relative"  # options win
    assert protocol_options(spec, "cross-identity")["mode"] == "absolute"
    assert protocol_options(MethodConfig("fomm"), "same-identity") == {"mode": "absolute"}
    assert protocol_options(MethodConfig("source-copy"), "same-identity") == {}
