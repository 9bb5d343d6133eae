"""The 3DMM metrics' noise floor, measured on real clips with the real dlib + eos analysis."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from thbench.datasets.protocols import CROSS_IDENTITY, SAME_IDENTITY
from thbench.eval.noise_floor import measure_floor, real_clips
from thbench.reports.tables import floor_markdown


@pytest.fixture(scope="module")
def floor(mini_dataset, shared_dir: Path, tmp_path_factory) -> dict:
    pytest.importorskip("eos")
    from thbench.eval.frame_analyses import build_analyzer
    from thbench.eval.metrics import build_metrics
    from thbench.facegeom.morphable import load_sfm

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("THB_ASSETS_DIR", str(shared_dir / "models" / "sfm"))
        # the metrics' own analyser (identity from the speech-robust points)
        analyzer = build_analyzer(build_metrics(["avd_s"]), tmp_path_factory.mktemp("analyses"))
        return measure_floor(mini_dataset, [SAME_IDENTITY, CROSS_IDENTITY], analyzer,
                             load_sfm())


def test_floor_on_real_clips(floor: dict, mini_dataset) -> None:
    assert real_clips(mini_dataset, [SAME_IDENTITY]) == ["man-000", "man-leaves-001",
                                                         "woman-000"]
    avd = floor["avd"]
    print("\nAVD floor (mm):", {k: round(v, 3) for k, v in avd.items()})
    assert floor["clips"] == 3 and floor["units"] == "mm"
    assert floor["cross_pairs"] == 2  # the woman's clip against each of the man's
    for key in ("halves", "mirror_clip", "clip_vs_frame", "mirror_frame", "cross_person"):
        assert np.isfinite(avd[key]) and avd[key] > 0, key
    # the same person's clip halves and mirror image read below two different people
    assert avd["halves"] < avd["cross_person"] and avd["mirror_clip"] < avd["cross_person"]
    assert avd["floor_ratio"] == pytest.approx(avd["halves"] / avd["cross_person"])
    assert 0 < floor["apd"]["mirror_frame"] < 10  # degrees
    # avd_s's own comparison: a frame against the rest of its clip (floor), a clip against a
    # frame of the other person (signal)
    avd_s = floor["avd_s"]
    print("avd_s floor / signal (mm):", {k: round(v, 3) for k, v in avd_s.items()})
    assert 0 < avd_s["floor"] < avd_s["signal"]
    assert avd_s["ratio"] == pytest.approx(avd_s["signal"] / avd_s["floor"])
    assert avd_s["floor_frames"] >= 3 * 4 and avd_s["signal_frames"] > 0
    assert "lambda_id=30" in floor["backend"] and "identity_from=17-59" in floor["backend"]


def test_floor_section_of_the_tables(floor: dict) -> None:
    text = floor_markdown(floor)
    assert "### Noise floor of the 3DMM metrics" in text
    line = next(x for x in text.splitlines() if x.startswith("| AVD: two halves"))
    assert line.endswith(f"| {floor['avd']['halves']:.3f} mm |")
    assert "Measured on 3 real clips" in text
