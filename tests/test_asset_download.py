"""Download on first use, against a real HTTP server on 127.0.0.1 serving files the test makes:
a matching digest, a wrong digest, a 404 and a connection dropped mid-file. No failure may
leave a file (or a partial one) in the cache."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from thbench.core import assets

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    """``/good.bin`` and ``/bad.bin`` serve the payload; ``/drop.bin`` announces all of it and
    closes the connection half-way; anything else is a 404."""

    requests: list[str] = []

    def do_GET(self) -> None:
        self.requests.append(self.path)
        if self.path not in ("/good.bin", "/bad.bin", "/drop.bin"):
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        if self.path == "/drop.bin":
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(PAYLOAD)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    _Handler.requests = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def served(server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A manifest whose assets come from the local server; returns the cache's asset folder."""
    wrong = hashlib.sha256(b"something else").hexdigest()
    manifest = tmp_path / "manifest.toml"
    manifest.write_text("".join(
        f'[{name}]\nfilename = "{name}.bin"\nurl = "{server}/{path}"\nsha256 = "{digest}"\n'
        f'size = {len(PAYLOAD)}\nlicence = "test"\nused_by = "the {name} test"\n\n'
        for name, path, digest in [("good", "good.bin", DIGEST), ("bad", "bad.bin", wrong),
                                   ("gone", "gone.bin", DIGEST), ("drop", "drop.bin", DIGEST)]
    ))
    monkeypatch.setattr(assets, "MANIFEST", manifest)
    monkeypatch.setattr(assets, "_FAILED_DOWNLOADS", {})
    monkeypatch.setenv("THB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("THB_ASSETS_DIR", raising=False)
    monkeypatch.delenv("THB_OFFLINE", raising=False)
    monkeypatch.delenv("THB_PROGRESS", raising=False)
    assets.manifest.cache_clear()
    yield tmp_path / "cache" / "assets"
    assets.manifest.cache_clear()


def _leftovers(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.is_dir() else []


def test_first_use_downloads_verifies_and_caches(served: Path, capsys) -> None:
    path = assets.resolve("good")
    assert path == served / "good.bin"
    assert path.read_bytes() == PAYLOAD
    assert assets.resolve("good") == path  # the second use reads the cache
    assert _Handler.requests == ["/good.bin"]
    assert _leftovers(served) == ["good.bin"]
    err = capsys.readouterr().err  # not a terminal: whole lines, no carriage returns
    assert "\r" not in err
    assert f"downloading good.bin: {len(PAYLOAD)}/{len(PAYLOAD)} B (100%)" in err


def test_wrong_digest_is_refused_and_leaves_nothing(served: Path) -> None:
    with pytest.raises(assets.AssetCorrupt, match=f"has sha256 {DIGEST}, expected"):
        assets.resolve("bad")
    assert _leftovers(served) == []


def test_404_is_missing_with_the_reason_and_leaves_nothing(served: Path) -> None:
    with pytest.raises(assets.AssetMissing) as error:
        assets.resolve("gone")
    message = str(error.value)
    assert "HTTP Error 404" in message and "/gone.bin" in message
    assert "fix: run `python -m thbench eval assets download gone`" in message
    assert "\n" not in message
    assert _leftovers(served) == []


def test_connection_dropped_mid_file_leaves_nothing(served: Path) -> None:
    with pytest.raises(assets.AssetMissing,
                       match=f"stopped after {len(PAYLOAD) // 2} of {len(PAYLOAD)} bytes"):
        assets.resolve("drop")
    assert _leftovers(served) == []


def test_a_failed_download_is_not_retried_in_the_process_until_asked(served: Path) -> None:
    for _ in range(3):
        with pytest.raises(assets.AssetMissing):
            assets.resolve("gone")
    assert _Handler.requests == ["/gone.bin"]
    with pytest.raises(assets.AssetMissing):
        assets.download("gone")  # the explicit command tries again
    assert _Handler.requests == ["/gone.bin", "/gone.bin"]


def test_offline_switch_forbids_the_network(served: Path, monkeypatch) -> None:
    monkeypatch.setenv("THB_OFFLINE", "1")
    with pytest.raises(assets.AssetMissing, match="THB_OFFLINE is set, so it was not downloaded"):
        assets.resolve("good")
    assert _Handler.requests == []
    assert assets.status("good")[0] == "missing"


def test_collect_missing_names_each_failed_asset_once(served: Path) -> None:
    with assets.collect_missing() as found:
        for name in ("gone", "gone", "good", "bad"):
            try:
                assets.resolve(name)
            except assets.AssetError:
                pass
    assert [type(e).__name__ for e in found] == ["AssetMissing", "AssetCorrupt"]
    assert "'gone'" in str(found[0]) and "'bad'" in str(found[1])
