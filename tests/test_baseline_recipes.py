"""The training-recipe machinery of the baselines: random warps on any device, step-decay LR
at epoch milestones, per-module inf-norm clipping, weight decay, SyncBatchNorm conversion,
identity sampling, fresh pairs per epoch, augmentation, exact resume with all of them on, the
vox256 configs, and a two-rank gloo torchrun step for every trainable family."""

from __future__ import annotations

import itertools
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from thbench.baselines.train import LossKit, build_kit
from thbench.core.processes import Process
from thbench.datasets.augmentation import Augmentation
from thbench.datasets.frame_pairs import FramePairs, split_frames, training_frames, video_clips
from thbench.training.config import load_train_config, train_config_from_dict
from thbench.training.loop import EpochBatches, Objective, Trainer, TrainSettings

REPO = Path(__file__).resolve().parents[1]


# --- random warps: the generator and the device agree ------------------------------------------


def test_random_warps_draw_on_the_cpu_and_land_on_the_kit_device():
    """The warp noise comes from a CPU generator, whatever the training device: a kit built for
    another device (``meta`` stands in for CUDA here) still draws, and its warps live there."""
    kit = build_kit({"perceptual_backend": "l1"}, torch.device("meta"), "test")
    assert kit.generator.device.type == "cpu"
    warp = kit.random_warp(3, "fomm")
    assert warp.theta.device.type == "meta" and warp.params.device.type == "meta"
    cpu = build_kit({"perceptual_backend": "l1"}, torch.device("cpu"), "test")
    cpu.generator.manual_seed(5)
    kit.generator.manual_seed(5)
    a, b = cpu.random_warp(3, "tpsmm"), kit.random_warp(3, "tpsmm")
    assert a.theta.shape == b.theta.shape == (3, 2, 3)
    with pytest.raises(ValueError, match="CPU generator"):
        LossKit(cpu.weights, torch.device("cpu"), _NotCpu())


class _NotCpu(torch.Generator):
    """A generator that reports a non-CPU device (no accelerator needed)."""

    @property
    def device(self) -> torch.device:  # type: ignore[override]
        return torch.device("cuda")


# --- schedule, clipping, weight decay, BatchNorm --------------------------------------------------


class Toy(Objective):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(2, 1)
        self.b = nn.Linear(2, 1)

    def forward(self, batch):
        x = batch["x"]
        loss = (self.a(x) * 100).sum() + (self.b(x) * 0.01).sum()
        return {"loss": loss}, {}


class Items(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 12

    def __getitem__(self, index: int) -> dict:
        return {"x": torch.full((2,), float(index % 5))}


def toy_trainer(tmp_path: Path, **settings) -> Trainer:
    options = {"steps": 10, "batch_size": 2, "lr": 1.0, "log_every": 100,
               "checkpoint_every": 100, "image_every": 100} | settings
    return Trainer(Toy(), Items(), TrainSettings(**options), tmp_path)


def test_step_schedule_decays_at_epoch_milestones(tmp_path: Path):
    trainer = toy_trainer(tmp_path, schedule="step", milestones=[2, 3], gamma=0.1, epochs=4)
    assert trainer.steps_per_epoch == 6 and trainer.total_steps == 24  # 12 items / batch 2
    factors = [trainer._lr_factor(step) for step in range(24)]
    assert factors == pytest.approx([1.0] * 12 + [0.1] * 6 + [0.01] * 6)
    with pytest.raises(ValueError, match="milestones"):
        TrainSettings(schedule="step")


def test_per_module_inf_norm_clipping_and_weight_decay(tmp_path: Path):
    trainer = toy_trainer(tmp_path, grad_clip=0.5, grad_clip_norm=math.inf,
                          grad_clip_modules=["a"], weight_decay=1e-4, schedule="constant")
    assert trainer.optimizer.param_groups[0]["weight_decay"] == 1e-4
    model = trainer.objective
    batch = {"x": torch.tensor([[1.0, 2.0], [3.0, 4.0]])}
    trainer._train_step(model, batch)
    # the step ran; recompute the clipped gradients the same way and check their norms
    model.zero_grad()
    sum(model(batch)[0].values()).backward()
    raw_b = model.b.weight.grad.clone()
    nn.utils.clip_grad_norm_(list(model.a.parameters()), 0.5, norm_type=math.inf)
    assert max(p.grad.abs().max() for p in model.a.parameters()) <= 0.5 + 1e-6
    assert torch.equal(model.b.weight.grad, raw_b)  # b is not among grad_clip_modules
    with pytest.raises(ValueError, match="no trained parameter under 'c'"):
        toy_trainer(tmp_path / "x", grad_clip=1.0, grad_clip_modules=["c"])
    with pytest.raises(ValueError, match="grad_clip_norm"):
        TrainSettings(grad_clip_norm=1.0)


def test_clip_groups_are_clipped_each_on_its_own(tmp_path: Path):
    trainer = toy_trainer(tmp_path, grad_clip=0.5, grad_clip_norm=math.inf,
                          grad_clip_modules=["a", "b"], schedule="constant", lr=0.0)
    model = trainer.objective
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer.optimizer.step = lambda: None  # keep the clipped gradients visible
    trainer._train_step(model, {"x": torch.tensor([[1.0, 2.0], [3.0, 4.0]])})
    a = max(p.grad.abs().max() for p in model.a.parameters())
    b = max(p.grad.abs().max() for p in model.b.parameters())
    assert a == pytest.approx(0.5)  # |grad a| up to 400 before: clipped to 0.5
    assert b == pytest.approx(0.06)  # 0.01 * (4 + 2): below 0.5, untouched
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())


class ToyGAN(Toy):
    def __init__(self) -> None:
        super().__init__()
        self.discriminator = nn.Linear(2, 1)

    def forward(self, batch):
        losses, _ = super().forward(batch)
        return losses, {"x": batch["x"]}

    def discriminator_loss(self, visuals, batch):
        return self.discriminator(visuals["x"]).pow(2).mean()


@pytest.mark.parametrize("scheduled", [True, False])
def test_discriminator_follows_the_schedule_when_asked(tmp_path: Path, scheduled: bool):
    settings = TrainSettings(steps=6, batch_size=2, lr=1.0, schedule="step", milestones=[1],
                             epochs=2, discriminator_schedule=scheduled, grad_clip=0.0,
                             checkpoint_every=100, log_every=100, image_every=100)
    trainer = Trainer(ToyGAN(), Items(), settings, tmp_path)
    batch = {"x": torch.ones(2, 2)}
    rates = []
    for _ in range(8):  # epochs of 6 steps: the milestone at step 6
        trainer._train_step(trainer.objective, batch)
        rates.append(trainer.disc_optimizer.param_groups[0]["lr"])
    assert rates == pytest.approx([1.0] * 5 + [0.1] * 3 if scheduled else [1.0] * 8)
    assert ("disc_scheduler" in trainer.state_dict()) == scheduled


def test_sync_batchnorm_conversion_only_on_several_gpus():
    from thbench.training.loop import convert_batchnorm

    def net() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Sequential(nn.BatchNorm2d(4)))

    plain = net()
    assert not convert_batchnorm(plain, Process(0, 2, torch.device("cpu")))
    assert not convert_batchnorm(plain, Process(0, 1, torch.device("cuda")))
    converted = net()
    weight = converted[1][0].weight
    assert convert_batchnorm(converted, Process(0, 2, torch.device("cuda")))
    assert isinstance(converted[1][0], nn.SyncBatchNorm)
    assert converted[1][0].weight is weight  # the same parameter: optimisers stay valid
    assert converted.state_dict().keys() == plain.state_dict().keys()


# --- data: identity sampling, fresh pairs, augmentation ------------------------------------------


def test_identity_sampling_and_fresh_pairs(mini_dataset):
    clips = video_clips(mini_dataset, 3)
    frames = {c.clip_id: split_frames(c, 1)[0] for c in clips}
    identities = sorted({c.info.identity for c in clips})
    pairs = FramePairs(clips, frames, 10, seed=1, size=32, by_identity=True, fresh=True)
    assert len(pairs) == 10 * len(identities) and pairs.fresh_draws
    drawn = [pairs.pair(i) for i in range(200)]
    for index, (clip, _, _) in enumerate(drawn):
        assert clip.info.identity == identities[index % len(identities)]
    man = {c.clip_id for c, _, _ in drawn if c.info.identity == "man"}
    assert len(man) == len([c for c in clips if c.info.identity == "man"]) > 1
    # the sampler numbers epoch e's items from e * len on: new pairs every epoch
    batches = EpochBatches(pairs, 2, Process(), seed=0)
    stream = list(itertools.islice(iter(batches), 2 * batches.per_epoch))
    first, second = stream[:batches.per_epoch], stream[batches.per_epoch:]
    assert max(max(b) for b in first) < len(pairs) <= min(min(b) for b in second)
    assert sorted(i % len(pairs) for b in second for i in b) == list(range(len(pairs)))
    assert [pairs.pair(i)[1:] for b in first for i in b] != \
        [pairs.pair(i)[1:] for b in second for i in b]


def test_faces_only_draws_the_frames_with_a_face(mini_dataset):
    """The tiny recipes train on the frames the face metrics score: face_noface.mov's clip
    whose last frame has no face keeps its four face frames, and only them."""
    clips = [mini_dataset.clip(c) for c in ("man-000", "man-leaves-001")]
    assert [r.face for r in clips[1].faces()] == [True, True, True, True, False]
    every = training_frames(clips, holdout=0)
    faces = training_frames(clips, holdout=0, faces_only=True)
    assert every == {"man-000": [0, 1, 2, 3, 4], "man-leaves-001": [0, 1, 2, 3, 4]}
    assert faces == {"man-000": [0, 1, 2, 3, 4], "man-leaves-001": [0, 1, 2, 3]}
    assert training_frames(clips, holdout=2, faces_only=True)["man-leaves-001"] == [0, 1, 2]


@pytest.mark.parametrize("family, config, shape", [
    ("fomm", "tiny", (1, 32, 16, 16)), ("fomm", "tiny-full", (1, 16, 64, 64)),
    ("fv2v", "tiny", (1, 4, 4, 16, 16)), ("fv2v", "tiny-fine", (1, 16, 4, 16, 16)),
    ("fv2v", "tiny-sharp", (1, 16, 4, 32, 32)),
])
def test_sample_generators_keep_more_of_the_source(family, config, shape):
    """What the default's FOMM and face-vid2vid recipes change: FOMM's source features at the
    full 64 px model resolution (tiny: a quarter), face-vid2vid's feature volume with 16
    channels (tiny: 4) at half the image (tiny, tiny-fine: a quarter); everything else as tiny,
    and the image comes back at 64 px."""
    from thbench.core.families import build

    method = build(family, config=config, allow_random_init=True)
    assert method.size == (64, 64)
    generator = method.nets["generator"]
    assert tuple(generator.encode(torch.rand(1, 3, 64, 64)).shape) == shape
    if family == "fv2v":
        kp = torch.rand(1, 15, 3) * 2 - 1
        assert generator(torch.rand(1, 3, 64, 64), kp, kp)["prediction"].shape == (1, 3, 64, 64)


def test_fv2v_sharp_keeps_the_official_module_keys():
    """tiny-sharp's generator pools once instead of twice, with the same modules and weight
    shapes as tiny-fine: the checkpoint layout (and loader) are the official ones."""
    from thbench.baselines.fv2v_nets import build_models

    sharp, fine = build_models("tiny-sharp"), build_models("tiny-fine")
    for name in sharp:
        assert {k: v.shape for k, v in sharp[name].state_dict().items()} == \
            {k: v.shape for k, v in fine[name].state_dict().items()}


@pytest.mark.parametrize("family", ["fomm", "tpsmm", "fv2v"])
def test_sample_recipes_train_on_face_frames_with_a_decaying_rate(family):
    from thbench.core.families import build

    config = load_train_config(REPO / "configs" / "train" / f"{family}-tiny-sample.toml")
    assert config.data.faces_only and config.data.name == "sample"
    assert config.optim.schedule == "cosine" and config.optim.warmup_steps > 0
    build(family, config=config.model, allow_random_init=True)  # a config the family knows


def test_augmentation_flips_and_jitter_are_seeded_and_shared_by_the_pair():
    augment = Augmentation(horizontal_flip=True, time_flip=True, jitter=(0.1, 0.1, 0.1, 0.1))
    choices = [augment.draw(np.random.default_rng((0, i, 2))) for i in range(64)]
    assert choices[3] == augment.draw(np.random.default_rng((0, 3, 2)))  # reproducible
    assert 10 < sum(c["time_flip"] for c in choices) < 54
    assert 10 < sum(c["horizontal_flip"] for c in choices) < 54
    factors = [dict(c["jitter"]) for c in choices]
    assert all(0.9 <= f["brightness"] <= 1.1 and -0.1 <= f["hue"] <= 0.1 for f in factors)
    assert len({tuple(n for n, _ in c["jitter"]) for c in choices}) > 1  # random order
    source = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0))
    driving = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(1))
    flip = {"time_flip": True, "horizontal_flip": True, "jitter": [("brightness", 0.5)]}
    a, b = augment.apply(source, driving, flip)
    assert torch.allclose(a, (driving.flip(-1) * 0.5).clamp(0, 1))
    assert torch.allclose(b, (source.flip(-1) * 0.5).clamp(0, 1))
    assert not Augmentation().active


# --- configs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "per_gpu", "gpus", "epochs", "milestones"), [
    ("fomm", 5, 8, 100, (60, 90)), ("tpsmm", 7, 4, 100, (70, 90)), ("fv2v", 4, 8, 300, (180,))])
def test_vox256_configs_hold_the_official_recipe(name, per_gpu, gpus, epochs, milestones):
    from thbench.baselines.train import loss_weights

    path = REPO / "configs" / "train" / f"{name}-vox256.toml"
    cfg = load_train_config(path)
    o, d = cfg.optim, cfg.data
    assert f"--nproc_per_node {gpus} " in path.read_text()
    assert o.batch_size * gpus == {"fomm": 40, "tpsmm": 28, "fv2v": 32}[name]
    assert (o.epochs, o.milestones, o.gamma, o.schedule) == (epochs, milestones, 0.1, "step")
    assert (o.lr, o.betas, o.amp) == (2e-4, (0.5, 0.999), "off")
    assert d.identity_sampling and d.fresh_pairs and d.pairs_per_clip == 75
    assert d.horizontal_flip and d.time_flip and tuple(d.jitter) == (0.1,) * 4
    options = loss_weights(cfg.loss, str(path))
    w = options.weights
    assert w.perceptual == (10.0,) * 5 and w.scales == (1.0, 0.5, 0.25, 0.125)
    assert options.perceptual == "vgg19" and w.equivariance_value == 10
    if name == "fomm":
        assert o.sync_batchnorm and o.grad_clip == 0 and not options.discriminator
        assert w.equivariance_jacobian == 10
    if name == "tpsmm":
        assert (o.weight_decay, o.grad_clip, o.grad_clip_norm) == (1e-4, 10.0, math.inf)
        assert o.grad_clip_modules == ("nets.kp_detector", "nets.dense_motion_network",
                                       "extra.bg_predictor")
        assert (w.bg_start_epoch, w.bg, w.warp, w.tps_dropout_epochs) == (10, 10, 10, 35)
        assert not o.sync_batchnorm
    if name == "fv2v":
        assert o.sync_batchnorm and o.grad_clip == 0 and options.discriminator
        assert o.discriminator_schedule
        assert (w.gan_mode, w.generator_gan, w.feature_matching) == ("hinge", 1.0, (10.0,) * 4)
        assert w.spectral_norm and w.discriminator_scales == (1.0,)
        assert options.pose_estimator == "hopenet"
        assert (w.headpose, w.keypoint, w.expression) == (20, 10, 5)


# --- exact resume with the whole recipe on -----------------------------------------------------


def recipe_config(tmp_path: Path, root: Path, family: str, name: str, **optim):
    table = {
        "name": name, "family": family, "model": "tiny", "output_dir": str(tmp_path / "runs"),
        "data": {"name": "mini", "root": str(root), "holdout": 1, "pairs_per_clip": 2,
                 "identity_sampling": True, "fresh_pairs": True, "horizontal_flip": True,
                 "time_flip": True, "jitter": [0.1, 0.1, 0.1, 0.1]},
        "optim": {"epochs": 3, "batch_size": 2, "lr": 1e-3, "schedule": "step",
                  "milestones": [1, 2], "weight_decay": 1e-4, "grad_clip": 10.0,
                  "grad_clip_norm": math.inf, "log_every": 1, "image_every": 100,
                  "checkpoint_every": 2,
                  "grad_clip_modules": ["nets.kp_detector", "nets.dense_motion_network",
                                        "extra.bg_predictor"]} | optim,
        "loss": {"perceptual_backend": "l1", "bg_start_epoch": 1, "tps_dropout_epochs": 2},
    }
    return train_config_from_dict(table, "test")


def test_tpsmm_recipe_resumes_bit_identically(tmp_path: Path, mini_dataset):
    from thbench.baselines.train import train

    whole = train(recipe_config(tmp_path, mini_dataset.root, "tpsmm", "whole"))
    split = recipe_config(tmp_path, mini_dataset.root, "tpsmm", "split")
    train(split, stop_at=3)  # mid-epoch, after the bg predictor started
    resumed = train(split, resume=True)
    a, b = (torch.load(p, weights_only=True) for p in (whole, resumed))
    for key in a:
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), (key, name)
    rows = [__import__("json").loads(line) for line in
            (split.run_dir / "scalars.jsonl").read_text().splitlines()]
    # 2 identities x 2 pairs / batch 2: 2-step epochs, 3 of them
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert ["bg" in r for r in rows] == [False, False, True, True, True, True]  # from epoch 1
    # the LR after each step (MultiStepLR at epochs 1 and 2)
    assert [r["lr"] for r in rows] == pytest.approx([1e-3, 1e-4, 1e-4, 1e-5, 1e-5, 1e-5])
    state = torch.load(split.run_dir / "checkpoints" / "last.pt", weights_only=False)
    assert any(k.startswith("extra.bg_predictor.") for k in state["objective"])
    assert "bg_predictor" in a  # exported beside the official modules, as officially


def test_tpsmm_trained_with_the_background_predictor_exports_it_and_applies_it(
        tmp_path: Path, mini_dataset):
    """``bg_start_epoch`` trains TPSMM's background motion predictor: the export holds it (the
    run's trained weights, under the official key ``bg_predictor``) and the reconstruction
    protocol's ``background = "auto"`` applies it; ``"off"`` (the demo's) does not."""
    from thbench.baselines.tpsmm import TPSMM
    from thbench.baselines.train import train
    from thbench.core.media import read_image, to_tensor

    table = {"name": "bg", "family": "tpsmm", "model": "tiny", "output_dir": str(tmp_path),
             "data": {"name": "mini", "root": str(mini_dataset.root), "holdout": 1,
                      "pairs_per_clip": 4},
             "optim": {"steps": 3, "batch_size": 2, "lr": 1e-2, "grad_clip": 0.0,
                       "checkpoint_every": 3},
             "loss": {"perceptual_backend": "l1", "bg_start_epoch": 0}}
    config = train_config_from_dict(table, "test")
    exported = torch.load(train(config), weights_only=True)
    run = torch.load(config.run_dir / "checkpoints" / "last.pt", weights_only=False)
    trained = {k.removeprefix("extra.bg_predictor."): v for k, v in run["objective"].items()
               if k.startswith("extra.bg_predictor.")}
    assert trained and trained.keys() == exported["bg_predictor"].keys()
    assert all(torch.equal(trained[k], exported["bg_predictor"][k]) for k in trained)
    # trained away from its identity initialisation
    assert exported["bg_predictor"]["bg_encoder.fc.weight"].abs().max() > 0

    path = config.run_dir / "checkpoint.pth.tar"
    auto = TPSMM(checkpoint=path, config="tiny", mode="absolute", background="auto")
    off = TPSMM(checkpoint=path, config="tiny", mode="absolute", background="off")
    assert (auto.describe()["background"], off.describe()["background"]) == ("checkpoint", "off")
    state = auto.inference_bg.state_dict()
    assert all(torch.equal(state[k], exported["bg_predictor"][k].to(state[k])) for k in state)
    clip = mini_dataset.root / "clips" / "man-000" / "frames"
    frames = torch.stack([to_tensor(read_image(f)) for f in sorted(clip.glob("*.png"))[:3]])
    assert len(frames) == 3
    (with_bg,) = auto.animate(frames[0], [frames])
    (without,) = off.animate(frames[0], [frames])
    assert (with_bg - without).abs().max() > 1e-4


# --- torchrun: every trainable family -------------------------------------------------------------


@pytest.mark.parametrize("family", ["fomm", "tpsmm", "fv2v"])
def test_torchrun_two_ranks_train_every_family(tmp_path: Path, mini_dataset, family: str):
    """TPSMM here also has the background predictor from epoch 1 (unused in epoch 0) and its
    frozen AVD network: the parameters DDP would otherwise wait for."""
    cfg = tmp_path / f"{family}.toml"
    cfg.write_text(f"""
name = "ddp"
family = "{family}"
model = "tiny"
output_dir = "{tmp_path / 'runs'}"
[data]
name = "mini"
root = "{mini_dataset.root}"
holdout = 1
pairs_per_clip = 4
identity_sampling = true
fresh_pairs = true
[optim]
steps = 3
batch_size = 1
checkpoint_every = 3
sync_batchnorm = true
[loss]
perceptual_backend = "l1"
bg_start_epoch = 1
discriminator = {'true' if family == 'fv2v' else 'false'}
gan_mode = "hinge"
""")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "THB_PROGRESS": "0"}
    port = {"fomm": 29541, "tpsmm": 29542, "fv2v": 29543}[family]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--master_port", str(port), "-m", "thbench", "train", "--config", str(cfg)]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "weights identical on all 2 ranks" in done.stdout, done.stdout
    assert "SyncBatchNorm runs only on GPUs" in done.stdout
    assert (tmp_path / "runs" / "ddp" / "checkpoint.pth.tar").is_file()


def test_tpsmm_avd_stage_starts_from_a_checkpoint_and_trains_only_the_avd_network(
        tmp_path: Path, mini_dataset):
    from thbench.baselines.tpsmm import TPSMM
    from thbench.baselines.train import train

    torch.manual_seed(3)
    start = tmp_path / "main.pth.tar"
    TPSMM(config="tiny", allow_random_init=True).save(start)
    table = {"name": "avd", "family": "tpsmm", "model": "tiny", "init_from": str(start),
             "output_dir": str(tmp_path / "runs"),
             "data": {"name": "mini", "root": str(mini_dataset.root), "holdout": 1,
                      "pairs_per_clip": 4},
             "optim": {"steps": 2, "batch_size": 2, "lr": 1e-3, "grad_clip": 0.0,
                       "checkpoint_every": 2},
             "loss": {"perceptual_backend": "l1", "stage": "avd"}}
    exported = train(train_config_from_dict(table, "test"))
    before, after = (torch.load(p, weights_only=True) for p in (start, exported))
    for key in ("kp_detector", "dense_motion_network", "inpainting_network"):
        trained = dict(TPSMM(config="tiny", allow_random_init=True).nets[key]
                       .named_parameters()).keys()
        assert all(torch.equal(before[key][n], after[key][n]) for n in trained), key
    assert any(not torch.equal(before["avd_network"][n], after["avd_network"][n])
               for n in before["avd_network"])
    from thbench.hidenerf.train import train as train_hidenerf

    with pytest.raises(ValueError, match="init_from is for the warping baselines"):
        train_hidenerf(train_config_from_dict({"name": "x", "family": "hidenerf",
                                               "init_from": "a"}, "test"))


def test_a_stage_named_by_its_config_is_trained_first_and_recorded_by_its_recipe(
        tmp_path: Path, mini_dataset):
    """init_from naming an earlier stage's training config: that stage trains first into the
    same output folder (reused, not retrained, the second time), the later stage starts from
    its export, and the later stage's recipe holds the earlier one's (no file path, so a
    shipped checkpoint's check holds on any machine)."""
    from thbench.baselines.train import train
    from thbench.training.config import load_train_config
    from thbench.training.shipped import recipe

    common = f"""family = "tpsmm"
model = "tiny"
output_dir = "runs"
[data]
name = "mini"
root = "{mini_dataset.root.as_posix()}"
holdout = 1
pairs_per_clip = 4
[optim]
steps = 2
batch_size = 2
lr = 1e-3
grad_clip = 0.0
checkpoint_every = 2
"""
    (tmp_path / "main.toml").write_text('name = "main"\n' + common +
                                        '[loss]\nperceptual_backend = "l1"\n')
    (tmp_path / "avd.toml").write_text('name = "avd"\ninit_from = "main.toml"\n' + common +
                                       '[loss]\nperceptual_backend = "l1"\nstage = "avd"\n')
    config = load_train_config(tmp_path / "avd.toml")
    exported = train(config)
    first = tmp_path / "runs" / "main" / "checkpoint.pth.tar"
    assert first.is_file() and exported == tmp_path / "runs" / "avd" / "checkpoint.pth.tar"
    from thbench.baselines.tpsmm import TPSMM

    before, after = (torch.load(p, weights_only=True) for p in (first, exported))
    weights = dict(TPSMM(config="tiny", allow_random_init=True).nets["kp_detector"]
                   .named_parameters()).keys()
    assert all(torch.equal(before["kp_detector"][n], after["kp_detector"][n])
               for n in weights)  # the AVD stage starts from stage one's export, keeps it
    assert recipe(config)["init_from"] == recipe(load_train_config(tmp_path / "main.toml"))
    stamp = first.stat().st_mtime_ns
    shutil.rmtree(tmp_path / "runs" / "avd")
    train(load_train_config(tmp_path / "avd.toml"))
    assert first.stat().st_mtime_ns == stamp  # the finished first stage is reused
