"""The shared miniature tree and checkpoints (tests/minivox.py) are what they claim to be."""

from __future__ import annotations

import torch

from thbench.datasets.layouts import discover


def test_vox_png_tree_is_fomms_layout_of_four_real_test_clips(vox_png_root, vox1_csv):
    found = discover("voxceleb1", "fomm", vox_png_root, "test", vox1_csv)
    assert len(found.sources) == 4 and not found.excluded
    assert all(s.path.is_dir() and len(list(s.path.glob("*.png"))) == 6 for s in found.sources)
    assert len({s.identity for s in found.sources}) == 4
    assert len(found.missing) == 522 - 4


def test_official_checkpoints_have_the_official_top_level_keys(official_checkpoints):
    fomm = torch.load(official_checkpoints["fomm"], weights_only=True)
    tpsmm = torch.load(official_checkpoints["tpsmm"], weights_only=True)
    assert set(fomm) == {"kp_detector", "generator"}
    assert set(tpsmm) == {"inpainting_network", "kp_detector", "dense_motion_network",
                          "avd_network", "bg_predictor"}
    fc = tpsmm["bg_predictor"]["bg_encoder.fc.weight"]
    assert fc.abs().mean() > 0.1  # not the identity initialisation (zeros)


