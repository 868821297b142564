"""Hostile inputs over every ``tsam`` command, as a careful user and as an attacker would give them.

Each case is one row ``(id, argv, expectation)``; :func:`test_hostile` runs it in a fresh copy of
a small media library (tiny videos, frame folders, masks, a dataset: the ``library`` fixture) and
:func:`_check` applies the same four checks to every row:

1. stderr has no traceback and at most one ``error:`` line, the last one;
2. the exit code is the documented one (tsam_cli/errors.py: 0 ok, 2 usage, 3 input, 4 mask,
   5 output, 6 weights, 7 dataset, 8 partial batch, 128+n signal);
3. no file is lost: every input file and folder is byte-identical afterwards, and nothing named
   ``.tsam-`` (temporaries, locks, set-aside folders) is left anywhere, nor in ``$TMPDIR``, nor
   held open by an in-process run (a deleted temporary still open keeps its disk space);
4. no silent wrong output: on exit 0 every output exists and is read back (frame count and size
   with :mod:`tsam_cli.media`, JSON/CSV parsed, a training run's generator present); on any other
   exit nothing at all was created.

A row whose current behaviour breaks a check is marked ``xfail(strict=True)`` with what is wrong,
so the suite stays green and the defect visible; the expectation itself is never weakened.
Rows run in this process (fast) unless they need a child: environment variables read at
start-up (``TMPDIR``), standard streams, FIFOs (a blocking open must not hang the suite) and
signals. Nothing depends on timing (signals are sent at tsam's named pause points).

Run: ``pytest -m slow tests/test_hostile.py`` (docs/hostile-inputs.md).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_helpers import full_dir, interrupt_at, leftovers, one_error_line, readonly_dir, snapshot, unmount
from conftest import translating_video, write_pngs, write_rgba_video, write_video

pytestmark = pytest.mark.slow

H, W, T = 48, 64, 8  # every library video: 64x48, 8 frames (mask static needs 8)
try:
    import rapidocr  # noqa: F401

    HAS_OCR = True
except ImportError:
    HAS_OCR = False
HAS_GPU = shutil.which("nvidia-smi") is not None
#: names that must make tsam's output layer or a shell misbehave if handled carelessly
ODD_NAME = "a b [red]x[bold] é ü.mp4"
LONG_NAME = "L" * 246 + ".mp4"  # 250 bytes, legal on every Linux filesystem


# ------------------------------------------------------------------------------ the media library
def _frames(seed: int = 0, n: int = T, h: int = H, w: int = W) -> np.ndarray:
    """``(n, h, w, 3) uint8``: a sliding texture with a static white logo at (4, 4), 10x10."""
    v = translating_video(T=n, h=h, w=w, seed=seed).copy()
    v[:, 4:14, 4:14] = 255
    return v


def _logo_clip(n: int = 16) -> np.ndarray:
    """``(n, H, W, 3) uint8``: a panning texture under a white box-and-ring logo (top right),
    what ``tsam mask static`` finds (8 frames at this size are too few for it)."""
    v = translating_video(T=n, h=H, w=W, dx=3, dy=1, seed=5).copy()
    logo = np.zeros((H, W), np.uint8)
    cv2.rectangle(logo, (W - 30, 4), (W - 16, 14), 1, -1)
    cv2.circle(logo, (W - 8, 9), 5, 1, 2)
    v[:, logo > 0] = 255
    return v


def _box_mask(h: int = H, w: int = W) -> np.ndarray:
    """``(h, w) uint8`` 0/255: a 16x12 box at (20, 16)."""
    m = np.zeros((h, w), np.uint8)
    m[16:28, 20:36] = 255
    return m


def _videos(lib: Path) -> None:
    """Healthy and damaged input videos."""
    good = write_video(lib / "v.mp4", _frames(), fps=10)
    write_video(lib / "v.mkv", _frames(), fps=10)
    write_video(lib / "odd.mp4", _frames(h=47, w=63), fps=10, pix_fmt="yuv444p")
    write_video(lib / "one.mp4", _frames()[:1], fps=10)
    write_video(lib / "px1.mkv", np.full((4, 1, 1, 3), 128, np.uint8), fps=10, codec="ffv1", pix_fmt="yuv444p")
    write_video(lib / "long.mp4", _frames(n=40), fps=10)
    write_video(lib / "logo.mkv", _logo_clip(), fps=10, codec="ffv1", pix_fmt="yuv444p")  # lossless: found
    shutil.copy(good, lib / ODD_NAME)
    (lib / "empty.mp4").write_bytes(b"")
    (lib / "junk.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes())
    data = (lib / "long.mp4").read_bytes()
    (lib / "trunc.mp4").write_bytes(data[: len(data) * 2 // 5])
    mkv = write_video(lib / "long.mkv", _frames(n=40), fps=10)
    (lib / "trunc.mkv").write_bytes(mkv.read_bytes()[: mkv.stat().st_size * 2 // 5])
    logo = write_video(lib / "logo40.mkv", _logo_clip(40), fps=10)
    (lib / "trunc_logo.mkv").write_bytes(logo.read_bytes()[: logo.stat().st_size * 2 // 5])
    (lib / "dup").mkdir()
    shutil.copy(good, lib / "dup" / "v.mp4")
    (lib / "notes.txt").write_text("not a video\n")
    _audio_only(lib / "audio.mp4")


def _audio_only(path: Path) -> None:
    """An .mp4 with one second of silence and no video stream."""
    import av

    with av.open(str(path), "w") as out:
        aus = out.add_stream("aac", rate=44100)
        aus.layout = "mono"
        for s in range(0, 44100, 1024):
            af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            af.sample_rate, af.pts = 44100, s
            out.mux(aus.encode(af))
        out.mux(aus.encode(None))


def _folders(lib: Path) -> None:
    """Frame folders: PNG, grey, 16-bit, 1x1, and damaged ones."""
    write_pngs(lib / "frames", _frames())
    write_pngs(lib / "grey", [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in _frames()])
    lib.joinpath("f16").mkdir()
    for i, f in enumerate(_frames()):
        cv2.imwrite(str(lib / "f16" / f"{i:05d}.png"), f[..., ::-1].astype(np.uint16) * 257)
    write_pngs(lib / "px1f", np.full((4, 1, 1, 3), 128, np.uint8))
    write_pngs(lib / "zeropng", _frames())
    (lib / "zeropng" / "00003.png").write_bytes(b"")
    write_pngs(lib / "textpng", _frames())
    (lib / "textpng" / "00003.png").write_text("I am text, not a PNG\n")
    (lib / "emptydir").mkdir()
    write_pngs(lib / "mixsize", [*_frames()[:4], *_frames(h=32, w=40)[:4]])
    write_pngs(lib / "gaps", _frames(), name="{:d}.png")  # 0.png .. 7.png, then a gap and other files
    (lib / "gaps" / "7.png").rename(lib / "gaps" / "9.png")
    (lib / "gaps" / "readme.txt").write_text("notes\n")
    (lib / "gaps" / "sub").mkdir()
    shutil.copy(lib / "v.mp4", lib / "é.mp4")


def _masks(lib: Path) -> None:
    """Masks in every form, healthy and hostile."""
    box = _box_mask()
    cv2.imwrite(str(lib / "m.png"), box)
    write_pngs(lib / "mdir", [box] * T)
    write_pngs(lib / "mshort", [box] * 3)
    write_video(lib / "mvid.mkv", np.repeat(box[None, ..., None], 3, -1).repeat(T, 0), fps=10, codec="ffv1",
                pix_fmt="yuv444p")
    cv2.imwrite(str(lib / "mbig.png"), cv2.resize(box, (W * 2, H * 2), interpolation=cv2.INTER_NEAREST))
    cv2.imwrite(str(lib / "black.png"), np.zeros((H, W), np.uint8))
    cv2.imwrite(str(lib / "white.png"), np.full((H, W), 255, np.uint8))
    rgba = np.zeros((H, W, 4), np.uint8)
    rgba[..., 3] = box  # drawn in the alpha channel only, colour all black
    cv2.imwrite(str(lib / "rgba.png"), rgba)
    cv2.imwrite(str(lib / "m16.png"), box.astype(np.uint16) * 257)
    alpha = np.zeros((T, H, W, 4), np.uint8)
    alpha[..., 3] = box
    write_rgba_video(lib / "malpha.mov", alpha, fps=10)
    from PIL import Image

    Image.fromarray((box > 0).astype(np.uint8)).convert("P").save(lib / "pal.png")  # DAVIS-style palette
    Image.fromarray(np.stack([box, box], -1), "LA").save(lib / "la.png")
    write_pngs(lib / "mixm", [box] * 4 + [cv2.resize(box, (W * 2, H * 2), interpolation=cv2.INTER_NEAREST)] +
               [box] * 3)
    (lib / "zero.png").write_bytes(b"")
    (lib / "text.png").write_text("a text file named .png\n")


def _datasets(lib: Path) -> None:
    """'folder' datasets for eval/train (two 6-frame clips), results, weights and configs."""
    for i, name in enumerate(("a", "b")):
        write_pngs(lib / "ds" / name, _frames(seed=i + 1, n=6))
        write_pngs(lib / "res" / name, _frames(seed=i + 1, n=6))
        write_pngs(lib / "res_short" / name, _frames(seed=i + 1, n=3 if name == "b" else 6))
    write_pngs(lib / "ds_bad" / "a", _frames(n=6))
    for i in (2, 3):  # every 3-frame window holds one
        (lib / "ds_bad" / "a" / f"0000{i}.png").write_bytes(b"")
    for name, src in (("ds_trunc", "trunc.mkv"), ("ds_junk", "junk.mp4")):
        (lib / name).mkdir()
        shutil.copy(lib / src, lib / name / src)
    write_pngs(lib / "ds_junk" / "a", _frames(seed=1, n=6))
    write_pngs(lib / "ds_short" / "a", _frames(n=2))
    (lib / "ds_empty").mkdir()
    (lib / "fake.pth").write_bytes(b"\x00" * 64)
    (lib / "bad.json").write_text("{not json")
    (lib / "empty.safetensors").write_bytes(b"")
    (lib / "batch").mkdir()
    write_video(lib / "batch" / "c1.mp4", _frames(seed=3), fps=10)
    write_video(lib / "batch" / "c2.mp4", _frames(seed=4), fps=10)
    (lib / "batch" / "c3.mp4").write_bytes(b"broken")
    box = _box_mask()
    write_pngs(lib / "bmasks" / "c1", [box] * T)
    cv2.imwrite(str(lib / "bmasks" / "c2.png"), box)


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    """All inputs, made once; every case works on its own copy (``in/``)."""
    lib = tmp_path_factory.mktemp("library")
    for make in (_videos, _folders, _masks, _datasets):
        make(lib)
    (lib / LONG_NAME).write_bytes((lib / "v.mp4").read_bytes())
    (lib / "link.mp4").symlink_to("v.mp4")
    (lib / "dangling.mp4").symlink_to("nowhere.mp4")
    return lib


# ------------------------------------------------------------------------------ rows
@dataclass(frozen=True)
class Out:
    """One output to read back: ``path`` relative to the case folder; ``kind`` is ``media``
    (frame count and ``size`` (w, h) decoded back), ``json``, ``csv``, ``run`` (a training run
    folder), ``stdout`` (text on stdout, no file)."""

    path: str
    kind: str = "media"
    frames: int | None = T
    size: tuple[int, int] | None = (W, H)
    like: str | None = None  # frames: as many as tsam decodes from this input (a damaged one)


@dataclass(frozen=True)
class Expect:
    """The exit code and, on 0, the outputs (anything else that changes is a failure)."""

    code: int
    outs: tuple[Out, ...] = ()


def ok(*outs: Out | str) -> Expect:
    return Expect(0, tuple(o if isinstance(o, Out) else Out(o) for o in outs))


def err(code: int) -> Expect:
    return Expect(code)


@dataclass(frozen=True)
class Row:
    """``argv`` (strings, paths relative to the case folder, which is the working folder; or a
    callable of that folder), ``expect``; ``prep(case)`` arranges the scene (may return a clean-up);
    ``env`` extra variables; ``child``: run as a process (``stdio`` names a stream arrangement,
    ``sig`` = (pause point, signal))."""

    argv: list | Callable
    expect: Expect
    prep: Callable | None = None
    env: dict = field(default_factory=dict)
    child: bool = False
    stdio: str | None = None
    sig: tuple | None = None


def row(id: str, argv, expect: Expect, *, xfail: str | None = None, ocr: bool = False, nogpu: bool = False, **kw):
    """A pytest param; ``xfail``: the defect this row shows today (strict: it must still fail);
    ``ocr``: needs the text extra; ``nogpu``: expects a machine without a CUDA GPU."""
    marks = []
    if ocr:
        marks.append(pytest.mark.skipif(not HAS_OCR, reason="mask text needs the optional rapidocr extra"))
    if nogpu:
        marks.append(pytest.mark.skipif(HAS_GPU, reason="checks the message for a machine without a CUDA GPU"))
    if xfail:
        marks.append(pytest.mark.xfail(strict=True, reason=xfail))
    child = kw.pop("child", False) or bool(kw.get("stdio") or kw.get("sig"))
    return pytest.param(Row(argv, expect, child=child, **kw), id=id, marks=marks)


# ------------------------------------------------------------------------------ scene helpers (prep)
def fifo(rel: str):
    return lambda case: os.mkfifo(case / rel)


def _unmount(path: Path) -> None:
    """:func:`unmount`, then a lazy unmount if a file is still open there (a leak the row reports)."""
    unmount(path)
    if os.path.ismount(path):
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def readonly(rel: str):
    def prep(case: Path):
        path = readonly_dir(case / rel)
        return lambda: _unmount(path)
    return prep


def existing(rel: str, data: bytes = b"the user's own file"):
    def prep(case: Path):
        (case / rel).parent.mkdir(parents=True, exist_ok=True)
        (case / rel).write_bytes(data)
    return prep


def user_frames(rel: str, n: int = 2):
    """A user's folder of frames named as tsam names them, without tsam's ``.tsam-output`` mark."""
    return lambda case: write_pngs(case / rel, _frames()[:n]) and None


def tsam_folder(rel: str, n: int = 2):
    """An output folder tsam wrote earlier (frames and the ``.tsam-output`` mark)."""
    def prep(case: Path):
        write_pngs(case / rel, _frames()[:n])
        (case / rel / ".tsam-output").write_text("")
    return prep


def symlink(rel: str, target: str):
    return lambda case: (case / rel).symlink_to(target)


def full(rel: str):
    """``rel`` made a full filesystem (a filled 16 KiB tmpfs; skips where mounting is not allowed)."""
    def prep(case: Path):
        path = full_dir(case / rel)
        return lambda: _unmount(path)
    return prep


def fifo_instead(rel: str):
    """The file ``rel`` replaced by a FIFO of the same name (opening it for reading blocks)."""
    def prep(case: Path):
        (case / rel).unlink()
        os.mkfifo(case / rel)
    return prep


def device_instead(rel: str):
    """The file ``rel`` replaced by a link to /dev/zero (reads never end)."""
    def prep(case: Path):
        (case / rel).unlink()
        (case / rel).symlink_to("/dev/zero")
    return prep


def fake_run(rel: str, checkpoint: bytes | None = b"not a checkpoint", **config):
    """A training run folder: a valid config.json (with ``config`` changes) and ``checkpoint`` bytes."""
    def prep(case: Path):
        from tsam_cli.train.trainer import TrainConfig

        cfg = TrainConfig(root="in/ds", width=W, height=H, frames=3, steps=1, batch_size=1, workers=0, device="cpu",
                          perceptual=False)
        (case / rel).mkdir(parents=True)
        (case / rel / "config.json").write_text(json.dumps({**dataclasses.asdict(cfg), **config}))
        if checkpoint is not None:
            (case / rel / "checkpoint.pt").write_bytes(checkpoint)
    return prep


def hardlink(rel: str, target: str):
    return lambda case: os.link(case / target, case / rel)


def copy(rel: str, source: str):
    return lambda case: shutil.copy(case / source, case / rel) and None


def both(*preps):
    def prep(case: Path):
        undo = [p(case) for p in preps]
        return lambda: [u() for u in reversed(undo) if u]
    return prep


# ------------------------------------------------------------------------------ argv builders
BOX = ("--box", "20,16,16,12")


def inp(*extra, src="in/v.mp4", out="out/o.mp4", mask=BOX) -> list:
    return ["inpaint", src, *mask, "-o", out, "-q", *extra]


def prev(*extra, src="in/v.mp4", out="out/p.mp4", what=BOX) -> list:
    return ["preview", src, *what, "-o", out, "-q", *extra]


def track(*extra, src="in/v.mp4", out="out/t.mkv", what=BOX) -> list:
    return ["mask", "track", src, *what, "--net-steps", "0", "-o", out, "-q", *extra]


def static(*extra, src="in/logo.mkv", out="out/s.mkv") -> list:
    return ["mask", "static", src, "-o", out, "-q", *extra]


def text(*extra, src="in/v.mp4", out="out/x.mkv") -> list:
    return ["mask", "text", src, "-o", out, "-q", *extra]


def evl(*extra, root="in/ds") -> list:
    return ["eval", "--dataset", "folder", "--root", root, "--size", "64x48", "--metrics", "psnr", "-q", *extra]


def gen(*extra, out="out/g") -> list:
    return ["masks", "generate", "-o", out, "--frames", "3", "--size", "64x48", *extra]


def train(*extra, root="in/ds", run="out/run") -> list:
    return ["train", "--root", root, "--size", "64x48", "--frames", "3", "--steps", "1", "--batch-size", "1",
            "--workers", "0", "--device", "cpu", "--no-perceptual", "--sample-every", "0", "-q", "--run-dir", run,
            *extra]


def conv(src="in/fake.pth", out="out/c.safetensors", *extra) -> list:
    return ["weights", "convert", src, "-o", out, *extra]


O_INP, O_PREV, O_TRACK = Out("out/o.mp4"), Out("out/p.mp4"), Out("out/t.mkv")
O_CONF = Out("out/t.mkv.confidence.json", "json")  # mask track's per-frame confidence beside its masks
O_STATIC, O_GEN = Out("out/s.mkv", frames=16), Out("out/g", frames=3)
O_RUN, O_JSON, O_TABLE = Out("out/run", "run"), Out("out/r.json", "json"), Out("", "stdout")
BAD_NUMBERS = {"nan": "nan", "inf": "inf", "neg": "-1", "1e9": "1e9", "huge": "99999999999999999999", "word": "ten"}


def numbers(prefix: str, build, flag: str, bad=tuple(BAD_NUMBERS), code: int = 2, **kw) -> list:
    """One exit-``code`` row per hostile value of ``flag`` (values of :data:`BAD_NUMBERS`)."""
    return [row(f"{prefix}{flag}={name}", build(flag, BAD_NUMBERS[name]), err(code), **kw) for name in bad]


# ------------------------------------------------------------------------------ rows: numbers
NUMBER_ROWS = [
    # inpaint: every numeric option, the edges of its range and what no range allows
    *numbers("inpaint", inp, "--dilate"),
    row("inpaint--dilate=0", inp("--dilate", "0"), ok(O_INP)),
    row("inpaint--dilate=257", inp("--dilate", "257"), err(2)),
    *numbers("inpaint", inp, "--crf", ("nan", "neg", "huge")),
    row("inpaint--crf=0", inp("--crf", "0"), ok(O_INP)),
    row("inpaint--crf=52", inp("--crf", "52"), err(2)),
    *numbers("inpaint", inp, "--window", ("neg", "1e9", "huge")),
    row("inpaint--window=1", inp("--window", "1"), err(2)),
    row("inpaint--window=2", inp("--window", "2"), ok(O_INP)),
    row("inpaint--lookahead=neg", inp("--lookahead", "-1"), err(2)),
    *numbers("inpaint", inp, "--max-size", ("neg", "huge")),
    row("inpaint--max-size=0", inp("--max-size", "0"), err(2)),
    row("inpaint--max-size=16", inp("--max-size", "16"), ok(O_INP)),
    *numbers("inpaint", lambda f, v: inp(f, v, mask=("--mask", "in/m.png")), "--mask-threshold", ("neg", "nan")),
    row("inpaint--mask-threshold=65535", inp("--mask-threshold", "65535", mask=("--mask", "in/m.png")), err(2)),
    row("inpaint--mask-threshold=254", inp("--mask-threshold", "254", mask=("--mask", "in/m.png")), ok(O_INP)),
    *numbers("inpaint", lambda f, v: inp(f, v, src="in/frames"), "--fps", ("nan", "inf", "neg", "1e9")),
    row("inpaint--fps=0", inp("--fps", "0", src="in/frames"), err(2)),
    row("inpaint--fps=0.01", inp("--fps", "0.01", src="in/frames"), ok(O_INP)),
    row("inpaint--fps-on-a-file", inp("--fps", "30"), err(2)),
    row("inpaint--model-window=0", inp("--model-window", "0"), err(2)),
    row("inpaint--model-stride-above-window", inp("--model-stride", "13"), err(2)),
    row("inpaint--box=empty-area", inp(mask=("--box", "20,16,0,0")), err(2)),
    row("inpaint--box=negative-is-clipped", inp(mask=("--box", "-5,-5,10,10")), ok(O_INP)),
    row("inpaint--box=outside-frame", inp(mask=("--box", "100,100,5,5")), err(2)),
    row("inpaint--box=three-values", inp(mask=("--box", "1,2,3")), err(2)),
    row("inpaint--box=nan", inp(mask=("--box", "nan,1,1,1")), err(2)),
    row("inpaint--box=1e9", inp(mask=("--box", "0,0,1e9,5")), err(2)),
    row("inpaint--box=covers-all", inp(mask=("--box", "0,0,99999,99999")), err(4)),
    *[row(f"inpaint--shard={s}", inp("--shard", s), err(2)) for s in ("0/0", "3/2", "a/b", "-1/2")],
    # preview
    *numbers("preview", prev, "--opacity", ("nan", "inf", "neg")),
    row("preview--opacity=1.5", prev("--opacity", "1.5"), err(2)),
    row("preview--opacity=0", prev("--opacity", "0"), ok(O_PREV)),
    *numbers("preview", prev, "--outline", ("neg", "huge")),
    row("preview--outline=65", prev("--outline", "65"), err(2)),
    row("preview--wipe-period=1", prev("--wipe", "--wipe-period", "1", what=("--result", "in/v.mkv")), err(2)),
    row("preview--crf=52", prev("--crf", "52"), err(2)),
    *numbers("preview", prev, "--dilate", ("neg", "1e9")),
    row("preview--mask-threshold=neg", prev("--mask-threshold", "-1", what=("--mask", "in/m.png")), err(2)),
    row("preview--fps=0", prev("--fps", "0", src="in/frames"), err(2)),
    row("preview--fps=nan", prev("--fps", "nan", src="in/frames"), err(2)),
    row("preview--box=zero", prev(what=("--box", "0,0,0,0")), err(2)),
    # mask static
    *numbers("static", static, "--samples", ("neg", "huge")),
    row("static--samples=7", static("--samples", "7"), err(2)),
    row("static--analysis-size=63", static("--analysis-size", "63"), err(2)),
    *numbers("static", static, "--pad", ("neg", "word")),
    *numbers("static", static, "--min-area", ("nan", "inf", "neg")),
    row("static--min-area=0.6", static("--min-area", "0.6"), err(2)),
    row("static--tolerance=0", static("--tolerance", "0"), err(2)),
    row("static--tolerance=256", static("--tolerance", "256"), err(2)),
    row("static--fps=0", static("--fps", "0", src="in/frames"), err(2)),
    # mask track
    *numbers("track", track, "--frame", ("neg", "1e9", "huge")),
    row("track--frame=past-the-end", track("--frame", "8"), err(2)),
    row("track--max-size=31", track("--max-size", "31"), err(2)),
    row("track--net-steps=neg", track("--net-steps", "-1"), err(2)),
    row("track--net-seed=neg", track("--net-seed", "-1"), err(2)),
    row("track--net-seed=2^31", track("--net-seed", str(2**31)), err(2)),
    row("track--iterations=0", track("--refit", "grabcut", "--iterations", "0"), err(2)),
    row("track--ring=0", track("--ring", "0"), err(2)),
    *numbers("track", track, "--area-change", ("nan", "inf")),
    row("track--area-change=0.5", track("--area-change", "0.5"), err(2)),
    row("track--min-agreement=2", track("--min-agreement", "2"), err(2)),
    row("track--min-area=0", track("--min-area", "0"), err(2)),
    row("track--dilate=257", track("--dilate", "257"), err(2)),
    row("track--update-every=neg", track("--update-every", "-1"), err(2)),
    row("track--box=zero", track(what=("--box", "0,0,0,0")), err(2)),
    row("track--box=outside-frame", track(what=("--box", "100,100,10,10")), err(2)),
    row("track--box=words", track(what=("--box", "a,b,c,d")), err(2)),
    row("track-no-object", track(what=()), err(2)),
    # mask text (the detector is an optional extra)
    *[row(f"text{f}={v}", text(f, v), err(2), ocr=True) for f, v in (
        ("--every", "0"), ("--pad", "-1"), ("--threshold", "nan"), ("--threshold", "1.5"), ("--min-frames", "0"),
        ("--max-gap", "-1"), ("--region", "0,0,0,0"), ("--region", "middle"))],
    row("text--fps=0", text("--fps", "0", src="in/frames"), err(2), ocr=True),
    # eval
    *[row(f"eval--size={s}", evl("--size", s), err(2)) for s in ("0x0", "15x15", "100000x100000", "abc", "64x-48")],
    *numbers("eval", evl, "--max-videos", ("neg", "1e9")),
    row("eval--max-videos=0", evl("--max-videos", "0"), err(2)),
    row("eval--max-videos=1", evl("--max-videos", "1"), ok(O_TABLE)),
    *numbers("eval", evl, "--max-frames", ("neg", "word")),
    row("eval--max-frames=0", evl("--max-frames", "0"), err(2)),
    row("eval--max-frames=huge-is-all", evl("--max-frames", "999999999", "--json", "out/r.json"), ok(O_JSON)),
    row("eval--seed=neg", evl("--seed", "-1"), ok(O_TABLE)),
    *[row(f"eval--area={a}", evl("--area", a), err(2)) for a in ("nan-nan", "50-40", "0-200", "abc")],
    row("eval--metrics=unknown", evl("--metrics", "nosuch"), err(2)),
    # train
    *[row(f"train--size={s}", train("--size", s), err(2)) for s in ("63x48", "0x0", "8x8", "100000x100000", "abc")],
    *numbers("train", train, "--frames", ("neg", "1e9")),
    row("train--frames=0", train("--frames", "0"), err(2)),
    *numbers("train", train, "--batch-size", ("neg", "huge")),
    row("train--batch-size=0", train("--batch-size", "0"), err(2)),
    *numbers("train", train, "--lr", ("nan", "inf", "neg", "1e9")),
    row("train--lr=0", train("--lr", "0"), err(2)),
    *numbers("train", train, "--steps", ("neg", "huge")),
    row("train--steps=0", train("--steps", "0"), err(2)),
    row("train--epochs=neg", train("--epochs", "-1", "--steps", "0"), err(2)),
    row("train--stage1-steps=neg", train("--stage1-steps", "-1"), err(2)),
    *numbers("train", train, "--grad-clip", ("nan", "neg")),
    row("train--workers=neg", train("--workers", "-1"), err(2)),
    row("train--sample-every=neg", train("--sample-every", "-1"), err(2)),
    row("train--ckpt-every=neg", train("--ckpt-every", "-1"), err(2)),
    # masks generate
    *numbers("generate", gen, "--frames", ("neg", "huge")),
    row("generate--frames=0", gen("--frames", "0"), err(2)),
    row("generate--frames=1e8", gen("--frames", "100000000"), err(2)),
    *[row(f"generate--size={s}", gen("--size", s), err(2)) for s in ("0x0", "15x15", "100000x100000")],
    row("generate--seed=neg", gen("--seed", "-1"), err(2)),
    *[row(f"generate--area={a}", gen("--area", a), err(2)) for a in ("nan-nan", "50-40", "abc")],
    row("generate-baseline", gen(), ok(O_GEN)),
]

# ------------------------------------------------------------------------------ rows: paths
LONG_OUT = "out/" + "o" * 246 + ".mp4"  # 250 bytes: legal
TOO_LONG_OUT = "out/" + "o" * 252 + ".mp4"  # 256 bytes: no Linux filesystem takes it
PATH_ROWS = [
    # inputs that are not a video
    row("inpaint-input-missing", inp(src="in/nope.mp4"), err(3)),
    row("inpaint-input-empty-folder", inp(src="in/emptydir"), err(3)),
    row("inpaint-input-dangling-link", inp(src="in/dangling.mp4"), err(3)),
    row("inpaint-input-fifo", inp(src="in/pipe.mp4"), err(3), prep=fifo("in/pipe.mp4"), child=True),
    row("inpaint-input-devnull", inp(src="/dev/null"), err(3)),
    row("inpaint-input-dash", inp(src="-"), err(3)),
    row("inpaint-input-empty-string", inp(src=""), err(3)),
    row("inpaint-input-dot", inp(src="."), err(3)),
    row("inpaint-input-text-file", inp(src="in/notes.txt"), err(3)),
    row("inpaint-input-audio-only", inp(src="in/audio.mp4"), err(3)),
    row("inpaint-input-symlink-loop", inp(src="in/loop.mp4"), err(3), prep=symlink("in/loop.mp4", "loop.mp4")),
    row("inpaint-input-missing-with-glob-characters", inp(src="in/[red]gone[/red].mp4"), err(2)),
    row("inpaint-input-missing-with-newline", inp(src="in/no\nsuch.mp4"), err(3)),
    *[row(f"{name}-path-with-newline", argv, err(code))
      for name, argv, code in (
          ("preview", prev(src="in/a\nb.mp4"), 3), ("track", track(src="in/a\nb.mp4"), 3),
          ("static", static(src="in/a\nb.mp4"), 3), ("eval", evl(root="in/a\nb"), 7),
          ("train", train(root="in/a\nb"), 7), ("convert", conv("in/a\nb.pth"), 6),
          ("inpaint-mask", inp(mask=("--mask", "in/a\nb.png")), 4), ("train-model-json", train("--model", "in/a\nb.json"), 2))],
    # inputs with awkward but legal names
    row("inpaint-input-symlink", inp(src="in/link.mp4"), ok(O_INP)),
    row("inpaint-input-unicode-spaces-markup", inp(src="in/" + ODD_NAME), ok(O_INP)),
    row("inpaint-input-250-byte-name", inp(src="in/" + LONG_NAME), ok(O_INP)),
    row("inpaint-output-unicode-spaces-markup", inp(out="out/" + ODD_NAME), ok(Out("out/" + ODD_NAME))),
    row("inpaint-output-250-byte-name", inp(out=LONG_OUT), ok(Out(LONG_OUT))),
    row("inpaint-output-existing-empty-folder", inp(out="out"), err(5)),
    row("inpaint-output-existing-empty-folder-overwrite", inp("--overwrite", out="out"), ok(Out("out"))),
    row("inpaint-input-literal-brackets-file", inp(src="in/[v].mp4"), ok(Out("out/o.mp4", frames=1)),
        prep=copy("in/[v].mp4", "in/one.mp4")),
    row("inpaint-output-newline-in-name", inp(out="out/new\nline.mp4"), ok(Out("out/new\nline.mp4"))),
    row("inpaint-output-uppercase-suffix", inp(out="out/o.MP4"), ok(Out("out/o.MP4"))),
    # outputs that must be refused
    *[row(f"inpaint-output-suffix-{x}", inp(out=f"out/o.{x}"), err(5)) for x in ("avi", "webm", "png", "txt")],
    row("inpaint-output-parent-is-a-link", inp(out="outlink/o.mp4"), ok(O_INP), prep=symlink("outlink", "out")),
    row("inpaint-output-is-input-via-linked-parent", inp("--overwrite", out="inlink/v.mp4"), err(5),
        prep=symlink("inlink", "in")),
    row("batch-output-is-the-mask-dir", ["inpaint", "in/batch/c1.mp4", "in/batch/c2.mp4", "--mask-dir", "in/bmasks",
                                         "-o", "in/bmasks", "-q"], err(5)),
    row("batch-output-inside-the-mask-dir", ["inpaint", "in/batch/c1.mp4", "in/batch/c2.mp4", "--mask-dir",
                                             "in/bmasks", "-o", "in/bmasks/out", "-q"], err(5)),
    row("inpaint-output-hard-link-to-input", inp("--overwrite", out="out/h.mp4"), err(5),
        prep=hardlink("out/h.mp4", "in/v.mp4")),
    row("inpaint-output-inside-input-frame-folder", inp(src="in/frames", out="in/frames/o.mp4"), err(5)),
    row("preview-output-inside-input-frame-folder", prev(src="in/frames", out="in/frames/p.mp4"), err(5)),
    row("track-output-inside-seed-mask-folder", track(what=("--seed", "in/mdir"), out="in/mdir/t.mkv"), err(5)),
    row("inpaint-output-256-byte-name", inp(out=TOO_LONG_OUT), err(5)),
    row("inpaint-output-dash", inp(out="-"), err(5)),
    row("inpaint-output-empty-string", inp(out=""), err(5)),
    row("inpaint-output-dot", inp("--overwrite", out="."), err(5)),
    row("inpaint-output-devnull", inp("--overwrite", out="/dev/null"), err(5)),
    row("inpaint-output-fifo", inp("--overwrite", out="out/pipe.mp4"), err(5), prep=fifo("out/pipe.mp4"), child=True),
    row("inpaint-output-symlink", inp("--overwrite", out="out/l.mp4"), err(5), prep=symlink("out/l.mp4", "x.mp4")),
    row("inpaint-output-is-input", inp("--overwrite", out="in/v.mp4"), err(5)),
    row("inpaint-output-is-input-via-link", inp("--overwrite", src="in/link.mp4", out="in/v.mp4"), err(5)),
    row("inpaint-output-is-input-via-dotdot", inp("--overwrite", out="out/../in/v.mp4"), err(5)),
    row("inpaint-output-is-mask", inp("--overwrite", out="in/mvid.mkv", mask=("--mask", "in/mvid.mkv")), err(5)),
    row("inpaint-output-is-frame-folder-input", inp("--overwrite", src="in/frames", out="in/frames"), err(5)),
    row("inpaint-output-is-mask-folder", inp("--overwrite", out="in/mdir", mask=("--mask", "in/mdir")), err(5)),
    row("inpaint-output-contains-input", inp("--overwrite", out="in"), err(5)),
    row("inpaint-output-missing-parent", inp(out="out/nope/o.mp4"), err(5)),
    row("inpaint-output-parent-is-file", inp(out="in/notes.txt/o.mp4"), err(5)),
    row("inpaint-output-read-only-folder", inp(out="ro/o.mp4"), err(5), prep=readonly("ro")),
    row("inpaint-output-unknown-suffix-file", inp("--overwrite", out="in/notes.txt"), err(5)),
    # masks that are not a mask
    row("inpaint-mask-missing", inp(mask=("--mask", "in/nope.png")), err(4)),
    row("inpaint-mask-empty-folder", inp(mask=("--mask", "in/emptydir")), err(4)),
    row("inpaint-mask-devnull", inp(mask=("--mask", "/dev/null")), err(4)),
    row("inpaint-mask-audio-only", inp(mask=("--mask", "in/audio.mp4")), err(4)),
    row("inpaint-model-file-missing", inp("--model", "in/nope.safetensors"), err(6)),
    row("inpaint-model-file-corrupt", inp("--model", "in/fake.pth"), err(6)),
    row("inpaint-model-full-not-downloaded", inp("--model", "full"), err(6)),
    row("download-offline", ["weights", "download", "vgg16-imagenet", "-q"], err(6)),
    row("weights-list-cached-path-is-a-folder", ["weights", "list"], ok(O_TABLE),
        prep=lambda case: (case / "home/weights/vgg16-397923af.pth").mkdir(parents=True)),
    row("download-cached-path-is-a-folder", ["weights", "download", "vgg16-imagenet", "-q", "--force"], err(6),
        prep=lambda case: (case / "home/weights/vgg16-397923af.pth").mkdir(parents=True)),
    row("download-cached-path-is-a-link", ["weights", "download", "vgg16-imagenet", "-q", "--force"], err(6),
        prep=both(lambda case: (case / "home/weights").mkdir(), symlink("home/weights/vgg16-397923af.pth",
                                                                         "/dev/zero"))),
    row("download-TSAM_HOME-read-only", ["weights", "download", "vgg16-imagenet", "-q"], err(6),
        prep=readonly("rohome"), env={"TSAM_HOME": "rohome"}),
    row("inpaint-mask-fifo", inp(mask=("--mask", "in/pipe.png")), err(4), prep=fifo("in/pipe.png"), child=True),
    row("inpaint-mask-dir-is-a-file", ["inpaint", "in/batch/c1.mp4", "in/batch/c2.mp4", "--mask-dir", "in/m.png",
                                       "-o", "out/b", "-q"], err(2)),
    # preview
    row("preview-input-missing", prev(src="in/nope.mp4"), err(3)),
    row("preview-output-is-input", prev("--overwrite", out="in/v.mp4"), err(5)),
    row("preview-output-dot", prev("--overwrite", out="."), err(5)),
    row("preview-output-read-only-folder", prev(out="ro/p.mp4"), err(5), prep=readonly("ro")),
    row("preview-output-fifo", prev("--overwrite", out="out/pipe.mp4"), err(5), prep=fifo("out/pipe.mp4"), child=True),
    row("preview-output-is-result", prev("--overwrite", what=("--result", "in/v.mkv"), out="in/v.mkv"), err(5)),
    row("preview-result-missing", prev(what=("--result", "in/nope.mp4")), err(3)),
    row("preview-result-is-folder-of-nothing", prev(what=("--result", "in/emptydir")), err(3)),
    row("preview-output-odd-name", prev(out="out/" + ODD_NAME), ok(Out("out/" + ODD_NAME))),
    # mask track / static
    row("track-seed-missing", track(what=("--seed", "in/nope.png")), err(4)),
    row("track-seed-fifo", track(what=("--seed", "in/pipe.png")), err(4), prep=fifo("in/pipe.png"), child=True),
    row("track-seed-devnull", track(what=("--seed", "/dev/null")), err(4)),
    row("track-output-is-input", track("--overwrite", out="in/v.mkv", src="in/v.mkv"), err(5)),
    row("track-output-is-seed", track("--overwrite", what=("--seed", "in/mvid.mkv"), out="in/mvid.mkv"), err(5)),
    row("track-output-dash", track(out="-"), err(5)),
    row("track-input-fifo", track(src="in/pipe.mp4"), err(3), prep=fifo("in/pipe.mp4"), child=True),
    row("static-output-read-only-folder", static(out="ro/s.mkv"), err(5), prep=readonly("ro")),
    row("static-output-empty-string", static(out=""), err(5)),
    row("static-input-devnull", static(src="/dev/null"), err(3)),
    # eval
    row("eval-root-missing", evl(root="in/nope"), err(7)),
    row("eval-root-is-a-file", evl(root="in/v.mp4"), err(7)),
    row("eval-root-empty", evl(root="in/ds_empty"), err(7)),
    row("eval-json-inside-dataset", evl("--json", "in/ds/r.json"), err(5)),
    row("eval-json-is-dataset-frame", evl("--json", "in/ds/a/00000.png", "--overwrite"), err(5)),
    row("eval-json-dash", evl("--json", "-"), err(5)),
    row("eval-json-fifo", evl("--json", "out/pipe.json", "--overwrite"), err(5), prep=fifo("out/pipe.json"),
        child=True),
    row("eval-csv-devnull", evl("--csv", "/dev/null", "--overwrite"), err(5)),
    row("eval-keep-results-inside-dataset", evl("--keep-results", "in/ds/kept"), err(5)),
    row("eval-keep-results-is-dataset", evl("--keep-results", "in/ds", "--overwrite"), err(5)),
    row("eval-results-missing", evl("--results", "in/nope"), err(7)),
    row("eval-results-is-a-file", evl("--results", "in/v.mp4"), err(7)),
    row("eval-masks-folder-missing", evl("--masks", "in/nope"), err(7)),
    row("eval-json-inside-results", evl("--results", "in/res", "--json", "in/res/r.json"), err(5)),
    row("eval-keep-results-with-results", evl("--results", "in/res", "--keep-results", "out/k"), err(2)),
    row("eval-json-odd-name", evl("--json", "out/a b [red]é.json"), ok(Out("out/a b [red]é.json", "json"))),
    # train
    row("train-root-missing", train(root="in/nope"), err(7)),
    row("train-root-is-a-file", train(root="in/v.mp4"), err(7)),
    row("train-run-dir-inside-dataset", train(run="in/ds/run"), err(5)),
    row("train-run-dir-is-dataset", train(run="in/ds"), err(5)),
    row("train-run-dir-is-a-file", train(run="in/notes.txt"), err(5)),
    row("train-run-dir-read-only", train(run="ro/run"), err(5), prep=readonly("ro")),
    row("train-flow-cache-inside-dataset", train("--flow-cache", "in/ds/fc"), err(5)),
    row("train-init-missing", train("--init", "in/nope.safetensors"), err(6)),
    row("train-init-folder", train("--init", "in/emptydir"), err(6)),
    row("train-init-corrupt", train("--init", "in/fake.pth"), err(6)),
    row("train-model-json-corrupt", train("--model", "in/bad.json"), err(2)),
    row("train-model-json-missing", train("--model", "in/nope.json"), err(2)),
    row("train-vgg-folder", [a for a in train("--vgg", "in/emptydir") if a != "--no-perceptual"], err(6)),
    row("train-resume-missing", ["train", "--resume", "out/nope", "-q"], err(2)),
    row("train-resume-not-a-run", ["train", "--resume", "in/emptydir", "-q"], err(2)),
    # masks generate
    *[row(f"generate-output-{name}", gen(out=o), err(5)) for name, o in (
        ("dash", "-"), ("empty-string", ""), ("dot", "."), ("devnull", "/dev/null"), ("is-a-file", "in/notes.txt"),
        ("inside-a-file", "in/notes.txt/g"))],
    row("generate-output-read-only", gen(out="ro/g"), err(5), prep=readonly("ro")),
    # weights
    row("convert-source-missing", conv("in/nope.pth"), err(6)),
    row("convert-source-folder", conv("in/emptydir"), err(6)),
    row("convert-source-devnull", conv("/dev/null"), err(6)),
    row("convert-source-fifo", conv("in/pipe.pth"), err(6), prep=fifo("in/pipe.pth"), child=True),
    row("convert-output-is-source", conv("in/empty.safetensors", "in/empty.safetensors", "--overwrite"), err(5)),
    row("convert-output-not-safetensors", conv(out="out/c.pth"), err(5)),
    row("convert-output-dash", conv(out="-"), err(5)),
    row("convert-output-read-only", conv(out="ro/c.safetensors"), err(5), prep=readonly("ro")),
    *[row(f"download-name-{k}", ["weights", "download", n, "-q"], err(6)) for k, n in (
        ("unknown", "nosuch"), ("empty", ""), ("path", "../../etc/passwd"), ("markup", "[red]x[/red]"))],
]

# ------------------------------------------------------------------------------ rows: media
MEDIA_ROWS = [
    # damaged or fake inputs
    row("inpaint-empty-file", inp(src="in/empty.mp4"), err(3)),
    row("inpaint-random-bytes-mp4", inp(src="in/junk.mp4"), err(3)),
    row("inpaint-truncated-mp4", inp(src="in/trunc.mp4"), err(3)),
    row("inpaint-truncated-mkv", inp(src="in/trunc.mkv"), err(3)),
    row("inpaint-truncated-mkv-allow-partial", inp("--allow-partial", src="in/trunc.mkv"),
        ok(Out("out/o.mp4", frames=None, size=(W, H), like="in/trunc.mkv"))),
    row("inpaint-zero-byte-png-frame", inp(src="in/zeropng"), err(3)),
    row("inpaint-text-file-named-png", inp(src="in/textpng"), err(3)),
    row("inpaint-frames-of-two-sizes", inp(src="in/mixsize"), err(3)),
    # unusual but valid inputs: the output keeps their size and length
    row("inpaint-1x1-video", inp(src="in/px1.mkv", mask=("--box", "0,0,1,1")), err(4)),
    row("preview-1x1-video-box-covers-all", prev(src="in/px1.mkv", what=("--box", "0,0,1,1")), err(4)),
    row("preview-1x1-video-side-by-side", prev(src="in/px1.mkv", what=("--result", "in/px1.mkv")),
        ok(Out("out/p.mp4", frames=4, size=(2, 1)))),
    row("inpaint-1x1-frames", inp(src="in/px1f", out="out/f", mask=("--box", "0,0,1,1")), err(4)),
    row("inpaint-odd-size", inp(src="in/odd.mp4"), ok(Out("out/o.mp4", size=(63, 47)))),
    row("inpaint-odd-size-to-folder", inp(src="in/odd.mp4", out="out/f"), ok(Out("out/f", size=(63, 47)))),
    row("inpaint-one-frame", inp(src="in/one.mp4"), ok(Out("out/o.mp4", frames=1))),
    row("preview-one-frame", prev(src="in/one.mp4"), ok(Out("out/p.mp4", frames=1))),
    row("track-one-frame", track(src="in/one.mp4"), ok(Out("out/t.mkv", frames=1), O_CONF)),
    row("inpaint-grey-pngs", inp(src="in/grey"), ok(O_INP)),
    row("inpaint-frames-with-gaps-and-other-files", inp(src="in/gaps"), ok(O_INP)),
    row("inpaint-16-bit-pngs", inp(src="in/f16", out="out/f"), ok(Out("out/f"))),
    row("inpaint-mkv-to-mkv", inp(src="in/v.mkv", out="out/o.mkv"), ok(Out("out/o.mkv"))),
    # masks
    row("inpaint-mask-rgba-alpha-only", inp(mask=("--mask", "in/rgba.png")), ok(O_INP)),
    row("inpaint-mask-16-bit", inp(mask=("--mask", "in/m16.png")), ok(O_INP)),
    row("inpaint-mask-palette", inp(mask=("--mask", "in/pal.png")), ok(O_INP)),
    row("inpaint-mask-grey-alpha", inp(mask=("--mask", "in/la.png")), ok(O_INP)),
    row("inpaint-mask-folder-one-frame-other-size", inp(mask=("--mask", "in/mixm")), ok(O_INP)),
    row("inpaint-mask-video-with-alpha", inp(mask=("--mask", "in/malpha.mov")), ok(O_INP)),
    row("inpaint-mask-video", inp(mask=("--mask", "in/mvid.mkv")), ok(O_INP)),
    row("inpaint-mask-folder", inp(mask=("--mask", "in/mdir")), ok(O_INP)),
    row("inpaint-mask-fewer-frames", inp(mask=("--mask", "in/mshort")), err(4)),
    row("inpaint-mask-other-size", inp(mask=("--mask", "in/mbig.png")), ok(O_INP)),
    row("inpaint-mask-all-black", inp(mask=("--mask", "in/black.png")), err(4)),
    row("inpaint-mask-all-white", inp(mask=("--mask", "in/white.png")), err(4)),
    row("inpaint-mask-all-white-inverted", inp("--invert-mask", mask=("--mask", "in/white.png")), err(4)),
    row("inpaint-mask-zero-byte-png", inp(mask=("--mask", "in/zero.png")), err(4)),
    row("inpaint-mask-text-file-named-png", inp(mask=("--mask", "in/text.png")), err(4)),
    row("inpaint-mask-random-bytes-mp4", inp(mask=("--mask", "in/junk.mp4")), err(4)),
    row("inpaint-mask-empty-mp4", inp(mask=("--mask", "in/empty.mp4")), err(4)),
    row("inpaint-mask-folder-with-zero-byte-png", inp(mask=("--mask", "in/zeropng")), err(4)),
    row("inpaint-mask-is-the-video-itself", inp(mask=("--mask", "in/v.mp4")), ok(O_INP)),
    row("preview-mask-fewer-frames", prev(what=("--mask", "in/mshort")), err(4)),
    row("preview-mask-all-black", prev(what=("--mask", "in/black.png")), err(4)),
    row("preview-mask-text-file-named-png", prev(what=("--mask", "in/text.png")), err(4)),
    row("preview-result-shorter", prev(what=("--result", "in/one.mp4")), err(3)),
    row("preview-result-other-size", prev(what=("--result", "in/odd.mp4")), err(3)),
    row("preview-result-random-bytes", prev(what=("--result", "in/junk.mp4")), err(3)),
    row("preview-result-side-by-side", prev(what=("--result", "in/v.mkv")), ok(Out("out/p.mp4", size=(2 * W, H)))),
    row("track-seed-all-black", track(what=("--seed", "in/black.png")), err(4)),
    row("track-seed-text-file-named-png", track(what=("--seed", "in/text.png")), err(4)),
    row("track-seed-other-size", track(what=("--seed", "in/mbig.png")), ok(O_TRACK, O_CONF)),
    row("track-random-bytes-input", track(src="in/junk.mp4"), err(3)),
    row("track-frames-folder-with-zero-byte-png", track(src="in/zeropng"), err(3)),
    row("static-baseline", static(), ok(O_STATIC)),
    row("static-too-few-frames", static(src="in/one.mp4"), err(3)),
    row("static-random-bytes", static(src="in/junk.mp4"), err(3)),
    row("static-truncated", static(src="in/trunc_logo.mkv"), err(3)),
    row("track-truncated", track(src="in/trunc.mkv"), err(3)),
    row("text-random-bytes", text(src="in/junk.mp4"), err(3), ocr=True),
    row("text-baseline-no-text-found", text(), ok(Out("out/x.mkv")), ocr=True),
    row("text-frames-folder-to-folder", text(src="in/grey", out="out/xf"), ok(Out("out/xf")), ocr=True),
    row("text-odd-size", text(src="in/odd.mp4"), ok(Out("out/x.mkv", size=(63, 47))), ocr=True),
    row("text-1x1-video", text(src="in/px1.mkv"), ok(Out("out/x.mkv", frames=4, size=(1, 1))), ocr=True),
    row("text-region-outside-frame", text("--region", "100,100,10,10"), err(2), ocr=True),
    row("text-every-beyond-the-video", text("--every", "1000"), ok(Out("out/x.mkv")), ocr=True),
    row("text-truncated", text(src="in/trunc.mkv"), err(3), ocr=True),
    row("text-one-frame", text(src="in/one.mp4"), ok(Out("out/x.mkv", frames=1)), ocr=True),
    # datasets
    row("eval-frame-zero-bytes", evl(root="in/ds_bad"), err(7)),
    row("eval-dataset-random-bytes-video", evl(root="in/ds_junk"), err(7)),
    row("eval-dataset-truncated-video", evl(root="in/ds_trunc"), err(7)),
    row("eval-results-shorter", evl("--results", "in/res_short"), err(7)),
    row("eval-results-shorter-allowed", evl("--results", "in/res_short", "--allow-partial"), ok(O_TABLE)),
    row("eval-results-baseline", evl("--results", "in/res", "--json", "out/r.json", "--csv", "out/r.csv"),
        ok(O_JSON, Out("out/r.csv", "csv"))),
    row("eval-masks-folder-wrong-layout", evl("--masks", "in/mdir"), err(7)),
    row("train-frame-zero-bytes", train(root="in/ds_bad"), err(7)),
    row("train-clips-too-short", train(root="in/ds_short"), err(7)),
    row("train-empty-dataset", train(root="in/ds_empty"), err(7)),
    row("train--frames=1e6", train("--frames", "1000000"), err(2)),
    row("train-frames-longer-than-clips", train("--frames", "7"), err(7)),
    row("train-baseline", train(), ok(O_RUN)),
    row("train-dataset-truncated-video", train(root="in/ds_trunc"), err(7)),
    row("train-dataset-random-bytes-video-skipped", train(root="in/ds_junk"), ok(O_RUN)),
    row("convert-empty-file", conv("in/empty.safetensors"), err(6)),
    row("convert-zero-bytes-pth", conv("in/fake.pth"), err(6)),
    row("convert-video-as-checkpoint", conv("in/v.mp4"), err(6)),
    # batches: one bad video never stops the others (exit 8), names must not collide
    row("batch-one-broken", ["inpaint", "in/batch/*.mp4", *BOX, "-o", "out/b", "-q"],
        Expect(8, (Out("out/b/c1.mp4"), Out("out/b/c2.mp4")))),
    row("batch-mask-dir", ["inpaint", "in/batch/c1.mp4", "in/batch/c2.mp4", "--mask-dir", "in/bmasks", "-o", "out/b",
                           "-q"], ok(Out("out/b/c1.mp4"), Out("out/b/c2.mp4"))),
    row("batch-same-output-name", ["inpaint", "in/v.mp4", "in/dup/v.mp4", *BOX, "-o", "out/b", "-q"], err(2)),
    row("batch-glob-matches-nothing", ["inpaint", "in/batch/*.avi", "in/v.mp4", *BOX, "-o", "out/b", "-q"], err(2)),
    row("batch-output-folder-holds-the-inputs", ["inpaint", "in/batch/c1.mp4", "in/batch/c2.mp4", *BOX, "-o",
                                                 "in/batch", "-q"], err(5)),
    row("batch-output-folder-holds-the-inputs-overwrite", ["inpaint", "in/batch/c1.mp4", "in/batch/c2.mp4", *BOX,
                                                           "-o", "in/batch", "-q", "--overwrite"], err(5)),
    row("batch-output-folder-is-the-working-folder", ["inpaint", "in/batch/c1.mp4", "in/batch/c2.mp4", *BOX, "-o", ".",
                                                      "-q"], ok(Out("c1.mp4"), Out("c2.mp4"))),
    row("batch-output-is-a-file", ["inpaint", "in/batch/c1.mp4", "in/batch/c2.mp4", *BOX, "-o", "in/notes.txt",
                                   "-q"], err(2)),
]

# ------------------------------------------------------------------------------ rows: environment
TORCHRUN = ["inpaint", "in/batch/c1.mp4", "in/batch/c2.mp4", *BOX, "-o", "out/b", "-q"]
ENV_ROWS = [
    *[row(f"batch-RANK={r}-WORLD_SIZE={n}", TORCHRUN, err(2), env={"RANK": r, "WORLD_SIZE": n}) for r, n in (
        ("abc", "2"), ("5", "2"), ("-1", "2"), ("0", "0"), ("0", "abc"), ("", ""))],
    row("batch-RANK=1-WORLD_SIZE=2", TORCHRUN, ok(Out("out/b/c2.mp4")), env={"RANK": "1", "WORLD_SIZE": "2"}),
    row("single-input-ignores-bad-RANK", inp(), ok(O_INP), env={"RANK": "abc", "WORLD_SIZE": "2"}),
    row("train-WORLD_SIZE=abc", train(), err(2), env={"RANK": "0", "WORLD_SIZE": "abc"}),
    row("train-RANK-outside-world", train(), err(2), env={"RANK": "3", "WORLD_SIZE": "2"}),
    row("weights-list-TSAM_HOME-is-a-file", ["weights", "list"], err(6), env={"TSAM_HOME": "in/notes.txt"}),
    row("download-TSAM_HOME-is-a-file", ["weights", "download", "vgg16-imagenet", "-q"], err(6),
        env={"TSAM_HOME": "in/notes.txt"}),
    row("inpaint-TSAM_HOME-is-a-file", inp(), ok(O_INP), env={"TSAM_HOME": "in/notes.txt"}),
    row("eval-vfid-TSAM_HOME-is-a-file", evl("--metrics", "vfid"), ok(O_TABLE), env={"TSAM_HOME": "in/notes.txt"}),
    row("inpaint-ascii-stdio-unicode-name", inp(src="in/gone-é.mp4"), err(3), env={"PYTHONIOENCODING": "ascii"},
        child=True),
    row("inpaint-C-locale-unicode-name", inp(src="in/" + ODD_NAME), ok(O_INP), env={"LC_ALL": "C", "LANG": "C"},
        child=True),
    *[row(f"inpaint-COLUMNS={c}", inp()[:-1], ok(O_INP), env={"COLUMNS": c}, child=True) for c in ("abc", "0", "-5")],
    row("inpaint-device-cuda-without-gpu", inp("--device", "cuda"), err(2), nogpu=True),
    row("eval-device-cuda-without-gpu", evl("--device", "cuda"), err(2), nogpu=True),
    row("train-device-cuda-without-gpu", train("--device", "cuda"), err(2), nogpu=True),
    row("train-amp-dtype-unknown", train("--amp-dtype", "fp8"), err(2)),
    row("train-gan-unknown", train("--gan", "wgan"), err(2)),
    row("unknown-command", ["frobnicate"], err(2)),
    row("inpaint-no-arguments", ["inpaint"], err(2)),
    row("inpaint-TMPDIR-missing", inp(), ok(O_INP), env={"TMPDIR": "nope"}, child=True),
    row("eval-TMPDIR-missing", evl("--json", "out/r.json"), ok(O_JSON), env={"TMPDIR": "nope"}, child=True),
    row("eval-TMPDIR-is-a-file", evl("--json", "out/r.json"), ok(O_JSON), env={"TMPDIR": "in/notes.txt"},
        child=True),
    row("generate-TMPDIR-missing", gen(), ok(O_GEN), env={"TMPDIR": "nope"}, child=True),
]

# ------------------------------------------------------------------------------ rows: overwrite rules
OVERWRITE_ROWS = [
    row("inpaint-existing-file-kept", inp(), err(5), prep=existing("out/o.mp4")),
    row("inpaint-existing-file-overwrite", inp("--overwrite"), ok(O_INP), prep=existing("out/o.mp4")),
    row("inpaint-existing-non-video-file-overwrite", inp("--overwrite", out="out/notes.txt"), err(5),
        prep=existing("out/notes.txt")),
    row("inpaint-user-frames-folder-overwrite", inp("--overwrite", out="out/f"), err(5), prep=user_frames("out/f")),
    row("inpaint-user-frames-folder-kept", inp(out="out/f"), err(5), prep=user_frames("out/f")),
    row("inpaint-tsam-folder-kept", inp(out="out/f"), err(5), prep=tsam_folder("out/f")),
    row("inpaint-tsam-folder-overwrite", inp("--overwrite", out="out/f"), ok(Out("out/f")), prep=tsam_folder("out/f")),
    row("inpaint-folder-with-other-files-overwrite", inp("--overwrite", out="out/f"), err(5),
        prep=both(tsam_folder("out/f"), existing("out/f/notes.txt"))),
    row("inpaint-folder-with-subfolder-overwrite", inp("--overwrite", out="out/f"), err(5),
        prep=both(tsam_folder("out/f"), existing("out/f/sub/00000.png"))),
    row("inpaint-marker-is-a-folder-holding-a-file", inp("--overwrite", out="out/f"), err(5),
        prep=both(user_frames("out/f"), existing("out/f/.tsam-output/x"))),
    row("preview-user-frames-folder-overwrite", prev("--overwrite", out="out/f"), err(5), prep=user_frames("out/f")),
    row("preview-existing-file-kept", prev(), err(5), prep=existing("out/p.mp4")),
    row("track-user-frames-folder-overwrite", track("--overwrite", out="out/f"), err(5), prep=user_frames("out/f")),
    row("track-existing-file-overwrite", track("--overwrite"), ok(O_TRACK, O_CONF), prep=existing("out/t.mkv")),
    row("static-existing-file-kept", static(), err(5), prep=existing("out/s.mkv")),
    row("static-user-frames-folder-overwrite", static("--overwrite", out="out/f"), err(5), prep=user_frames("out/f")),
    row("generate-user-frames-folder-overwrite", gen("--overwrite", out="out/f"), err(5), prep=user_frames("out/f")),
    row("generate-tsam-folder-overwrite", gen("--overwrite"), ok(O_GEN), prep=tsam_folder("out/g", 5)),
    row("generate-existing-kept", gen(), err(5), prep=tsam_folder("out/g", 5)),
    row("eval-json-existing-kept", evl("--json", "out/r.json"), err(5), prep=existing("out/r.json")),
    row("eval-json-existing-overwrite", evl("--json", "out/r.json", "--overwrite"), ok(O_JSON),
        prep=existing("out/r.json")),
    row("eval-keep-results-user-frames", evl("--keep-results", "out/k", "--overwrite"), err(5),
        prep=user_frames("out/k/a")),
    row("eval-json-and-csv-same-file", evl("--json", "out/r.json", "--csv", "out/r.json"), err(2)),
    row("train-run-dir-user-folder-kept", train(run="out/mine"), ok(Out("out/mine", "run")),
        prep=existing("out/mine/notes.txt")),
    row("convert-existing-kept", conv(), err(5), prep=existing("out/c.safetensors")),
]

# ------------------------------------------------------------------------------ rows: standard streams, signals
STREAM_ROWS = [
    row("weights-list-stdout-reader-gone", ["weights", "list"], ok(), stdio="stdout-broken"),
    row("weights-list-stdout-closed", ["weights", "list"], ok(), stdio="stdout-closed"),
    row("weights-list-stdout-unwritable", ["weights", "list"], err(5), stdio="stdout-ebadf"),
    row("version-stdout-reader-gone", ["--version"], ok(), stdio="stdout-broken"),
    row("eval-stdout-reader-gone", evl("--json", "out/r.json"), ok(O_JSON), stdio="stdout-broken"),
    row("eval-stdout-unwritable", evl(), err(5), stdio="stdout-ebadf"),
    row("generate-stdout-reader-gone", gen(), ok(O_GEN), stdio="stdout-broken"),
    row("inpaint-stderr-reader-gone", inp()[:-1], ok(O_INP), stdio="stderr-broken"),
    row("inpaint-stderr-closed", inp()[:-1], ok(O_INP), stdio="stderr-closed"),
    row("inpaint-all-streams-closed", inp()[:-1], ok(O_INP), stdio="all-closed"),
    row("preview-stderr-reader-gone", prev()[:-1], ok(O_PREV), stdio="stderr-broken"),
    row("track-stderr-closed", track()[:-1], ok(O_TRACK, O_CONF), stdio="stderr-closed"),
    row("inpaint-error-with-stderr-reader-gone", inp(src="in/junk.mp4"), err(3), stdio="stderr-broken"),
    row("inpaint-SIGTERM-at-startup", inp(), err(143), sig=("startup", signal.SIGTERM)),
    row("inpaint-SIGINT-output-open", inp(), err(130), sig=("target-open", signal.SIGINT)),
    row("inpaint-SIGTERM-writing-over-existing", inp("--overwrite"), err(143), sig=("writing", signal.SIGTERM),
        prep=existing("out/o.mp4")),
    row("preview-SIGHUP-output-open", prev(), err(129), sig=("target-open", signal.SIGHUP)),
    row("track-SIGTERM-output-open", track(), err(143), sig=("target-open", signal.SIGTERM)),
    row("generate-SIGINT-output-open", gen(), err(130), sig=("target-open", signal.SIGINT)),
    row("eval-SIGTERM-json-open", evl("--json", "out/r.json"), err(143), sig=("target-open", signal.SIGTERM)),
]
if not HAS_OCR:  # without the extra, the command says how to get it
    ENV_ROWS.append(row("text-without-the-extra", text(), err(2)))

# ------------------------------------------------------------------------------ rows: full disks, devices, runs
RESUME = ["train", "--resume", "out/run", "--steps", "3", "-q"]
DEVICE_ROWS = [
    row("inpaint-output-full-disk", inp(out="full/o.mp4"), err(5), prep=full("full"), xfail=(
        "the deleted temporary .o.mp4.tsam-*.tmp.mp4 stays open: its disk space is not freed until the process ends")),
    row("inpaint-output-folder-full-disk", inp(out="full/f"), err(5), prep=full("full")),
    row("inpaint-output-mkv-full-disk", inp(out="full/o.mkv"), err(5), prep=full("full")),
    row("preview-output-full-disk", prev(out="full/p.mp4"), err(5), prep=full("full"), xfail=(
        "the deleted temporary .p.mp4.tsam-*.tmp.mp4 stays open: its disk space is not freed until the process ends")),
    row("track-output-full-disk", track(out="full/t.mkv"), err(5), prep=full("full")),
    row("static-output-full-disk", static(out="full/s.mkv"), err(5), prep=full("full")),
    row("generate-output-full-disk", gen(out="full/g"), err(5), prep=full("full")),
    row("eval-json-full-disk", evl("--results", "in/res", "--json", "full/r.json"), err(5), prep=full("full")),
    row("eval-keep-results-full-disk", evl("--keep-results", "full/k"), err(5), prep=full("full")),
    row("train-run-dir-full-disk", train(run="full/run"), err(5), prep=full("full")),
    row("inpaint-mask-dev-zero", inp(mask=("--mask", "/dev/zero")), err(4)),
    row("inpaint-mask-link-to-dev-zero", inp(mask=("--mask", "in/m.png")), err(4), prep=device_instead("in/m.png")),
    row("inpaint-model-link-to-dev-zero", inp("--model", "in/fake.pth"), err(6), prep=device_instead("in/fake.pth")),
    row("track-seed-link-to-dev-zero", track(what=("--seed", "in/m.png")), err(4), prep=device_instead("in/m.png")),
    row("convert-source-link-to-dev-zero", conv("in/fake.pth"), err(6), prep=device_instead("in/fake.pth")),
    row("train-init-link-to-dev-zero", train("--init", "in/fake.pth"), err(6), prep=device_instead("in/fake.pth")),
    row("inpaint-frame-link-to-dev-zero-is-skipped", inp(src="in/frames"), ok(Out("out/o.mp4", frames=T - 1)),
        prep=device_instead("in/frames/00003.png")),
    row("inpaint-frame-fifo-is-skipped", inp(src="in/frames"), ok(Out("out/o.mp4", frames=T - 1)),
        prep=fifo_instead("in/frames/00003.png"), child=True),
    row("inpaint-mask-frame-fifo", inp(mask=("--mask", "in/mdir")), err(4), prep=fifo_instead("in/mdir/00003.png"),
        child=True),
    row("batch-mask-dir-fifo-mask", ["inpaint", "in/batch/c1.mp4", "in/batch/c2.mp4", "--mask-dir", "in/bmasks",
                                     "-o", "out/b", "-q"], Expect(8, (Out("out/b/c1.mp4"),)),
        prep=fifo_instead("in/bmasks/c2.png"), child=True),
    row("eval-dataset-fifo-clip", evl(), err(7), prep=fifo("in/ds/c.mp4"), child=True),
    row("eval-dataset-empty-clip-folder", evl(), err(7), prep=lambda case: (case / "in/ds/c").mkdir()),
    row("train-resume-corrupt-checkpoint", RESUME, err(6), prep=fake_run("out/run")),
    row("train-resume-empty-checkpoint", RESUME, err(6), prep=fake_run("out/run", b"")),
    row("train-resume-no-checkpoint", RESUME, err(2), prep=fake_run("out/run", None)),
    row("train-resume-config-nan-lr", RESUME, err(2), prep=fake_run("out/run", lr=float("nan"))),
    row("train-resume-config-wrong-type", RESUME, err(2), prep=fake_run("out/run", frames="three")),
    row("train-resume-config-not-json", RESUME, err(2), prep=both(fake_run("out/run"), existing("out/run/config.json",
                                                                                                b"{not json"))),
    row("train-resume-changes-an-option", [*RESUME, "--lr", "1"], err(2), prep=fake_run("out/run")),
    row("train-resume-steps-and-epochs", [*RESUME, "--epochs", "2"], err(2), prep=fake_run("out/run")),
]

ALL_ROWS = {"numbers": NUMBER_ROWS, "paths": PATH_ROWS, "media": MEDIA_ROWS, "environment": ENV_ROWS,
            "overwrite": OVERWRITE_ROWS, "streams-and-signals": STREAM_ROWS, "devices-disks-runs": DEVICE_ROWS}


# ------------------------------------------------------------------------------ running a case
@dataclass
class Result:
    code: int
    stdout: str
    stderr: str
    open_files: list[str] = field(default_factory=list)  # in-process: files under the case still open


def _open_files(case: Path) -> set[str]:
    """Paths under ``case`` this process holds open (deleted temporaries show as '... (deleted)')."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(case)):
            found.add(target)
    return found


def _run_in_process(argv: list[str], capsys) -> Result:
    """``tsam ARGV`` through :func:`tsam_cli.cli.main.main`; anything escaping it is what a user
    would see as a traceback (exit 1)."""
    from tsam_cli.cli.main import main

    tb, case, held = "", Path.cwd(), _open_files(Path.cwd())
    try:
        code = main(argv)
    except BaseException:  # every escape is a finding, reported as the traceback
        code, tb = 1, traceback.format_exc()
    out, errtext = capsys.readouterr()
    return Result(code, out, errtext + tb, sorted(_open_files(case) - held))


def _dead_pipe() -> int:
    """The write end of a pipe whose reader is already gone (writes fail with EPIPE)."""
    read, write = os.pipe()
    os.close(read)
    return write


def _preexec(stdio: str | None):
    def pre():
        if stdio == "stdout-closed":
            os.close(1)
        elif stdio == "stderr-closed":
            os.close(2)
        elif stdio == "all-closed":
            for fd in (0, 1, 2):
                os.close(fd)
        elif stdio == "stdout-ebadf":  # a descriptor open for reading only: every write fails
            os.dup2(os.open(os.devnull, os.O_RDONLY), 1)
    return pre


def _run_child(argv: list[str], case: Path, env: dict, stdio: str | None) -> Result:
    """``tsam ARGV`` as a process (the console entry point); a hang is a failure, not a wait."""
    cmd = [sys.executable, "-m", "tsam_cli.entry", *argv]
    dead = _dead_pipe() if stdio in ("stdout-broken", "stderr-broken") else None
    streams = {"stdout": dead if stdio == "stdout-broken" else subprocess.PIPE,
               "stderr": dead if stdio == "stderr-broken" else subprocess.PIPE}
    try:
        done = subprocess.run(cmd, cwd=case, env=env, text=True, preexec_fn=_preexec(stdio), timeout=180,
                              stdin=subprocess.DEVNULL, **streams)
    except subprocess.TimeoutExpired:
        pytest.fail(f"tsam {argv} did not finish in 180 s (blocked on a FIFO or a stream?)")
    finally:
        if dead is not None:
            os.close(dead)
    return Result(done.returncode, done.stdout or "", done.stderr or "")


def _run(r: Row, argv: list[str], case: Path, monkeypatch, capsys) -> Result:
    env = {"TSAM_HOME": str(case / "home"), "TMPDIR": str(case / "tmp"), "COLUMNS": "200", **r.env}
    # no download may leave this machine: any URL goes to a closed local port, at once
    env.update(https_proxy="http://127.0.0.1:9", http_proxy="http://127.0.0.1:9", no_proxy="",
               HTTPS_PROXY="http://127.0.0.1:9", HTTP_PROXY="http://127.0.0.1:9", NO_PROXY="")
    if r.sig is not None:
        code, errtext = interrupt_at(r.sig[0], r.sig[1], argv, case, cwd=case, env=env)
        return Result(code, "", errtext)
    if r.child:
        return _run_child(argv, case, {**os.environ, **env}, r.stdio)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        if k not in r.env:
            monkeypatch.delenv(k, raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(case / "tmp"))
    from tsam_cli import weights

    monkeypatch.setattr(weights, "_BACKOFF_BASE_S", 0.0)
    return _run_in_process(argv, capsys)


# ------------------------------------------------------------------------------ the four checks
SCRATCH = {"tmp", "hooks"}  # the case's TMPDIR and pause-point files: not the user's


def _state(case: Path) -> dict:
    """Every entry under ``case`` (scratch folders aside): file bytes (:func:`snapshot`), and
    folders, links and special files by kind, so a created empty folder counts as a change."""
    files = {p.relative_to(case).as_posix(): data for p, data in snapshot(case).items()}
    state = {}
    for folder, dirs, names in os.walk(case):
        rel = Path(folder).relative_to(case)
        if rel.parts and rel.parts[0] in SCRATCH:
            dirs[:] = []
            continue
        for name in dirs + names:
            if not rel.parts and name in SCRATCH:
                continue
            p, key = Path(folder) / name, (rel / name).as_posix()
            if p.is_symlink():
                state[key] = ("link", os.readlink(p))
            elif p.is_dir():
                if key.startswith("home/"):  # the weights cache's folders may be made by any command
                    continue
                state[key] = "folder"
            else:
                state[key] = files.get(key, "special")
    return state


def _all_leftovers(case: Path) -> list[str]:
    """tsam's temporaries, locks and set-aside folders anywhere under ``case``."""
    found = []
    for folder, dirs, _ in os.walk(case):
        found += [f"{Path(folder).relative_to(case) / n}" for n in leftovers(Path(folder))]
        dirs[:] = [d for d in dirs if not os.path.ismount(Path(folder) / d)]
    return found


def _decoded(path: Path) -> tuple[int, tuple[int, int] | None]:
    """(frames tsam decodes from ``path``, their (w, h)); a decoding error ends the count."""
    from tsam_cli.errors import TsamError
    from tsam_cli.media import iter_frames, probe

    n, size = 0, None
    try:
        for f in iter_frames(probe(path, fps=25) if path.is_dir() else probe(path)):
            n, size = n + 1, (f.rgb.shape[1], f.rgb.shape[0])
    except TsamError:
        pass
    return n, size


def _check_output(o: Out, case: Path, res: Result, before: dict, after: dict) -> None:
    """Check 4 for one output: it exists and reads back as promised."""
    path = case / o.path
    if o.kind == "stdout":
        assert res.stdout.strip(), "exit 0 but nothing on stdout"
        return
    assert path.exists(), f"exit {res.code} but {o.path} was not written"
    if o.kind == "media":
        n, size = _decoded(path)
        want = _decoded(case / o.like)[0] if o.like else o.frames
        assert n == want and n > 0, f"{o.path}: {n} frames decoded, expected {want}"
        assert o.size is None or size == o.size, f"{o.path}: size {size}, expected {o.size}"
    elif o.kind == "json":
        assert isinstance(json.loads(path.read_text()), dict)
    elif o.kind == "csv":
        assert path.read_text().startswith("name,")
    elif o.kind == "run":
        assert (path / "generator.safetensors").stat().st_size > 0 and (path / "config.json").is_file()
        mine = {k: v for k, v in before.items() if k.startswith(o.path + "/")}
        assert {k: after.get(k) for k in mine} == mine, "a file of the user's in the run folder changed"


def _changed(before: dict, after: dict, allowed: list[str]) -> list[str]:
    """Entries created, removed or changed, outside the ``allowed`` output paths."""
    def free(key: str) -> bool:  # not an output, not inside one, not a folder made to hold one
        return not any(a and (key == a or key.startswith(a + "/") or a.startswith(key + "/")) for a in allowed)
    keys = {k for k in before.keys() | after.keys() if free(k)}
    return sorted(k for k in keys if before.get(k, "<absent>") != after.get(k, "<absent>"))


def _check(r: Row, case: Path, before: dict, res: Result) -> None:
    """The four checks of every row (module docstring)."""
    e = r.expect
    tail = res.stderr.strip().splitlines()[-1:] if res.stderr.strip() else []
    # 1. no traceback, at most one error line and it is the last
    assert "Traceback" not in res.stderr, "traceback: " + " | ".join(res.stderr.strip().splitlines()[-2:])
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error")]
    assert not errors or one_error_line(res.stderr), f"error lines {errors}, last line {tail}"
    # 2. the documented exit code
    assert res.code == e.code, f"exit {res.code}, expected {e.code}; last stderr line: {tail}"
    # 3. nothing lost, nothing left behind (nor held open: a deleted temporary still takes disk space)
    assert _all_leftovers(case) == [], _all_leftovers(case)
    assert res.open_files == [], f"files left open: {res.open_files}"
    if (case / "tmp").is_dir():  # tsam's own temporaries (other libraries' caches, e.g. torch's, aside)
        left = sorted(p.name for p in (case / "tmp").iterdir() if "tsam" in p.name)
        assert left == [], f"left in TMPDIR: {left}"
    # 4. outputs as promised; nothing else created or changed
    after = _state(case)
    for o in e.outs:
        _check_output(o, case, res, before, after)
    changed = _changed(before, after, [o.path for o in e.outs if o.kind != "stdout"])
    assert changed == [], f"exit {res.code}; created/changed/removed: {changed}"


@pytest.mark.parametrize("r", [p for rows in ALL_ROWS.values() for p in rows])
def test_hostile(r: Row, library: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    case = tmp_path / "case"
    case.mkdir()
    shutil.copytree(library, case / "in", symlinks=True)
    for d in ("out", "tmp", "home"):
        (case / d).mkdir()
    undo = r.prep(case) if r.prep else None
    try:
        monkeypatch.chdir(case)
        before = _state(case)
        argv = [str(a) for a in (r.argv(case) if callable(r.argv) else r.argv)]
        res = _run(r, argv, case, monkeypatch, capsys)
        _check(r, case, before, res)
    finally:
        if undo:
            undo()


def test_the_suite_is_large_enough() -> None:
    """The brief: at least 160 cases over every command."""
    ids = [p.id for rows in ALL_ROWS.values() for p in rows]
    assert len(ids) >= 160 and len(set(ids)) == len(ids)
    for cmd in ("inpaint", "preview", "track", "static", "text", "eval", "train", "generate", "convert", "download",
                "weights-list"):
        assert any(cmd in i for i in ids), cmd
