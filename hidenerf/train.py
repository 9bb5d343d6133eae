"""Train HiDe-NeRF from a training config (``python -m thbench train --config FILE``).

Pairs are a source and a driving frame of the same clip, a share ``[data] expression_pairs`` of
them drawn among changes of mouth opening (:mod:`thbench.hidenerf.pairs`). Every
clip is fitted once with the 3DMM (:mod:`thbench.datasets.fits`, kept in the clip folder): frames
without a face are never drawn; the source SECC has the clip's identity and the source's
expression, the driving SECC the same identity and the driving expression; the source fit's
camera registers the tri-planes with the source image and the driving fit's camera (rotation,
translation and scale) renders the output.

The run folder (``<output_dir>/<name>``) holds ``config.json`` (the config as run, and what was
resolved at run time), ``checkpoints/`` (resume state), ``tb/`` (TensorBoard), ``scalars.jsonl``,
``heldout.json`` (L1 on the held-out frames before and after training) and ``model.pt``, a
checkpoint ``python -m thbench animate`` and the benchmark load.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import Dataset

from thbench.core import atomic
from thbench.core.resampling import resize
from thbench.datasets.clip import Clip
from thbench.datasets.fits import fit_clip, read_fits
from thbench.datasets.frame_pairs import load_frame, split_frames
from thbench.hidenerf.checkpoint import save_checkpoint
from thbench.hidenerf.config import HiDeNeRFConfig, get_config
from thbench.hidenerf.critics import load_identity_network
from thbench.hidenerf.geometry import fit_camera, posed_secc
from thbench.hidenerf.losses import HiDeNeRFLossWeights, HiDeNeRFObjective, resolve_perceptual
from thbench.hidenerf.model import HiDeNeRF, animate_batch
from thbench.hidenerf.pairs import ExpressionPairs
from thbench.training.config import (
    TrainConfig,
    open_training_data,
    start_trainer,
    write_resolved_config,
)
from thbench.training.loop import Process

logger = logging.getLogger(__name__)


class FaceFits:
    """The clips' 3DMM fits (:mod:`thbench.datasets.fits`: one identity per clip, an expression and
    a head pose per frame, from the landmarks recorded at preparation), written into each clip
    folder as ``fits.npz`` the first time."""

    def __init__(self, clips: list[Clip]) -> None:
        from thbench.facegeom.fitting import Fitter

        fitter = Fitter()
        reason = fitter.available()
        if reason:
            raise ValueError(f"HiDe-NeRF training needs 3DMM fits: {reason}")
        for clip in clips:
            fit_clip(clip, fitter)
        self.fits = {clip.clip_id: read_fits(clip) for clip in clips}

    def has_face(self, clip: Clip, index: int) -> bool:
        return bool(self.fits[clip.clip_id]["has_face"][index])

    def __getitem__(self, clip: Clip) -> dict[str, np.ndarray]:
        return self.fits[clip.clip_id]


class HiDeNeRFPairs(Dataset):
    """Frame pairs plus their SECC maps and the source and driving head cameras (see the module
    doc)."""

    def __init__(self, pairs: ExpressionPairs, fits: FaceFits, config: HiDeNeRFConfig) -> None:
        self.pairs, self.fits, self.config = pairs, fits, config

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return self.item(*self.pairs.pair(index))

    def item(self, clip: Clip, source: int, driving: int) -> dict[str, Tensor]:
        from thbench.facegeom.secc import render_secc_batch

        c, fits = self.config, self.fits[clip]
        identity = np.stack([fits["identity"]] * 2)
        expression = fits["expression"][[source, driving]]
        secc = render_secc_batch(identity, expression, c.secc_size)
        frame = clip.info.size
        cameras = [fit_camera(fits["rotation"][i], fits["translation"][i], fits["scale"][i],
                              frame, frame, c.secc_span, c.focal, c.cam_distance)
                   for i in (source, driving)]
        posed = posed_secc(identity[:1], expression[:1], cameras[0], c.encoder_size, c.secc_span)
        size = self.pairs.size
        return {"source": load_frame(clip, source, size),
                "driving": load_frame(clip, driving, size),
                "posed_secc": posed[0], "source_secc": secc[0], "driving_secc": secc[1],
                "source_camera": cameras[0].vector()[0],
                "driving_camera": cameras[1].vector()[0],
                "mouth_box": torch.from_numpy(self.pairs.mouth_box(clip, driving))}


@torch.no_grad()
def heldout_l1(model: HiDeNeRF | None, data: HiDeNeRFPairs, heldout: dict[str, list[int]],
               device: torch.device) -> float:
    """Mean L1 (on [0, 1] RGB at the model's output size) over every held-out frame, each
    animated from its clip's first training frame; ``model=None``: source-copy (the source
    frame itself) on the same frames."""
    objective_mode = model.training if model is not None else False
    if model is not None:
        model.eval()
    size = data.config.image_size
    errors = []
    for clip in data.pairs.clips:
        source = data.pairs.frames[clip.clip_id][0]
        for driving in heldout.get(clip.clip_id, []):
            item = {k: v[None].to(device) for k, v in data.item(clip, source, driving).items()}
            image = (animate_batch(model, item)["image"] if model is not None
                     else resize(item["source"], size))
            errors.append(float((image - resize(item["driving"], size)).abs().mean()))
    if model is not None:
        model.train(objective_mode)
    if not errors:
        raise ValueError("no held-out frame with a face; raise `holdout`")
    return float(np.mean(errors))


def _fits(clips: list[Clip], process: Process) -> FaceFits:
    """Rank 0 fits every clip first (or finds its fits); the others then read them."""
    if not process.main:
        dist.barrier()
    fits = FaceFits(clips)
    if process.main and process.world > 1:
        dist.barrier()
    return fits


def build_training(config: TrainConfig, clips: list, fits: FaceFits, device: torch.device):
    """The model, its objective, the training pairs and the held-out frames of every clip
    (``(model, objective, data, heldout)``), as ``train`` and the sanity benchmark use them."""
    frames, heldout = {}, {}
    for clip in clips:
        frames[clip.clip_id], heldout[clip.clip_id] = split_frames(
            clip, config.data.holdout, lambda i, c=clip: fits.has_face(c, i))
    model_config = get_config(config.model, seed=config.seed)
    pairs = ExpressionPairs(clips, frames, config.data.pairs_per_clip, config.seed,
                            model_config.image_size, fresh=config.data.fresh_pairs,
                            expression_share=config.data.expression_pairs)
    data = HiDeNeRFPairs(pairs, fits, model_config)
    weights = HiDeNeRFLossWeights.from_dict(config.loss, f"{config.name} [loss]")
    model = HiDeNeRF(model_config)
    identity = load_identity_network(device) if weights.identity else None
    objective = HiDeNeRFObjective(model, weights, resolve_perceptual(weights, device), identity)
    return model, objective, data, heldout


def train(config: TrainConfig, *, resume: bool = False, stop_at: int | None = None,
          distributed: bool = True) -> Path:
    """Train (or continue, with ``resume``) and return ``<run>/model.pt``. A finished run is
    not trained again. Logs the held-out L1 at step 0 and at the end."""
    if config.family != "hidenerf":
        raise ValueError(f"{config.name}: family {config.family!r} is not hidenerf")
    if config.init_from:
        raise ValueError(f"{config.name}: init_from is for the warping baselines")
    process, clips = open_training_data(config, distributed)
    exported = config.exported
    model, objective, data, heldout = build_training(config, clips, _fits(clips, process),
                                                     process.device)
    trainer = start_trainer(config, objective, data, process, resume=resume,
                            distributed=distributed)
    if trainer.step >= config.optim.steps and exported.is_file():
        logger.info(f"{config.name}: already trained ({exported})")
        return exported
    write_resolved_config(config, {"perceptual_backend": objective.perceptual_backend,
                                   "identity_backend": objective.identity_backend}, process)
    record_path = config.run_dir / "heldout.json"
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    if process.main and "step_0" not in record:
        record["source_copy"] = heldout_l1(None, data, heldout, process.device)
        record["step_0"] = heldout_l1(model, data, heldout, process.device)
    trainer.fit(stop_at)
    if process.main:
        record[f"step_{trainer.step}"] = heldout_l1(model, data, heldout, process.device)
        atomic.write_json(record_path, record)
        save_checkpoint(exported, model, step=trainer.step)
        logger.info(f"{config.name}: held-out L1 {record['step_0']:.4f} at step 0, "
                    f"{record[f'step_{trainer.step}']:.4f} at step {trainer.step}, source-copy "
                    f"{record['source_copy']:.4f} "
                    f"({sum(map(len, heldout.values()))} frames); checkpoint {exported}")
    return exported
