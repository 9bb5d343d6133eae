"""Identity metrics from face embeddings: CSIM (vs the source) and FOMM-style ``aed_identity``.

The embedding network is chosen explicitly (``backend="dlib"`` or ``"arcface"``); it is read from
the frame analyses (``FrameAnalysis.dlib_descriptor`` / ``.arcface``), so the analyzer must be
built with that part. A missing ArcFace model makes the metric skipped (``available()``), never a
silent switch to dlib.

- ``csim``: cosine similarity between the embeddings of each generated frame and of the source
  image, averaged over every frame (the source has a face); higher is better; both protocols.
- ``aed_identity``: FOMM / Monkey-Net "AED" as the papers name it: the Euclidean distance between
  the embeddings of each generated frame and its ground-truth frame, averaged over the frames
  whose ground truth has a face; lower is better; same-identity only.
- ``aed_fomm``: what FOMM's public evaluation code computes (AliaksandrSiarohin/pose-evaluation,
  ``cmp.py`` at commit 5a5c45e "Add all the metrics", unchanged at HEAD 1bc4cae): per frame the
  *squared* Euclidean distance ``sum((e_gt - e_gen) ** 2)``, averaged over *every* frame. Its
  ``extract.py`` embeds the whole frame (no detection), so no frame is ever dropped; ours does
  the same (``dlib_frame`` / ``arcface_frame``: the whole frame resized to the network's input).
  FOMM used OpenFace; ours come from the chosen backend: FOMM's formula and frames, not its
  network. A paper-compatible variant: ``ranking = False``.

A generated frame where dlib finds no face is embedded inside the reference frame's face box
(``FrameAnalysis.in_reference_box``): the embedding networks give a garbage output a garbage
embedding, far from every identity, so no chance floor is needed; ArcFace metrics thus never
disappear with dlib's frontal detector.

ArcFace embeddings are L2-normalised before any distance or cosine (as insightface's
``normed_embedding``); dlib descriptors are used as dlib returns them. Neither AED is the 3DMM
expression distance -- that is ``aed_3dmm``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from thbench.datasets.protocols import ALL_PROTOCOLS, RECONSTRUCTION
from thbench.eval.metrics.face import FaceFrameMetric, FommFormula

FIELDS = {"dlib": "dlib_descriptor", "arcface": "arcface"}


FOMM_CMP = "pose-evaluation cmp.py@5a5c45e (sum of squared differences)"


def squared_distance(a: np.ndarray, b: np.ndarray) -> float:
    """``sum((a - b) ** 2)``, the per-frame distance of FOMM's ``cmp.py``."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(((a - b) ** 2).sum())


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


class _EmbeddingMetric(FaceFrameMetric):
    fields = FIELDS
    """Embedding backend -> the ``FrameAnalysis`` field holding its vector."""
    analysis_parts = {"dlib": "dlib", "arcface": "arcface"}
    """Embedding backend -> the ``FaceAnalyzer`` part that fills that field."""

    def __init__(self, backend: str = "dlib", model_path: str | None = None) -> None:
        if backend not in FIELDS:
            raise ValueError(f"identity backend must be one of {sorted(FIELDS)}, got {backend!r}")
        self.embedding, self.model_path = backend, model_path
        self.parts = (self.analysis_parts[backend],)
        self.backend_keys = self.parts
        super().__init__()

    def _network(self) -> Any:
        from thbench.facegeom import identity

        if self.embedding == "dlib":
            return identity.DlibDescriptor()
        return identity.ArcFace(self.model_path)

    def default_backend(self) -> str:
        return f"{self.embedding}={self._network().backend}"

    def available(self) -> str:
        return self._network().available()

    def _embedding(self, analysis: Any) -> np.ndarray:
        vector = getattr(analysis, self.fields[self.embedding], None)
        if vector is None:
            raise ValueError(
                f"{self.name}: the frame analysis has no {self.fields[self.embedding]!r}; build "
                f"the FaceAnalyzer with parts including {self.parts[0]!r}"
            )
        vector = np.asarray(vector, np.float64)
        if self.embedding == "arcface":
            vector = vector / np.linalg.norm(vector)
        return vector


class CSIM(_EmbeddingMetric):
    """Cosine similarity of identity embeddings, generated frame vs source image."""

    name = "csim"
    higher_is_better = True
    protocols = ALL_PROTOCOLS
    reference = "source"

    def value(self, generated: Any, reference: Any) -> float:
        return cosine(self._embedding(generated), self._embedding(reference))

    def chance(self, reference: Any) -> float:
        """An output with no face carries no identity: cosine 0 (an orthogonal embedding)."""
        return 0.0


class AEDIdentity(_EmbeddingMetric):
    """FOMM's AED as the papers define it: Euclidean distance of identity embeddings, generated
    vs ground truth (lower better)."""

    name = "aed_identity"
    higher_is_better = False
    protocols = RECONSTRUCTION
    reference = "ground_truth"

    def value(self, generated: Any, reference: Any) -> float:
        return float(np.linalg.norm(self._embedding(generated) - self._embedding(reference)))

    def chance(self, reference: Any) -> float:
        """The distance to an orthogonal embedding of the same length (as CSIM's 0)."""
        return float(np.sqrt(2.0) * np.linalg.norm(self._embedding(reference)))


WHOLE_FRAME_FIELDS = {"dlib": "dlib_frame", "arcface": "arcface_frame"}
"""Embedding backend -> the whole-frame embedding's field (and ``FaceAnalyzer`` part)."""


class AEDFomm(FommFormula, AEDIdentity):
    """AED as FOMM's ``pose-evaluation/cmp.py`` (commit 5a5c45e) computes it: the squared
    Euclidean distance of whole-frame identity embeddings, generated vs ground truth, over every
    frame (lower better)."""

    name = "aed_fomm"
    fomm_script = FOMM_CMP
    fields = analysis_parts = WHOLE_FRAME_FIELDS

    def value(self, generated: Any, reference: Any) -> float:
        return squared_distance(self._embedding(generated), self._embedding(reference))

    def present(self, analysis: Any) -> bool:
        return True  # cmp.py never drops a frame: the whole frame is embedded, face or not
