"""Helpers shared by the benchmark scripts: locate clips, build looped inputs, run in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
#: fast-motion clips from sources no other benchmark uses (benchmarks/clips/SOURCES.md)
CLIP_DIR = ROOT / "benchmarks" / "clips"
sys.path.insert(0, str(ROOT))


def bmx_frames(limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """bmx-trees frames ``(T, 240, 432, 3) uint8`` and object masks ``(T, 240, 432) bool``.

    From ``../shared/data/bmx-trees`` (80 frames) when present, else ``examples/`` (40 frames).
    """
    import cv2

    from tsam_cli.media import iter_frames, list_images, probe

    if (SHARED / "bmx-trees").is_dir():
        frames = np.stack([f.rgb for f in iter_frames(probe(SHARED / "bmx-trees" / "frames", fps=24))])
        mfiles = list_images(SHARED / "bmx-trees" / "masks")
    else:
        frames = np.stack([f.rgb for f in iter_frames(probe(ROOT / "examples" / "bmx-trees.mp4"))])
        mfiles = list_images(ROOT / "examples" / "bmx-trees-mask")
    masks = np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) > 127 for p in mfiles])
    n = min(len(frames), len(masks), limit or 10**9)
    return frames[:n], masks[:n]


def read_frames(path: Path) -> np.ndarray:
    """A video file's frames as ``(T, H, W, 3) uint8`` RGB."""
    from tsam_cli.media import iter_frames, probe

    return np.stack([f.rgb for f in iter_frames(probe(path))])


def clip_sets() -> dict[str, list[str]]:
    """``{"dev": [...], "held-out": [...]}``: the clips of :data:`CLIP_DIR` by the ``set`` column
    of its ``SOURCES.md`` (tuning looks at ``dev`` only; ``held-out`` is reported apart)."""
    sets: dict[str, list[str]] = {"dev": [], "held-out": []}
    text = (CLIP_DIR / "SOURCES.md").read_text() if (CLIP_DIR / "SOURCES.md").exists() else ""
    header: list[str] = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if "clip" in cells and "set" in cells:
            header = cells
        elif header and len(cells) == len(header) and not set(cells[0]) <= set("-: "):
            row = dict(zip(header, cells, strict=True))
            name, which = row["clip"].strip("`"), row["set"].strip("*` ")
            if (CLIP_DIR / name).is_dir() and which in sets:
                sets[which].append(name)
    return sets


def loop_index(n_src: int, n: int) -> list[int]:
    """Ping-pong indices 0..n_src-1..0.. of length n (no jump cut when looping a clip)."""
    period = list(range(n_src)) + list(range(n_src - 2, 0, -1))
    return [period[i % len(period)] for i in range(n)]


def write_inputs(folder: Path, frames: np.ndarray, masks: np.ndarray, n: int, fps: int = 24) -> tuple[Path, Path]:
    """Write ``n`` looped frames as an H.264 mp4 and the masks as a lossless FFV1 mkv."""
    from fractions import Fraction

    from tsam_cli.media import create_video

    idx = loop_index(len(frames), n)
    h, w = frames.shape[1:3]
    video, mask = folder / f"in_{n}.mp4", folder / f"mask_{n}.mkv"
    with create_video(video, w, h, Fraction(fps), crf=16) as wr:
        for i in idx:
            wr.write(frames[i])
    with create_video(mask, w, h, Fraction(fps), lossless=True) as wr:
        for i in idx:
            wr.write(np.repeat((masks[i] * 255).astype(np.uint8)[..., None], 3, axis=2))
    return video, mask


RUNNER = r"""
import importlib, json, os, sys
# the venv's editable-install finder would serve modules missing from another tree out of this
# checkout: keep only the tree in the working directory (first on sys.path) for tsam_cli
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in getattr(f, "__module__", "")]
# tsam_cli.core.pipeline since the package layout of 17e57a3; tsam_cli.pipeline before (baselines)
new = os.path.isfile(os.path.join("tsam_cli", "core", "pipeline.py"))
pipe = importlib.import_module("tsam_cli.core.pipeline" if new else "tsam_cli.pipeline")
InpaintOptions, inpaint = pipe.InpaintOptions, pipe.inpaint
# a module constant tried in place of the shipped one (read where it is used, at call time)
for name, value in json.loads(sys.argv[4] if len(sys.argv) > 4 else "{}").items():
    module, attr = name.split(":")
    mod = importlib.import_module(module)
    if not hasattr(mod, attr):
        raise SystemExit(f"{module} has no constant {attr}")
    kind = type(getattr(mod, attr))
    if kind(value) != value:  # an int constant given 3.5 would silently run as 3
        raise SystemExit(f"{module}.{attr} is {kind.__name__}: {value} is not one")
    setattr(mod, attr, kind(value))
opts = InpaintOptions(**json.loads(sys.argv[3]))
rep = inpaint(sys.argv[1], sys.argv[2], opts)
# VmHWM: peak RSS of this process image. (ru_maxrss is not used: Linux carries the parent's
# high-water mark over fork + exec into it, so a big benchmark parent would inflate it.)
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024
print(json.dumps({"frames": rep.n_frames, "seconds": rep.seconds, "timings": rep.timings, "peak_rss_mib": peak}))
"""


def run_inpaint(video: Path, mask: Path, out: Path, root: Path = ROOT, prefix: tuple[str, ...] = (),
                constants: dict[str, float] | None = None, **opts) -> dict:
    """Run one ``inpaint`` in a fresh interpreter (so peak RSS is this run's alone), with the
    ``tsam_cli`` of the source tree ``root`` (another checkout for a baseline); ``prefix``: a
    command the interpreter runs under (``("taskset", "-c", "0")``); ``constants``:
    ``{"module:NAME": value}`` set in that interpreter before the run (:func:`parse_constant`)."""
    opts = {"mask": str(mask), "overwrite": True, "quiet": True, **opts}
    r = subprocess.run([*prefix, sys.executable, "-c", RUNNER, str(video), str(out), json.dumps(opts),
                        json.dumps(constants or {})], capture_output=True, text=True, cwd=root)
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


def parse_constant(spec: str) -> tuple[str, float]:
    """``"tsam_cli.flow.pair:FLOW_MARGIN=3"`` -> ``("tsam_cli.flow.pair:FLOW_MARGIN", 3.0)``: a
    module constant to try (set in the module that *reads* it: a name imported elsewhere with
    ``from ... import`` or bound as a default argument keeps the shipped value there)."""
    name, sep, value = spec.partition("=")
    if not sep or ":" not in name:
        raise SystemExit(f"--try {spec!r}: expected module:NAME=value, e.g. tsam_cli.flow.pair:FLOW_MARGIN=3")
    return name, float(value)


def psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    """PSNR in dB over the pixels selected by ``where`` (tsam's own metric)."""
    from tsam_cli.metrics.psnr import psnr_pixels

    return psnr_pixels(b, a, where)


@contextmanager
def baseline_tree(rev: str | None):
    """A temporary ``git worktree`` of ``rev`` (None: no baseline), removed afterwards."""
    if rev is None:
        yield None
        return
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(tree), rev], check=True)
        try:
            yield tree
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
