"""Per-frame 3DMM fits of a prepared clip, the inputs of SECC maps, cached as ``fits.npz``.

Fitted from the clip's recorded landmarks (no second detection) with one identity shared by the
clip's frames (:meth:`thbench.facegeom.fitting.Fitter.fit_clip`): a SECC map is the source identity
with a frame's expression, so the identity must not drift from frame to frame. Arrays, NaN on frames
without a face: ``has_face`` (T,), ``identity`` (63,), ``expression`` (T, 6), ``pose`` (T, 3)
yaw/pitch/roll in degrees, ``rotation`` (T, 3, 3), ``translation`` (T, 3), ``scale`` (T,),
``reprojection_iod`` (T,); ``backend`` names the fitter and its lambdas.
"""

from __future__ import annotations

import io

import numpy as np

from thbench.core import atomic
from thbench.datasets.clip import Clip
from thbench.facegeom.fitting import Fitter

FITS_FILE = "fits.npz"


def read_fits(clip: Clip) -> dict[str, np.ndarray]:
    with np.load(clip.folder / FITS_FILE, allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def has_fits(clip: Clip, backend: str) -> bool:
    """True when the clip's fits exist and were made by ``backend``."""
    if not (clip.folder / FITS_FILE).is_file():
        return False
    return str(read_fits(clip)["backend"]) == backend


def fit_clip(clip: Clip, fitter: Fitter) -> None:
    """Write the clip's ``fits.npz`` unless it exists from the same fitter."""
    if has_fits(clip, fitter.backend):
        return
    records = clip.faces()
    count = len(records)
    out = {
        "has_face": np.array([r.face for r in records], bool),
        "identity": np.full(63, np.nan, np.float32),
        "expression": np.full((count, 6), np.nan, np.float32),
        "pose": np.full((count, 3), np.nan, np.float32),
        "rotation": np.full((count, 3, 3), np.nan, np.float32),
        "translation": np.full((count, 3), np.nan, np.float32),
        "scale": np.full(count, np.nan, np.float32),
        "reprojection_iod": np.full(count, np.nan, np.float32),
        "backend": np.array(fitter.backend),
    }
    frames = [r.frame for r in records if r.face]
    if frames:
        size = clip.info.size
        fits = fitter.fit_clip([np.asarray(records[i].landmarks) for i in frames], size, size)
        out["identity"] = fits[0].identity.astype(np.float32)
        for frame, fit in zip(frames, fits, strict=True):
            out["expression"][frame] = fit.expression
            out["pose"][frame] = (fit.yaw, fit.pitch, fit.roll)
            out["rotation"][frame] = fit.rotation
            out["translation"][frame] = fit.translation
            out["scale"][frame] = fit.scale
            out["reprojection_iod"][frame] = fit.reprojection_iod
    buffer = io.BytesIO()
    np.savez(buffer, **out)
    atomic.write_bytes(clip.folder / FITS_FILE, buffer.getvalue())
