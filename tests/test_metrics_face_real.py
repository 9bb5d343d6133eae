"""Face metrics on real frames through facegeom's FaceAnalyzer (dlib + eos SFM fit)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from thbench.eval.metrics import build_metrics
from thbench.eval.metrics.base import FrameBatch


@pytest.fixture(scope="module")
def analysed(pyfeat_data: Path):
    pytest.importorskip("dlib")
    pytest.importorskip("eos")
    from thbench.core.media import iter_video
    from thbench.facegeom.analysis import FaceAnalyzer

    analyzer = FaceAnalyzer(parts=("fit", "dlib"), strict=True)
    woman = list(itertools.islice(iter_video(pyfeat_data / "WolfgangLanger_Pexels.mp4"), 0, 61))
    man = next(iter_video(pyfeat_data / "single_face.mp4"))
    frames = {"woman0": woman[0], "woman30": woman[30], "woman60": woman[60], "man": man}
    records = {key: analyzer.analyze(frame) for key, frame in frames.items()}
    assert all(r.has_face for r in records.values()), {k: r.has_face for k, r in records.items()}
    return records


def _value(name: str, generated: list, reference: list, role: str, options=None) -> float:
    (metric,) = build_metrics([name], options)
    roles = {"generated": generated, role: reference}
    if role == "driving":
        roles["ground_truth"] = reference
    else:  # the frames counted are those whose driving frame has a face: the output's own
        roles["driving"] = generated
    roles.setdefault("source", reference[:1])
    frames = torch.zeros(len(generated), 3, 8, 8)
    metric.update(
        FrameBatch(
            generated=frames,
            driving=frames,
            source=frames[0],
            ground_truth=frames,
            context={"analyses": roles.__getitem__},
        )
    )
    result = metric.compute()
    assert result.status == "ok", result.reason
    return result.value


def test_csim_same_person_above_different_people(analysed) -> None:
    r = analysed
    self_sim = _value("csim", [r["woman0"]], [r["woman0"]], "source")
    same = _value("csim", [r["woman30"], r["woman60"]], [r["woman0"]], "source")
    different = _value("csim", [r["man"]], [r["woman0"]], "source")
    print(f"\nCSIM (dlib): self {self_sim:.4f}, same person {same:.4f}, different {different:.4f}")
    assert self_sim == pytest.approx(1.0, abs=1e-6)
    assert same > different + 0.05
    aed_same = _value("aed_identity", [r["woman30"]], [r["woman0"]], "driving")
    aed_diff = _value("aed_identity", [r["man"]], [r["woman0"]], "driving")
    print(f"aed_identity (dlib, l2): same person {aed_same:.4f}, different {aed_diff:.4f}")
    assert aed_same < aed_diff


def test_pose_and_shape_metrics_zero_on_identical_and_symmetric(analysed, monkeypatch) -> None:
    # AVD builds SFM meshes (the model shipped in facegeom/sfm/)
    r = analysed
    a, b = r["woman0"], r["man"]
    for name in ("apd", "aed_3dmm", "avd_d", "akd"):
        assert _value(name, [a], [a], "driving") == 0.0
    assert _value("avd_s", [a], [a], "source") == 0.0
    for name in ("apd", "aed_3dmm", "avd_d", "aed_identity", "akd"):
        assert _value(name, [a], [b], "driving") == pytest.approx(_value(name, [b], [a], "driving"))
    avd = _value("avd_s", [b], [a], "source")
    print(f"\nAVD woman vs man: {avd:.3f} mm; APD {_value('apd', [b], [a], 'driving'):.2f} deg")
    assert avd > 0
    assert np.isfinite(a.yaw)


def test_avd_share_puts_the_copy_baselines_at_its_ends(analysed) -> None:
    """source-copy (the output is the source image) reads 0, driving-copy (the output is the
    driving clip) reads 1, by construction; anything else lies between."""
    r = analysed
    source, driving = [r["woman0"]], [r["man"], r["man"]]

    def share(generated: list) -> float:
        (metric,) = build_metrics(["avd_share"])
        frames = torch.zeros(len(generated), 3, 8, 8)
        roles = {"generated": generated, "source": source, "driving": driving}
        metric.update(FrameBatch(generated=frames, driving=frames, source=frames[0],
                                 context={"analyses": roles.__getitem__}))
        result = metric.compute()
        assert result.status == "ok", result.reason
        return result.value

    assert share([r["woman0"], r["woman0"]]) == 0.0  # source-copy
    assert share(driving) == 1.0  # driving-copy
    between = share([r["woman30"], r["woman60"]])  # the source's person, other frames
    print(f"\navd_share: source-copy 0, driving-copy 1, same person other frames {between:.3f}")
    assert 0.0 < between < 0.5
