"""Tests for tsam_cli.weights and the ``tsam weights`` sub-app.

Downloads go to a real HTTP server on 127.0.0.1 (http.server in a thread) that supports
Range requests and can misbehave on purpose: answer 500, drop the connection, or cut the body
short. Google Drive is exercised by replacing ``gdown.download``. The cache always lives under
pytest's tmp_path (TSAM_HOME), never in the real user cache.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from conftest import isolated_weights, local_http_server
from typer.testing import CliRunner

from tsam_cli import weights
from tsam_cli.cli.weights import app
from tsam_cli.errors import WeightsError
from tsam_cli.weights import Source, WeightSpec

PAYLOAD = bytes(range(256)) * 1024 * 3  # 768 KiB: several 1 MiB-read chunks are not needed
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


# --------------------------------------------------------------------------------------
# A small, misbehaving HTTP server
# --------------------------------------------------------------------------------------


class _State:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[dict[str, object]] = []
        self.fail_500 = 0  # answer 500 to the next N requests
        self.drop = 0  # close the connection without answering, next N requests
        self.cut = 0  # send only half the body (full Content-Length), next N requests
        self.support_range = True
        self.lock = threading.Lock()

    def take(self, attr: str) -> bool:
        with self.lock:
            left = getattr(self, attr)
            if left > 0:
                setattr(self, attr, left - 1)
                return True
            return False


class _Handler(BaseHTTPRequestHandler):
    state: _State  # set on a subclass per server

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:  # http.server's naming
        st = self.state
        with st.lock:
            st.requests.append({"path": self.path, "range": self.headers.get("Range")})
        if st.take("drop"):
            self.close_connection = True
            return  # nothing sent: the client sees the connection closed
        if st.take("fail_500"):
            self.send_error(500, "transient failure")
            return
        body = st.files.get(self.path)
        if body is None:
            self.send_error(404, "no such file")
            return
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match and st.support_range:
            start = int(match.group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        chunk = body[start:]
        self.send_header("Content-Length", str(len(chunk)))
        self.send_header("Accept-Ranges", "bytes" if st.support_range else "none")
        self.end_headers()
        if st.take("cut"):
            self.wfile.write(chunk[: len(chunk) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(chunk)


@pytest.fixture
def server():
    state = _State()
    with local_http_server(type("Handler", (_Handler,), {"state": state})) as base:
        state.base = base  # type: ignore[attr-defined]
        yield state


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Cache under tmp_path, no proxies, no back-off sleeps, a fresh registry."""
    return isolated_weights(tmp_path, monkeypatch)


def _url_spec(server: _State, name: str = "test-url", *, sha: str | None = PAYLOAD_SHA, body: bytes = PAYLOAD) -> WeightSpec:
    server.files[f"/{name}.bin"] = body
    spec = WeightSpec(
        name=name,
        source=Source(kind="url", ref=f"{server.base}/{name}.bin"),  # type: ignore[attr-defined]
        filename=f"{name}.bin",
        sha256=sha,
        size=len(body),
        description="test file",
    )
    weights.register(spec)
    return spec


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cache_files(home: Path) -> list[str]:
    folder = home / "weights"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --------------------------------------------------------------------------------------
# Registry and cache location
# --------------------------------------------------------------------------------------


def test_default_registry_entries():
    reg = weights.REGISTRY
    assert {"tsam-official", "i3d-rgb-imagenet", "vgg16-imagenet"} <= set(reg)
    assert "raft-things" not in reg  # no RAFT network behind it: no entry
    official = reg["tsam-official"]
    assert official.source.kind == "gdrive"
    assert official.source.ref == "17PN5aB34M-TkGP5jwCrcQRo76TNbfMu-"
    assert official.sha256 is None
    vgg = reg["vgg16-imagenet"]
    assert vgg.source.ref == "https://download.pytorch.org/models/vgg16-397923af.pth"
    assert vgg.sha256 is not None and vgg.sha256.startswith("397923af")
    # torchvision convention: the file name carries the sha256 prefix
    for spec in (vgg,):
        prefix = re.search(r"-([0-9a-f]{8})\.pth$", spec.filename).group(1)
        assert spec.sha256.startswith(prefix)
    assert reg["i3d-rgb-imagenet"].filename == "i3d_rgb_imagenet.pt"


def test_register_rejects_duplicates_and_bad_specs():
    spec = WeightSpec(name="x", source=Source("url", "http://h/x"), filename="x.bin")
    weights.register(spec)
    with pytest.raises(ValueError):
        weights.register(spec)
    weights.register(spec, replace=True)
    with pytest.raises(ValueError):
        WeightSpec(name="y", source=Source("url", "http://h/y"), filename="y.bin", sha256="not-hex")
    with pytest.raises(ValueError):
        WeightSpec(name="z", source=Source("url", "http://h/z"), filename="sub/z.bin")


def test_tsam_home_override(isolated, monkeypatch):
    assert weights.cache_dir() == isolated / "weights"
    assert weights.target_path("vgg16-imagenet") == isolated / "weights" / weights.REGISTRY["vgg16-imagenet"].filename
    monkeypatch.delenv("TSAM_HOME")
    import platformdirs

    assert weights.cache_dir() == Path(platformdirs.user_cache_dir("tsam", appauthor=False)) / "weights"


def test_sha256sum_streams(tmp_path):
    f = tmp_path / "f.bin"
    f.write_bytes(PAYLOAD)
    assert weights.sha256sum(f, chunk_size=4096) == PAYLOAD_SHA


# --------------------------------------------------------------------------------------
# URL downloads
# --------------------------------------------------------------------------------------


def test_download_ok_and_checksum_verified(server, isolated):
    spec = _url_spec(server)
    seen: list[tuple[int, int | None]] = []
    path = weights.download("test-url", progress=lambda done, total: seen.append((done, total)))
    assert path == isolated / "weights" / "test-url.bin"
    assert path.read_bytes() == PAYLOAD
    assert _cache_files(isolated) == ["test-url.bin"]  # no .part left
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert weights.check(path, spec) == "ok"
    assert len(server.requests) == 1


def test_cache_hit_makes_no_request(server):
    _url_spec(server)
    first = weights.download("test-url")
    n = len(server.requests)
    assert weights.download("test-url") == first
    assert weights.resolve("test-url") == first
    assert len(server.requests) == n
    weights.download("test-url", force=True)
    assert len(server.requests) == n + 1


def test_resume_from_partial_uses_range(server, isolated):
    _url_spec(server)
    part = isolated / "weights" / "test-url.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD[:1000])
    path = weights.download("test-url")
    assert path.read_bytes() == PAYLOAD
    assert server.requests[0]["range"] == "bytes=1000-"


def test_cut_body_is_resumed_with_range(server):
    _url_spec(server)
    server.cut = 1
    path = weights.download("test-url")
    assert path.read_bytes() == PAYLOAD
    assert len(server.requests) == 2
    assert server.requests[0]["range"] is None
    assert server.requests[1]["range"] == f"bytes={len(PAYLOAD) // 2}-"


def test_server_without_range_restarts_cleanly(server, isolated):
    _url_spec(server)
    server.support_range = False
    part = isolated / "weights" / "test-url.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"garbage that must not stay in front")
    assert weights.download("test-url").read_bytes() == PAYLOAD


def test_oversized_partial_gets_416_then_restarts(server, isolated):
    _url_spec(server)
    part = isolated / "weights" / "test-url.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD + b"extra")
    assert weights.download("test-url").read_bytes() == PAYLOAD
    assert [r["range"] for r in server.requests] == [f"bytes={len(PAYLOAD) + 5}-", None]


def test_complete_partial_is_used_without_network(server, isolated):
    _url_spec(server)
    part = isolated / "weights" / "test-url.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(PAYLOAD)
    assert weights.download("test-url").read_bytes() == PAYLOAD
    assert server.requests == []
    assert _cache_files(isolated) == ["test-url.bin"]


@pytest.mark.parametrize("mode", ["fail_500", "drop"])
def test_retry_after_transient_failure(server, mode):
    _url_spec(server)
    setattr(server, mode, 2)
    assert weights.download("test-url", retries=3).read_bytes() == PAYLOAD
    assert len(server.requests) == 3


def test_gives_up_after_retries(server, isolated):
    _url_spec(server)
    server.fail_500 = 10
    with pytest.raises(WeightsError) as info:
        weights.download("test-url", retries=2)
    assert len(server.requests) == 3
    msg = str(info.value)
    assert "\n" not in msg and "HTTP 500" in msg
    assert str(isolated / "weights" / "test-url.bin") in msg


def test_404_is_not_retried(server):
    spec = _url_spec(server)
    server.files.clear()
    with pytest.raises(WeightsError, match="HTTP 404"):
        weights.download(spec)
    assert len(server.requests) == 1


def test_checksum_mismatch_leaves_nothing(server, isolated):
    _url_spec(server, sha="0" * 64)
    with pytest.raises(WeightsError) as info:
        weights.download("test-url")
    msg = str(info.value)
    assert "checksum mismatch" in msg and "\n" not in msg
    assert _cache_files(isolated) == []


def test_unknown_checksum_is_accepted(server):
    spec = _url_spec(server, sha=None)
    path = weights.download(spec)
    assert weights.check(path, spec) == "unknown"


def test_html_error_page_is_rejected(server, isolated):
    _url_spec(server, sha=None, body=b"<!DOCTYPE html><html><body>quota exceeded</body></html>")
    with pytest.raises(WeightsError, match="web page"):
        weights.download("test-url")
    assert _cache_files(isolated) == []


def test_offline_message_names_manual_path(isolated):
    port = _closed_port()
    spec = weights.register(
        WeightSpec(name="offline", source=Source("url", f"http://127.0.0.1:{port}/w.bin"), filename="w.bin")
    )
    with pytest.raises(WeightsError) as info:
        weights.download(spec)
    msg = str(info.value)
    assert "\n" not in msg
    assert str(isolated / "weights" / "w.bin") in msg
    assert f"http://127.0.0.1:{port}/w.bin" in msg


def test_corrupt_cached_file_is_kept_and_replaced_only_with_force(server, isolated):
    """A file in the cache with a wrong checksum may be the user's: it is refused, never deleted;
    --force replaces it, but only with a verified download."""
    _url_spec(server)
    dest = isolated / "weights" / "test-url.bin"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"corrupt")
    with pytest.raises(WeightsError) as info:
        weights.download("test-url")
    msg = str(info.value)
    assert str(dest) in msg and "--force" in msg and "move it" in msg and "\n" not in msg
    assert dest.read_bytes() == b"corrupt" and server.requests == []
    assert weights.download("test-url", force=True).read_bytes() == PAYLOAD
    assert len(server.requests) == 1


# --------------------------------------------------------------------------------------
# Google Drive (gdown mocked)
# --------------------------------------------------------------------------------------


def _gdrive_spec(sha: str | None = PAYLOAD_SHA) -> WeightSpec:
    return weights.register(
        WeightSpec(name="test-gd", source=Source("gdrive", "FILE_ID_123"), filename="gd.pth", sha256=sha),
        replace=True,
    )


def test_gdown_success(monkeypatch, isolated):
    import gdown

    calls = []

    def fake_download(*, id, output, quiet, **kwargs):
        calls.append({"id": id, "output": output, "quiet": quiet})
        Path(output).write_bytes(PAYLOAD)
        return output

    monkeypatch.setattr(gdown, "download", fake_download)
    _gdrive_spec()
    path = weights.download("test-gd")
    assert path == isolated / "weights" / "gd.pth"
    assert path.read_bytes() == PAYLOAD
    assert calls[0]["id"] == "FILE_ID_123"
    assert calls[0]["output"].endswith("gd.pth.part")
    assert _cache_files(isolated) == ["gd.pth"]
    weights.download("test-gd")  # cache hit: gdown not called again
    assert len(calls) == 1


@pytest.mark.parametrize("how", ["raise", "none"])
def test_gdown_failure(monkeypatch, isolated, how):
    import gdown

    def fake_download(*, id, output, quiet, **kwargs):
        Path(output).write_bytes(b"half")
        if how == "raise":
            raise RuntimeError("Cannot retrieve the public link of the file.\nYou may need to change the permission")
        return None

    monkeypatch.setattr(gdown, "download", fake_download)
    _gdrive_spec()
    with pytest.raises(WeightsError) as info:
        weights.download("test-gd")
    msg = str(info.value)
    assert "\n" not in msg
    assert str(isolated / "weights" / "gd.pth") in msg
    assert "https://drive.google.com/file/d/FILE_ID_123/view" in msg
    assert _cache_files(isolated) == []


def test_gdown_checksum_mismatch(monkeypatch, isolated):
    import gdown

    monkeypatch.setattr(gdown, "download", lambda *, id, output, quiet, **kw: Path(output).write_bytes(b"x") and output)
    _gdrive_spec()
    with pytest.raises(WeightsError, match="checksum mismatch"):
        weights.download("test-gd")
    assert _cache_files(isolated) == []


# --------------------------------------------------------------------------------------
# resolve / status / local entries
# --------------------------------------------------------------------------------------


def test_resolve_existing_path_as_is(tmp_path):
    f = tmp_path / "my.pth"
    f.write_bytes(b"whatever")
    assert weights.resolve(f) == f
    assert weights.resolve(str(f)) == f


def test_resolve_missing_does_not_download(server, isolated):
    _url_spec(server)
    with pytest.raises(WeightsError) as info:
        weights.resolve("test-url")
    assert "tsam weights download test-url" in str(info.value)
    assert str(isolated / "weights" / "test-url.bin") in str(info.value)
    assert server.requests == []
    assert weights.resolve("test-url", download=True).read_bytes() == PAYLOAD
    assert len(server.requests) == 1


def test_resolve_corrupt_cached_file_is_refused(server, isolated):
    _url_spec(server)
    dest = isolated / "weights" / "test-url.bin"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(PAYLOAD[:-1] + b"\x00")
    with pytest.raises(WeightsError, match="corrupt"):
        weights.resolve("test-url")
    assert weights.status("test-url")["checksum"] == "mismatch"
    assert server.requests == []


def test_resolve_unknown_name_and_missing_path(tmp_path):
    with pytest.raises(WeightsError, match="unknown weights 'nope'.*vgg16-imagenet"):
        weights.resolve("nope")
    with pytest.raises(WeightsError, match="does not exist"):
        weights.resolve(tmp_path / "missing.pth")
    with pytest.raises(WeightsError, match="not a file"):
        weights.resolve(tmp_path)


def test_status_states(server, isolated):
    spec = _url_spec(server)
    st = weights.status("test-url")
    assert st["cached"] is False and st["checksum"] == "missing" and st["size_on_disk"] is None
    weights.download(spec)
    st = weights.status("test-url")
    assert st["cached"] is True and st["checksum"] == "ok" and st["size_on_disk"] == len(PAYLOAD)
    assert st["path"] == str(isolated / "weights" / "test-url.bin")
    no_sha = _url_spec(server, "no-sha", sha=None)
    weights.download(no_sha)
    assert weights.status("no-sha")["checksum"] == "unknown"


def test_local_entry(tmp_path, monkeypatch):
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "compact.safetensors").write_bytes(PAYLOAD)
    monkeypatch.setattr(weights, "LOCAL_WEIGHTS_DIR", shipped)
    weights.register(
        WeightSpec(
            name="test-local",
            source=Source("local", "compact.safetensors"),
            filename="compact.safetensors",
            sha256=PAYLOAD_SHA[:8],  # a prefix is enough
        )
    )
    assert weights.download("test-local") == shipped / "compact.safetensors"
    assert weights.resolve("test-local") == shipped / "compact.safetensors"
    assert weights.status("test-local")["checksum"] == "ok"
    (shipped / "compact.safetensors").write_bytes(b"broken")
    with pytest.raises(WeightsError, match="corrupt"):
        weights.resolve("test-local")
    os.remove(shipped / "compact.safetensors")
    with pytest.raises(WeightsError, match="missing"):
        weights.download("test-local")


# --------------------------------------------------------------------------------------
# The Typer sub-app
# --------------------------------------------------------------------------------------


def test_cli_list(server):
    _url_spec(server)
    weights.download("test-url")
    result = CliRunner().invoke(app, ["list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.output
    for name in ("tsam-official", "i3d-rgb-imagenet", "vgg16-imagenet", "test-url"):
        assert name in out
    assert "gdrive" in out and "download.pytorch.org" in out
    row = next(line for line in out.splitlines() if "test-url" in line)
    assert "yes" in row and "ok" in row
    row = next(line for line in out.splitlines() if "vgg16-imagenet" in line)
    assert "no" in row and "missing" in row


def test_cli_download(server, isolated):
    _url_spec(server)
    runner = CliRunner()
    result = runner.invoke(app, ["download", "test-url"])
    assert result.exit_code == 0, result.output
    dest = isolated / "weights" / "test-url.bin"
    assert str(dest) in result.output
    assert dest.read_bytes() == PAYLOAD
    result = runner.invoke(app, ["download", "test-url", "--quiet"])
    assert result.exit_code == 0
    assert result.output.strip() == str(dest)
    assert len(server.requests) == 1  # cache hit
    result = runner.invoke(app, ["download", "test-url", "--force", "-q"])
    assert result.exit_code == 0 and len(server.requests) == 2


def test_cli_download_errors_raise_weights_error(server):
    _url_spec(server, sha="f" * 64)
    result = CliRunner().invoke(app, ["download", "test-url"])
    assert result.exit_code != 0
    assert isinstance(result.exception, WeightsError)
    result = CliRunner().invoke(app, ["download", "no-such-weights"])
    assert isinstance(result.exception, WeightsError)
