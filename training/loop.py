"""The training loop every trainable method uses: one process, one GPU, or many under torchrun.

A model family supplies an :class:`Objective`: an ``nn.Module`` whose ``forward(batch)`` returns
``(losses, visuals)``: weighted scalar losses (their sum is minimised) and image batches for
the logs (``source``, ``driving``, ``output``). :class:`Trainer` does the rest with PyTorch's
own machinery: ``DistributedDataParallel`` when ``WORLD_SIZE`` > 1 (``nccl`` on GPUs, ``gloo``
on CPUs), a seeded sampler that gives every rank its own share of each epoch, Adam, an LR
schedule, gradient clipping, mixed precision on GPUs, TensorBoard scalars and image grids, a
progress bar, and atomic checkpoints (model, optimiser, scheduler, step, RNG states).

Resuming is exact: the data order is a function of (seed, epoch, position), the checkpoint
restores every RNG the step consumes, and the data loader draws from its own generator, so
``--resume`` after step N and an uninterrupted run give the same weights.

An objective with a ``discriminator`` (an ``nn.Module``) and a ``discriminator_loss(visuals,
batch)`` method is trained adversarially: the discriminator has its own optimiser and is frozen
while the generator's losses are computed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from thbench.core import accelerator, atomic
from thbench.core.processes import Process, join
from thbench.core.progress import progress
from thbench.core.seeding import seed_all

logger = logging.getLogger(__name__)


@dataclass
class TrainSettings:
    """Optimisation and logging settings (the ``[optim]`` table of a training config)."""

    steps: int = 1000
    batch_size: int = 4
    """Per process: the effective batch under torchrun is ``batch_size * world size``."""
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    schedule: str = "cosine"
    """``constant``, ``cosine`` (decay to 0 at the last step) or ``step`` (times ``gamma`` at
    each of the ``milestones``, as the official baselines' ``MultiStepLR``), after
    ``warmup_steps`` linear."""
    milestones: tuple[int, ...] = ()
    """Epochs at which the ``step`` schedule multiplies the LR by ``gamma``."""
    gamma: float = 0.1
    epochs: int = 0
    """When > 0 the run is ``epochs`` epochs long and ``steps`` is not used. An epoch is one
    pass over the training items (``len(dataset)``, e.g. clips or identities times
    ``pairs_per_clip``) split between the ranks: ``len(dataset) // (batch_size * world)``
    steps, as the official loaders' ``drop_last`` epochs of the repeated dataset."""
    warmup_steps: int = 0
    weight_decay: float = 0.0
    """Adam's L2 weight decay (``torch.optim.Adam(weight_decay=...)``) on the trained model."""
    grad_clip: float = 1.0
    """Max gradient norm; 0 turns clipping off."""
    grad_clip_norm: float = 2.0
    """The norm clipping measures: 2 (L2) or ``inf`` (max absolute value)."""
    grad_clip_modules: tuple[str, ...] = ()
    """Parameter-name prefixes (e.g. ``nets.kp_detector``) clipped each on its own, and
    nothing else; empty: one clip over all trained parameters."""
    lr_scales: dict[str, float] = field(default_factory=dict)
    """Parameter-name prefix (e.g. ``model.led``) -> LR multiplier: those parameters form
    their own Adam group at ``lr * scale`` (same schedule); the rest keep ``lr``."""
    discriminator_schedule: bool = False
    """The discriminator's LR follows the same schedule (as the official baselines step a
    ``MultiStepLR`` on every optimiser); off: the discriminator keeps ``lr``."""
    sync_batchnorm: bool = False
    """Under DDP on GPUs, BatchNorm statistics over the whole batch across ranks (PyTorch's
    ``SyncBatchNorm``, which runs only on GPUs: on CPUs each rank keeps its own statistics)."""
    amp: str = "bf16"
    """Mixed precision on CUDA: ``bf16``, ``fp16`` (with a gradient scaler) or ``off``.
    Ignored on CPU, where training is always float32."""
    workers: int = 0
    """DataLoader worker processes per rank."""
    log_every: int = 10
    image_every: int = 100
    checkpoint_every: int = 100

    def __post_init__(self) -> None:
        self.betas = (float(self.betas[0]), float(self.betas[1]))
        self.milestones = tuple(int(m) for m in self.milestones)
        self.grad_clip_modules = tuple(self.grad_clip_modules)
        if self.schedule not in ("constant", "cosine", "step"):
            raise ValueError(f"schedule must be constant, cosine or step, not {self.schedule!r}")
        if self.schedule == "step" and not self.milestones:
            raise ValueError("the step schedule needs milestones (epochs)")
        if self.grad_clip_norm not in (2.0, math.inf):
            raise ValueError(f"grad_clip_norm must be 2 or inf, not {self.grad_clip_norm!r}")
        if self.epochs < 0 or self.weight_decay < 0:
            raise ValueError("epochs and weight_decay must not be negative")
        if self.amp not in ("bf16", "fp16", "off"):
            raise ValueError(f"amp must be bf16, fp16 or off, not {self.amp!r}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be positive")



class Objective(nn.Module):
    """What a model family trains: ``forward(batch) -> (losses, visuals)``."""

    find_unused_parameters = False
    """True when some trained parameters may get no gradient in a step (DDP must know)."""

    def set_epoch(self, epoch: int) -> None:
        """Called before every step with its epoch (``step // steps_per_epoch``), for
        epoch-scheduled parts of a recipe; the default ignores it."""

    def forward(self, batch: dict[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        raise NotImplementedError


class EpochBatches(Sampler[list[int]]):
    """Endless batches: epoch ``e`` is ``DistributedSampler(seed, epoch=e)``'s order for this
    rank, cut into full batches; starts at ``start`` batches into the run (for resuming).

    A dataset with ``fresh_draws = True`` receives ``epoch * len(dataset) + i`` for its item
    ``i``: it can draw new random content for every epoch from that number alone (and stay
    the same for a resumed run, in any worker process)."""

    def __init__(self, dataset: Dataset, batch_size: int, process: Process, seed: int,
                 start: int = 0) -> None:
        self.sampler = DistributedSampler(dataset, process.world, process.rank, shuffle=True,
                                          seed=seed, drop_last=True)
        self.batch_size = batch_size
        self.per_epoch = len(self.sampler) // batch_size
        if self.per_epoch == 0:
            raise ValueError(f"dataset of {len(dataset)} items is too small for batches of "
                             f"{batch_size} on {process.world} process(es)")
        self.start = start
        self.fresh = bool(getattr(dataset, "fresh_draws", False))
        self.size = len(dataset)

    def __iter__(self) -> Iterator[list[int]]:
        epoch, position = divmod(self.start, self.per_epoch)
        while True:
            self.sampler.set_epoch(epoch)
            order = list(self.sampler)
            if self.fresh:
                order = [epoch * self.size + i for i in order]
            for index in range(position, self.per_epoch):
                yield order[index * self.batch_size:(index + 1) * self.batch_size]
            epoch, position = epoch + 1, 0

    def __len__(self) -> int:  # DataLoader asks; the stream is endless
        return 2**62


RESUME_MUST_MATCH = ("batch_size", "lr", "betas", "schedule", "warmup_steps", "grad_clip", "amp",
                     "milestones", "gamma", "weight_decay", "grad_clip_norm",
                     "grad_clip_modules", "sync_batchnorm", "discriminator_schedule", "lr_scales")
"""Settings a resumed run must share with its checkpoint: they change the optimisation.
(A checkpoint from before a setting existed counts as having its default.)"""


def convert_batchnorm(module: nn.Module, process: Process) -> bool:
    """Replace ``module``'s BatchNorm layers by ``SyncBatchNorm`` in place when the job runs
    on several GPUs; returns whether it did. The parameters and buffers are kept (the same
    tensors, the same state-dict names), so optimisers and checkpoints are unaffected."""
    if process.world == 1 or process.device.type != "cuda":
        return False
    for name, child in list(module.named_children()):
        module.add_module(name, nn.SyncBatchNorm.convert_sync_batchnorm(child))
    return True


def _comparable(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value


def _logged_step(line: str) -> float:
    """The step of a ``scalars.jsonl`` line; a torn or empty line counts as after any step."""
    try:
        return json.loads(line)["step"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return math.inf


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
             "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def image_grid(visuals: dict[str, Tensor], rows: int = 4) -> Tensor:
    """source | driving | output (| more) side by side for the first ``rows`` samples:
    (3, rows * H, columns * W) in [0, 1]."""
    from torchvision.utils import make_grid

    size = visuals["output"].shape[-2:]
    columns = [nn.functional.interpolate(v[:rows].detach().float(), size=size, mode="bilinear",
                                         align_corners=False).clamp(0, 1)
               for v in visuals.values()]
    tiles = torch.stack(columns, 1).flatten(0, 1).cpu()
    return make_grid(tiles, nrow=len(columns), padding=2)


class Trainer:
    """Train ``objective`` on ``dataset`` into ``run_dir``.

    ``run_dir`` receives ``checkpoints/last.pt`` (everything needed to resume), ``tb/``
    (TensorBoard), ``scalars.jsonl`` (the logged scalars, one JSON object per line).
    ``distributed=False`` keeps a single process even under torchrun (used when the benchmark
    trains a method on rank 0 only).
    """

    def __init__(self, objective: Objective, dataset: Dataset, settings: TrainSettings,
                 run_dir: str | os.PathLike, *, seed: int = 0, device: str = "cpu",
                 distributed: bool = True) -> None:
        self.settings, self.seed = settings, seed
        self.run_dir = Path(run_dir)
        self.process = join(device) if distributed else Process(device=torch.device(device))
        accelerator.configure(self.process.device, "train")
        self.objective = objective.to(self.process.device)
        self.dataset = dataset
        self.discriminator: nn.Module | None = getattr(objective, "discriminator", None)
        generator_params = [(n, p) for n, p in objective.named_parameters()
                            if not n.startswith("discriminator.") and p.requires_grad]
        self.optimizer = torch.optim.Adam(self._lr_groups(generator_params), lr=settings.lr,
                                          betas=settings.betas,
                                          weight_decay=settings.weight_decay)
        self.clip_groups = self._clip_groups(
            [(n, p) for n, p in objective.named_parameters() if p.requires_grad
             and not n.startswith("discriminator.")])
        self.steps_per_epoch = EpochBatches(dataset, settings.batch_size, self.process,
                                            seed).per_epoch
        self.total_steps = (settings.epochs * self.steps_per_epoch if settings.epochs
                            else settings.steps)
        self.disc_optimizer = (
            torch.optim.Adam(self.discriminator.parameters(), lr=settings.lr,
                             betas=settings.betas) if self.discriminator is not None else None)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.disc_scheduler = (
            torch.optim.lr_scheduler.LambdaLR(self.disc_optimizer, self._lr_factor)
            if self.disc_optimizer is not None and settings.discriminator_schedule else None)
        cuda = self.process.device.type == "cuda"
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(settings.amp) \
            if cuda else None
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.step = 0

    # -- schedule -----------------------------------------------------------------------------
    def _lr_factor(self, step: int) -> float:
        s = self.settings
        if step < s.warmup_steps:
            return (step + 1) / s.warmup_steps
        if s.schedule == "constant":
            return 1.0
        if s.schedule == "step":  # MultiStepLR stepped at the end of every epoch
            epoch = step // self.steps_per_epoch
            return s.gamma ** sum(epoch >= m for m in s.milestones)
        progress = (step - s.warmup_steps) / max(1, self.total_steps - s.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    def _lr_groups(self, named: list[tuple[str, nn.Parameter]]) -> list[dict[str, Any]]:
        """Adam's parameter groups: one per ``lr_scales`` prefix, then the rest at ``lr``."""
        groups, taken = [], set()
        for prefix, scale in self.settings.lr_scales.items():
            params = [p for n, p in named if n == prefix or n.startswith(prefix + ".")]
            if not params:
                raise ValueError(f"lr_scales: no trained parameter under {prefix!r}")
            groups.append({"params": params, "lr": self.settings.lr * float(scale)})
            taken.update(map(id, params))
        groups.append({"params": [p for _, p in named if id(p) not in taken]})
        return groups

    def _clip_groups(self, named: list[tuple[str, nn.Parameter]]) -> list[list[nn.Parameter]]:
        """The parameter groups clipped each on its own (see ``grad_clip_modules``)."""
        prefixes = self.settings.grad_clip_modules
        if not prefixes:
            return [[p for _, p in named]]
        groups = []
        for prefix in prefixes:
            group = [p for n, p in named if n == prefix or n.startswith(prefix + ".")]
            if not group:
                raise ValueError(f"grad_clip_modules: no trained parameter under {prefix!r}; "
                                 f"top-level names: {sorted({n.split('.')[0] for n, _ in named})}")
            groups.append(group)
        return groups

    # -- checkpoints --------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoints" / "last.pt"

    def state_dict(self) -> dict[str, Any]:
        state = {
            "step": self.step, "seed": self.seed, "settings": asdict(self.settings),
            "objective": self.objective.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
        }
        if self.disc_optimizer is not None:
            state["disc_optimizer"] = self.disc_optimizer.state_dict()
        if self.disc_scheduler is not None:
            state["disc_scheduler"] = self.disc_scheduler.state_dict()
        return state

    def save(self) -> None:
        """Rank 0 writes ``last.pt``, every rank its RNG states beside it; each atomically.
        ``last.pt`` is written last, so a complete one always has its RNG files."""
        folder = self.checkpoint_path.parent
        atomic.torch_save({"step": self.step, "rng": rng_state()},
                          folder / f"rng-rank{self.process.rank}.pt")
        if self.process.world > 1:
            dist.barrier()
        if self.process.main:
            atomic.torch_save(self.state_dict(), self.checkpoint_path)

    def start(self, resume: bool) -> None:
        """Continue from ``last.pt`` when ``resume`` (a fresh start where there is none); a
        run folder that holds a checkpoint is never overwritten without ``resume``."""
        if not self.checkpoint_path.is_file():
            return
        # on the CPU: load_state_dict moves weights and Adam's moments to the parameters'
        # device but keeps Adam's step counters on the CPU, as a fresh run has them (on the GPU
        # they would cost two host syncs per parameter per step)
        state = torch.load(self.checkpoint_path, map_location="cpu", weights_only=False)
        if not resume:
            raise FileExistsError(f"{self.checkpoint_path}: this run already has a checkpoint "
                                  f"(step {state['step']}); pass --resume to continue it, or "
                                  "choose another run name")
        if state["seed"] != self.seed:
            raise ValueError(f"{self.checkpoint_path}: written with seed {state['seed']}, "
                             f"this run has seed {self.seed}")
        now, default = asdict(self.settings), asdict(TrainSettings())
        changed = sorted(k for k in RESUME_MUST_MATCH
                         if _comparable(state["settings"].get(k, default[k]))
                         != _comparable(now[k]))
        if changed:
            raise ValueError(f"{self.checkpoint_path}: the run was made with other "
                             f"{', '.join(changed)} than this config; resuming would mix two "
                             "runs (only steps and logging may change)")
        self.objective.load_state_dict(state["objective"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.disc_optimizer is not None:
            self.disc_optimizer.load_state_dict(state["disc_optimizer"])
        if self.disc_scheduler is not None:
            self.disc_scheduler.load_state_dict(state["disc_scheduler"])
        self.step = state["step"]
        rng_file = self.checkpoint_path.parent / f"rng-rank{self.process.rank}.pt"
        rng = torch.load(rng_file, weights_only=False) if rng_file.is_file() else None
        if rng is None or rng["step"] != self.step:
            raise ValueError(f"{rng_file}: missing or not from step {self.step}; resume with "
                             "the same number of processes the run was saved with")
        set_rng_state(rng["rng"])
        self._drop_scalars_after(self.step)

    def _drop_scalars_after(self, step: int) -> None:
        """Forget ``scalars.jsonl`` lines an interrupted run wrote after its checkpoint."""
        path = self.run_dir / "scalars.jsonl"
        if not self.process.main or not path.is_file():
            return
        lines = [line for line in path.read_text().splitlines() if _logged_step(line) <= step]
        atomic.write_text(path, "".join(line + "\n" for line in lines))

    def _offset_rng_by_rank(self) -> None:
        """Ranks draw different random numbers (augmentations, sampling) from one seed."""
        if self.process.rank:
            torch.manual_seed(int(torch.randint(0, 2**62, ())) + self.process.rank)

    # -- the loop -----------------------------------------------------------------------------
    def _loader(self) -> DataLoader:
        batches = EpochBatches(self.dataset, self.settings.batch_size, self.process, self.seed,
                               start=self.step)
        return DataLoader(self.dataset, batch_sampler=batches, num_workers=self.settings.workers,
                          generator=torch.Generator().manual_seed(self.seed),
                          persistent_workers=False,
                          pin_memory=self.process.device.type == "cuda")

    def _autocast(self):
        if self.amp_dtype is None:
            return torch.autocast("cpu", enabled=False)
        return torch.autocast("cuda", dtype=self.amp_dtype)

    def fit(self, stop_at: int | None = None) -> dict[str, float]:
        """Train until ``settings.steps`` (or ``stop_at``, keeping the schedule of the full run)
        and return the last step's losses. Checkpoints every ``checkpoint_every`` steps and at
        the end."""
        s = self.settings
        end = min(self.total_steps, stop_at) if stop_at is not None else self.total_steps
        if self.step == 0:
            seed_all(self.seed)
            self._offset_rng_by_rank()
        model = self.objective
        if self.discriminator is not None:
            self.discriminator.requires_grad_(False)  # kept out of DDP's gradient buckets
        if self.process.world > 1:
            if s.sync_batchnorm and not convert_batchnorm(self.objective, self.process) \
                    and self.process.main:
                logger.info("sync_batchnorm: PyTorch's SyncBatchNorm runs only on GPUs; on "
                            "CPUs every rank normalises with its own batch statistics")
            ids = [self.process.device.index] if self.process.device.type == "cuda" else None
            model = DistributedDataParallel(
                self.objective, device_ids=ids,
                find_unused_parameters=self.objective.find_unused_parameters)
        writer = self._writer()
        bar = self._progress(end)
        model.train()
        last: dict[str, float] = {}
        started, first_step = time.perf_counter(), self.step
        batches = iter(self._loader()) if self.step < end else iter(())
        while self.step < end:
            batch = {k: v.to(self.process.device, non_blocking=True) if isinstance(v, Tensor)
                     else v for k, v in next(batches).items()}
            self.objective.set_epoch(self.step // self.steps_per_epoch)
            last, visuals = self._train_step(model, batch)
            self.step += 1
            rate = (self.step - first_step) / (time.perf_counter() - started)
            if self.process.main:
                bar.set_postfix(loss=f"{last['total']:.4f}", steps_per_s=f"{rate:.2f}")
                bar.update(1)
                if self.step % s.log_every == 0 or self.step == end:
                    self._log_scalars(writer, last | {"lr": self.scheduler.get_last_lr()[0],
                                                      "steps_per_s": rate} | self._memory())
                if writer is not None and (self.step % s.image_every == 0 or self.step == end):
                    writer.add_image("source|driving|output", image_grid(visuals), self.step)
            if self.step % s.checkpoint_every == 0 or self.step == end:
                self.save()
        bar.close()
        if writer is not None:
            writer.close()
        if self.process.world > 1:
            self.check_replicas()
        self.objective.eval()
        return last

    def check_replicas(self) -> str:
        """Raise unless every rank holds bit-identical parameters; returns their sha256.

        Only parameters: DDP keeps them in sync. Buffers (BatchNorm running statistics) are
        broadcast from rank 0 before each forward pass and then updated locally, and rank 0's
        are the ones saved."""
        digest = hashlib.sha256()
        for name, param in sorted(self.objective.named_parameters()):
            digest.update(name.encode())
            digest.update(param.detach().cpu().contiguous().numpy().tobytes())
        mine = digest.hexdigest()
        everyone: list[str | None] = [None] * self.process.world
        dist.all_gather_object(everyone, mine)
        if len(set(everyone)) != 1:
            raise RuntimeError(f"ranks hold different weights after step {self.step}: "
                               f"{everyone}")
        if self.process.main:
            logger.info(f"weights identical on all {self.process.world} ranks "
                        f"(sha256 {mine[:16]}) at step {self.step}")
        return mine

    def _train_step(self, model: nn.Module, batch: dict) -> tuple[dict[str, float], dict]:
        if self.discriminator is not None:
            self.discriminator.requires_grad_(False)
        with self._autocast():
            losses, visuals = model(batch)
            total = sum(losses.values())
        # one host sync per step for every logged value and the finite check
        numbers = torch.stack([v.detach().float() for v in (*losses.values(), total)]).tolist()
        values = dict(zip([*losses, "total"], numbers, strict=True))
        if not math.isfinite(values["total"]):
            raise FloatingPointError(f"step {self.step}: non-finite loss "
                                     f"{ {k: values[k] for k in losses} }")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        if self.settings.grad_clip:
            self.scaler.unscale_(self.optimizer)
            for group in self.clip_groups:
                nn.utils.clip_grad_norm_(group, self.settings.grad_clip,
                                         norm_type=self.settings.grad_clip_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        if self.discriminator is not None:
            values["discriminator"] = self._discriminator_step(visuals, batch)
            values["total"] = values.pop("total")  # logged last, as always
        return values, visuals

    def _discriminator_step(self, visuals: dict, batch: dict) -> float:
        self.discriminator.requires_grad_(True)
        with self._autocast():
            loss = self.objective.discriminator_loss(visuals, batch)
        self.disc_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.process.world > 1:  # average the discriminator's gradients by hand
            for param in self.discriminator.parameters():
                if param.grad is not None:
                    dist.all_reduce(param.grad)
                    param.grad /= self.process.world
        self.disc_optimizer.step()
        if self.disc_scheduler is not None:
            self.disc_scheduler.step()
        return float(loss.detach())

    # -- logs ---------------------------------------------------------------------------------
    def _writer(self):
        if not self.process.main:
            return None
        from torch.utils.tensorboard import SummaryWriter

        # a resumed run drops the events an interrupted run logged after its checkpoint
        return SummaryWriter(str(self.run_dir / "tb"), purge_step=self.step + 1 if self.step
                             else None)

    def _memory(self) -> dict[str, float]:
        """The peak CUDA memory so far, logged beside the losses (nothing on the CPU)."""
        if self.process.device.type != "cuda":
            return {}
        return {"cuda_peak_mib": torch.cuda.max_memory_allocated(self.process.device) / 2**20}

    def _log_scalars(self, writer, values: dict[str, float]) -> None:
        for key, value in values.items():
            writer.add_scalar(f"train/{key}", value, self.step)
        with (self.run_dir / "scalars.jsonl").open("a") as handle:
            handle.write(json.dumps({"step": self.step} | values) + "\n")

    def _progress(self, end: int):
        return progress(total=end, initial=self.step, desc="train", unit="step",
                        enabled=self.process.main)
