"""``aed_fomm`` and ``akd_fomm`` equal FOMM's pose-evaluation scripts, frame for frame.

The expected values in ``tests/data/pose_evaluation_parity.json`` were produced by running
pose-evaluation's own ``cmp.py`` and ``cmp_kp.py`` (AliaksandrSiarohin/pose-evaluation at HEAD
1bc4cae; both files unchanged since 5a5c45e "Add all the metrics"), outside this repository, on
the per-frame values our pipeline extracts from :func:`parity_frames` (whole-frame dlib
descriptors for ``cmp.py``, dlib 68 landmarks, ``None`` where no face is found, for
``cmp_kp.py``), pickled in the scripts' format (``file_name``, ``frame_number``, ``value``):
once for all frames (the scripts' printed mean) and once per frame. The last generated frame is
grey (no face): ``cmp.py`` keeps it, ``cmp_kp.py`` leaves it out. Only the numbers are stored; the
scripts' code is not part of this project.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from thbench.eval.metrics import build_metrics
from thbench.eval.metrics.base import FrameBatch

EXPECTED = Path(__file__).parent / "data" / "pose_evaluation_parity.json"


def parity_frames(pyfeat_data: Path) -> tuple[np.ndarray, np.ndarray]:
    """(ground truth, generated): 4 real 256 x 256 frames each; the generated ones are the
    same video 3 samples later, and the last generated frame is grey (no face)."""
    from PIL import Image

    from thbench.core.media import iter_video

    video = list(itertools.islice(iter_video(pyfeat_data / "WolfgangLanger_Pexels.mp4"), 0, 40, 5))
    frames = np.stack([np.asarray(Image.fromarray(f[60:600, 180:720]).resize((256, 256)))
                       for f in video])
    truth, generated = frames[:4].copy(), frames[3:7].copy()
    generated[3] = 128
    return truth, generated


@pytest.fixture(scope="module")
def analysed(pyfeat_data: Path) -> tuple[list, list]:
    pytest.importorskip("dlib")
    from thbench.facegeom.analysis import FaceAnalyzer

    truth, generated = parity_frames(pyfeat_data)
    analyzer = FaceAnalyzer(parts=("dlib_frame",), strict=True)
    return analyzer.analyze_batch(truth), analyzer.analyze_batch(generated)


def _metric(name: str, truth: list, generated: list):
    (metric,) = build_metrics([name])
    frames = torch.zeros(len(generated), 3, 8, 8)
    roles = {"generated": generated, "driving": truth, "ground_truth": truth}
    metric.update(FrameBatch(generated=frames, driving=frames, source=frames[0],
                             ground_truth=frames, context={"analyses": roles.__getitem__}))
    return metric.compute()


def test_inputs_include_a_frame_without_a_face(analysed) -> None:
    truth, generated = analysed
    assert all(r.has_face for r in truth)
    assert [r.has_face for r in generated] == [True, True, True, False]
    assert all(r.dlib_frame is not None for r in truth + generated)  # cmp.py: never missing


def test_aed_fomm_equals_cmp_py_frame_for_frame(analysed) -> None:
    expected = json.loads(EXPECTED.read_text())
    assert expected["commit"].startswith("1bc4cae")
    truth, generated = analysed
    for index, value in enumerate(expected["cmp.py"]["per_frame"]):
        one = _metric("aed_fomm", truth[index:index + 1], generated[index:index + 1])
        assert one.value == pytest.approx(value, rel=1e-6), index
    whole = _metric("aed_fomm", truth, generated)
    assert whole.value == pytest.approx(expected["cmp.py"]["mean"], rel=1e-6)
    assert whole.frames == 4 and whole.excluded == 0


def test_akd_fomm_equals_cmp_kp_py_frame_for_frame(analysed) -> None:
    expected = json.loads(EXPECTED.read_text())
    truth, generated = analysed
    for index, value in enumerate(expected["cmp_kp.py"]["per_frame"]):
        one = _metric("akd_fomm", truth[index:index + 1], generated[index:index + 1])
        if value is None:  # the script left the frame out (its landmarks are None)
            assert one.status == "skipped" and one.excluded == 1
        else:
            assert one.value == pytest.approx(value, rel=1e-6), index
    whole = _metric("akd_fomm", truth, generated)
    assert whole.value == pytest.approx(expected["cmp_kp.py"]["mean"], rel=1e-6)
    assert whole.frames == 3 and whole.excluded == 1
