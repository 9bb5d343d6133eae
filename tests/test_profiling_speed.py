"""The speed comparison runs (issue 30): every method end to end, HiDe-NeRF's per-frame face
analysis included, at a tiny size on real face frames."""

from __future__ import annotations

import math

import torch

from thbench.profiling import endtoend
from thbench.profiling.hidenerf import main as hidenerf_main


def test_hidenerf_compare_prints_the_end_to_end_table(capsys) -> None:
    torch.set_num_threads(1)
    assert hidenerf_main(["--compare", "--compare-config", "tiny", "--size", "128",
                          "--frames", "1", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    assert [row.split("|")[1].strip() for row in rows[1:]] == ["fomm", "tpsmm", "fv2v",
                                                               "hidenerf"]
    assert "FP32 peak measured in this run" in out and "eos fit" in out


def test_hidenerf_frame_time_includes_its_face_analysis(monkeypatch) -> None:
    """HiDe-NeRF's timed frame runs the driving frame's 3DMM fit: the analyser is called for
    both sources, the warm-up frame and each timed frame, every frame new (the FLOP count's
    frame is remembered)."""
    from thbench.facegeom.analysis import FaceAnalyzer

    calls = []
    analyze = FaceAnalyzer.analyze
    monkeypatch.setattr(FaceAnalyzer, "analyze",
                        lambda self, frame: calls.append(frame.shape) or analyze(self, frame))
    frames = endtoend.face_frames(5, 128)
    row = endtoend.measure("hidenerf", frames, "tiny")
    assert row.frames == 2 and len(calls) == 2 + 1 + 2
    assert row.ms_per_frame > 0 and row.gflop_per_frame > 0 and not math.isnan(row.peak_mib)
    assert endtoend.matmul_peak_gflops(torch.device("cpu"), 256, 0.05) > 0
