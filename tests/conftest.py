"""Shared test helpers: synthetic videos with known motion, optional real clips from ../shared."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data (real test clips) is not present")


def texture(h: int, w: int, seed: int = 0, sigma: float = 2.0) -> np.ndarray:
    """Smooth random colour texture, ``(h, w, 3) uint8`` (band-limited, so flow is well defined)."""
    import cv2

    rng = np.random.default_rng(seed)
    t = cv2.GaussianBlur(rng.random((h, w, 3)).astype(np.float32), (0, 0), sigma)
    t = (t - t.min()) / (t.max() - t.min())
    return (t * 255).astype(np.uint8)


def translating_video(T: int = 10, h: int = 64, w: int = 96, dx: int = 2, dy: int = 1, seed: int = 0) -> np.ndarray:
    """``(T, h, w, 3) uint8``: a window sliding over a texture by (dx, dy) >= 0 px per frame.

    The content therefore moves by (-dx, -dy) per frame: the true flow t -> t+1 is (-dx, -dy).
    """
    big = texture(h + dy * T, w + dx * T, seed)
    return np.stack([big[dy * t : dy * t + h, dx * t : dx * t + w] for t in range(T)])


def write_video(path: Path, frames: np.ndarray, fps: float = 25, codec: str = "libx264", pix_fmt: str = "yuv420p",
                audio: bool = False, pts: list[int] | None = None, time_base: Fraction | None = None) -> Path:
    """Encode ``(T, H, W, 3) uint8`` frames with PyAV (optionally with a 440 Hz AAC tone)."""
    import av

    fmt = {".mkv": "matroska", ".webm": "webm", ".avi": "avi", ".mov": "mov"}.get(path.suffix, "mp4")
    with av.open(str(path), "w", format=fmt) as out:
        vs = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        if time_base is not None:
            vs.codec_context.time_base = time_base
        if codec == "libx264":
            vs.options = {"crf": "10", "preset": "ultrafast"}
        aus = None
        if audio:
            aus = out.add_stream("aac", rate=44100)
            aus.layout = "mono"
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
            if pts is not None:
                vf.pts = pts[i]
                vf.time_base = time_base
            out.mux(vs.encode(vf))
        out.mux(vs.encode(None))
        if aus is not None:
            n = int(44100 * len(frames) / fps)
            tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / 44100)).astype(np.float32)[None]
            for s in range(0, n, 1024):
                af = av.AudioFrame.from_ndarray(tone[:, s : s + 1024], format="fltp", layout="mono")
                af.sample_rate = 44100
                af.pts = s
                out.mux(aus.encode(af))
            out.mux(aus.encode(None))
    return path


def read_video(path: Path) -> np.ndarray:
    """Decode all frames of a small file/folder to ``(T, H, W, 3) uint8``."""
    from tsam_cli.media import iter_frames, probe

    return np.stack([f.rgb for f in iter_frames(probe(path) if Path(path).is_file() else probe(path, fps=25))])


def write_pngs(folder: Path, images, name: str = "{:05d}.png") -> Path:
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(images):
        im = np.asarray(im)
        if im.ndim == 3:
            im = im[..., ::-1]
        cv2.imwrite(str(folder / name.format(i)), np.ascontiguousarray(im))
    return folder


def moving_box_masks(T: int, h: int, w: int, size: tuple[int, int] = (20, 16), step: int = 2) -> np.ndarray:
    """``(T, h, w) uint8`` 0/255 masks of a box sliding right by ``step`` px per frame."""
    m = np.zeros((T, h, w), np.uint8)
    bw, bh = size
    for t in range(T):
        x = 20 + step * t
        m[t, 24 : 24 + bh, x : x + bw] = 255
    return m


@contextmanager
def local_http_server(handler_cls) -> Iterator[str]:
    """Serve ``handler_cls`` (a ``BaseHTTPRequestHandler`` subclass) on 127.0.0.1 in a thread;
    yields the base URL ``http://127.0.0.1:PORT`` and shuts the server down afterwards."""
    import threading
    from http.server import ThreadingHTTPServer

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler_cls)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@contextmanager
def official_logger_module(logger_cls) -> Iterator[None]:
    """While pickling an official-layout checkpoint: ``utils.logger.Logger`` importable as
    ``logger_cls`` (the official checkpoints pickle that class; docs/official-checkpoint.md)."""
    import sys
    import types

    utils, logger_mod = types.ModuleType("utils"), types.ModuleType("utils.logger")
    logger_mod.Logger, utils.logger = logger_cls, logger_mod
    saved = {name: sys.modules.get(name) for name in ("utils", "utils.logger")}
    sys.modules["utils"], sys.modules["utils.logger"] = utils, logger_mod
    try:
        yield
    finally:
        for name, mod in saved.items():
            if mod is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = mod


def isolated_weights(tmp_path: Path, monkeypatch) -> Path:
    """Weights tests: the cache under ``tmp_path`` (returned), no proxies (the test servers are
    on 127.0.0.1), no back-off sleeps between retries, a registry copy tests may extend."""
    from tsam_cli import weights

    home = tmp_path / "home"
    monkeypatch.setenv("TSAM_HOME", str(home))
    for var in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setattr(weights, "_BACKOFF_BASE_S", 0.0)
    monkeypatch.setattr(weights, "REGISTRY", dict(weights.REGISTRY))
    return home


def write_rgba_video(path: Path, frames: np.ndarray, codec: str = "png", pix_fmt: str = "rgba", fps: int = 25) -> Path:
    """``(T, H, W, 4) uint8`` RGBA frames into a .mov that keeps the alpha channel (as editors
    export mattes: png, qtrle, prores_ks with yuva444p10le)."""
    import av

    with av.open(str(path), "w", format="mov") as out:
        vs = out.add_stream(codec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        for f in frames:
            out.mux(vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgba")))
        out.mux(vs.encode(None))
    return path
