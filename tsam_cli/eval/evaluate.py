"""Benchmark evaluation: PSNR / SSIM / VFID / E_warp / LPIPS on DAVIS, YouTube-VOS (FVI) or a folder.

Two modes:

* **(b) score existing results**: ``results`` is a folder holding, for every clip, either a
  sub-folder of frames ``<results>/<clip>/*.png|jpg`` or a video ``<results>/<clip>.mp4``
  (any container PyAV reads); each is compared with the clip's ground-truth frames.
* **(a) run tsam**: ``results=None``.  Each clip's ground-truth frames (resized to the
  evaluation size) and its masks are written as PNG folders to a temporary directory,
  ``tsam_cli.core.pipeline.inpaint`` fills the holes, and the output is scored as in (b).

Protocol defaults follow the TSAM paper (§4.2-4.3) and the official/E2FGVI evaluation
code: frames resized to 432x240 (W x H), masks generated per clip with a fixed seed, PSNR
and SSIM per frame averaged over all frames of the dataset, VFID over the set of videos.
Everything is computed at the evaluation size; a result whose frames have another size is
resized (bilinear) to it, which costs a little PSNR: produce results at the evaluation
size.  Results are scored as given (no re-compositing of known pixels).

Dataset layouts are :mod:`tsam_cli.data.layouts`'s (shared with ``tsam train``).  Each metric is
an object with ``update(result, gt, mask)`` (one clip; returns that clip's values) and
``summary()`` (the dataset values), like :class:`tsam_cli.metrics.vfid.VFIDScorer`.

Mask polarity: 1 = hole in arrays; PNG masks written or read here use 255 (non-zero) = hole.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import sys
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tsam_cli.data import layouts as datasets
from tsam_cli.data.layouts import DATASETS, VIDEO_SUFFIXES, Clip, is_frame_dir
from tsam_cli.errors import DatasetError, OutputError, TsamError, UsageError
from tsam_cli.media import list_images
from tsam_cli.media.images import read_image, write_png_frames
from tsam_cli.ui import plural

__all__ = [
    "ALL_METRICS", "CONVENTIONS", "DATASETS", "DEFAULT_METRICS", "DEFAULT_SIZE", "Clip", "EWarpMetric",
    "LPIPSMetric", "EvalMasks", "PSNRMetric", "SSIMMetric", "VFIDMetric", "Metric", "build_metrics", "clip_masks",
    "discover", "evaluate", "find_result", "read_frames", "read_masks", "versions", "write_csv",
    "write_json",
]

DEFAULT_SIZE = (432, 240)  # (W, H): TSAM / E2FGVI evaluation resolution
DEFAULT_METRICS = ("psnr", "ssim", "vfid")
ALL_METRICS = ("psnr", "ssim", "vfid", "ewarp", "lpips")
#: Order of the per-video columns and of the ``mean`` entries in the report.
REPORT_ORDER = ("psnr", "ssim", "ewarp", "lpips", "vfid")


@dataclass
class EvalMasks:
    """Where masks come from: ``generate`` with a kind/area/seed, or a folder per clip."""

    source: str = "generate"  # "generate" or a directory path
    kind: str = "object"
    area: str | tuple[float, float] | None = "mixed"  # "mixed", None (free) or (lo, hi)
    seed: int = 0

    def describe(self) -> dict:
        if self.source != "generate":
            return {"source": str(self.source), "polarity": "non-zero = hole"}
        from tsam_cli.data.mask_gen import AREA_BUCKETS

        area = self.area
        if area == "mixed":
            area_s = "mixed: one bucket per clip from " + ", ".join(f"{a:.0%}-{b:.0%}" for a, b in AREA_BUCKETS)
        elif area is None:
            area_s = "unconstrained"
        else:
            area_s = f"{area[0]:.0%}-{area[1]:.0%}"
        return {
            "source": "generate",
            "kind": self.kind,
            "area": area_s,
            "seed": self.seed,
            "clip_seed": "tsam_cli.data.mask_gen.clip_seed(clip_name, seed, kind)",
            "moving": "paper evaluation setting (object/curve move, stationary static)",
        }


# --------------------------------------------------------------------------- discovery


def discover(dataset: str, root: str | Path, max_videos: int | None = None) -> list[Clip]:
    """The clips of a dataset (layouts: :func:`tsam_cli.data.layouts.discover`), natural order by name.

    Clips are matched to results, mask folders and mask seeds by name, so two clips with one
    name (``a/`` and ``a.mp4`` in a folder dataset) are a ``DatasetError``.  ``max_videos``
    keeps the first N.
    """
    clips = datasets.discover(dataset, root, strict=True)
    seen: set[str] = set()
    for clip in clips:
        if clip.name in seen:
            raise DatasetError(f"two clips are named {clip.name!r} in {clip.source.parent}: rename one of them")
        seen.add(clip.name)
    if max_videos is not None:
        if max_videos < 1:
            raise UsageError(f"--max-videos must be >= 1, got {max_videos}")
        clips = clips[:max_videos]
    return clips


# --------------------------------------------------------------------------- reading


def _resize(frame: np.ndarray, size: tuple[int, int] | None, nearest: bool = False) -> np.ndarray:
    import cv2

    if size is None or (frame.shape[1], frame.shape[0]) == tuple(size):
        return frame
    shrink = frame.shape[1] > size[0]
    interp = cv2.INTER_NEAREST if nearest else (cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return cv2.resize(frame, tuple(size), interpolation=interp)


def read_frames(source: str | Path, size: tuple[int, int] | None = None, max_frames: int | None = None) -> np.ndarray:
    """Read a frame folder or a video file through tsam's media layer as uint8 RGB
    ``(T, H, W, 3)``, resized to ``size`` = (W, H) when given (INTER_AREA when shrinking,
    else bilinear). Frames come in the order ``tsam inpaint`` reads them (natural order)."""
    from tsam_cli.media import complete_frames, probe

    source = Path(source)
    if not source.exists():
        raise DatasetError(f"{source} does not exist")
    frames: list[np.ndarray] = []
    try:
        info = probe(source, fps=1.0 if source.is_dir() else None)
        for fr in complete_frames(info, error=DatasetError):
            frames.append(_resize(fr.rgb, size))
            if max_frames and len(frames) >= max_frames:
                break
    except TsamError as exc:
        raise DatasetError(f"cannot read {source}: {exc}") from None
    if not frames:
        raise DatasetError(f"{source} holds no frames")
    return np.stack(frames)


def read_masks(folder: str | Path, n_frames: int, size: tuple[int, int]) -> np.ndarray:
    """Read a folder of mask images (non-zero = hole) as uint8 {0,1} (T, H, W) at ``size``
    (nearest).  Fewer masks than frames: the last one is repeated (as the official
    ``dataset.py`` does); more: truncated.  One image: used for every frame."""
    from tsam_cli.media.masks import check_numbered

    folder = Path(folder)
    files = list_images(folder) if folder.is_dir() else []
    if not files:
        raise DatasetError(f"no mask images in {folder}: expected {folder}/*.png (non-zero = hole)")
    check_numbered(folder, files, DatasetError)
    out = []
    for f in files[:n_frames]:
        m = read_image(f, keep_depth=True, error=DatasetError).max(axis=2)
        out.append((_resize(m, size, nearest=True) > 0).astype(np.uint8))
    while len(out) < n_frames:
        out.append(out[-1])
    return np.stack(out)


def find_result(results: Path, name: str) -> Path | None:
    """``results/<name>/`` (frames) or ``results/<name>.<video suffix>`` (suffix in
    ``tsam_cli.data.layouts.VIDEO_SUFFIXES``, lower or upper case); None if absent."""
    d = results / name
    if is_frame_dir(d):
        return d
    for ext in VIDEO_SUFFIXES:  # .mp4 first
        for cand in (results / f"{name}{ext}", results / f"{name}{ext.upper()}"):
            if cand.is_file():
                return cand
    return None


def clip_masks(clip: Clip, spec: EvalMasks, n_frames: int, size: tuple[int, int]) -> np.ndarray:
    """Masks (T, H, W) uint8 {0,1}, 1 = hole, for one clip (generated or read)."""
    if spec.source != "generate":
        return read_masks(Path(spec.source) / clip.name, n_frames, size)
    from tsam_cli.data.mask_gen import AREA_BUCKETS, clip_seed, generate_masks

    seed = clip_seed(clip.name, spec.seed, spec.kind)
    area = spec.area
    if area == "mixed":
        area = AREA_BUCKETS[seed % len(AREA_BUCKETS)]
    return generate_masks(spec.kind, n_frames, size[1], size[0], seed=seed, area=area)


# --------------------------------------------------------------------------- metrics


def _finite(x):
    """JSON-safe float: NaN/inf -> None."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


class Metric(ABC):
    """One metric over a dataset: ``update`` per clip, ``summary`` at the end.

    ``columns`` are the per-video keys ``update`` returns.  An exception of a type listed in
    ``failures`` raised by ``update`` makes the metric unavailable (``fail``) instead of
    aborting the evaluation; ``reason`` then says why (also set when it cannot start).
    """

    name = ""
    label = ""  # what failed, for messages
    columns: tuple[str, ...] = ()
    failures: tuple[type[Exception], ...] = ()

    def __init__(self) -> None:
        self.reason: str | None = None

    @abstractmethod
    def update(self, result: np.ndarray, gt: np.ndarray, mask: np.ndarray) -> dict:
        """Score one clip: uint8 RGB (T, H, W, 3) result and ground truth, (T, H, W) mask (1 = hole)."""

    @abstractmethod
    def summary(self) -> dict:
        """Dataset values for the report's ``mean``."""

    def fail(self, reason: str) -> None:
        self.reason = reason


class PSNRMetric(Metric):
    """PSNR per frame over the whole frame and over the hole; frame-weighted dataset mean."""

    name, columns = "psnr", ("psnr", "psnr_hole")

    def __init__(self) -> None:
        super().__init__()
        self.full: list[np.ndarray] = []
        self.hole: list[np.ndarray] = []

    def update(self, result, gt, mask) -> dict:
        from tsam_cli.metrics.psnr import capped_mean, psnr_frames

        full, hole = psnr_frames(gt, result), psnr_frames(gt, result, mask)
        self.full.append(full)
        self.hole.append(hole)
        return {"psnr": _finite(capped_mean(full)), "psnr_hole": _finite(capped_mean(hole))}

    def summary(self) -> dict:
        from tsam_cli.metrics.psnr import aggregate

        a, ah = aggregate(self.full), aggregate(self.hole)
        return {"psnr": _finite(a["mean"]), "psnr_video_mean": _finite(a["video_mean"]),
                "psnr_capped_frames": a["capped_frames"], "psnr_hole": _finite(ah["mean"]),
                "psnr_hole_video_mean": _finite(ah["video_mean"])}


class SSIMMetric(Metric):
    """SSIM per frame; mean over all frames and mean of per-video means."""

    name, columns = "ssim", ("ssim",)

    def __init__(self) -> None:
        super().__init__()
        self.values: list[np.ndarray] = []

    def update(self, result, gt, mask) -> dict:
        from tsam_cli.metrics.ssim import ssim_frames

        s = ssim_frames(gt, result)
        self.values.append(s)
        return {"ssim": float(s.mean())}

    def summary(self) -> dict:
        return {"ssim": float(np.concatenate(self.values).mean()),
                "ssim_video_mean": float(np.mean([s.mean() for s in self.values]))}


class EWarpMetric(Metric):
    """Flow warping error of the result video; mean over videos (NaN videos skipped)."""

    name, columns = "ewarp", ("ewarp",)

    def __init__(self) -> None:
        super().__init__()
        self.values: list[float] = []

    def update(self, result, gt, mask) -> dict:
        from tsam_cli.metrics.ewarp import warping_error

        e = warping_error(result)
        self.values.append(e)
        return {"ewarp": _finite(e)}

    def summary(self) -> dict:
        e = np.array(self.values, dtype=np.float64)
        e = e[~np.isnan(e)]
        return {"ewarp": float(e.mean()) if e.size else None}


class LPIPSMetric(Metric):
    """LPIPS (AlexNet, v0.1) per frame; unavailable when the weights are missing or a clip fails."""

    name, label, columns = "lpips", "LPIPS", ("lpips",)
    failures = (ValueError, RuntimeError)

    def __init__(self, alex: str | Path | None, lin: str | Path | None, device: str) -> None:
        super().__init__()
        self.values: list[np.ndarray] = []
        self.model = None
        try:
            from tsam_cli.metrics.lpips import load_lpips

            self.model = load_lpips(alex, lin, device=device)
        except TsamError as exc:
            self.reason = str(exc).splitlines()[0]

    def update(self, result, gt, mask) -> dict:
        from tsam_cli.metrics.lpips import lpips_frames

        lp = lpips_frames(self.model, gt, result)
        self.values.append(lp)
        return {"lpips": _finite(lp.mean())}

    def fail(self, reason: str) -> None:
        super().fail(reason)
        self.model = None
        self.values.clear()

    def summary(self) -> dict:
        if self.reason is not None or not self.values:
            return {"lpips": None, "lpips_video_mean": None}
        return {"lpips": _finite(np.concatenate(self.values).mean()),
                "lpips_video_mean": _finite(np.mean([v.mean() for v in self.values]))}


class VFIDMetric(Metric):
    """VFID over the set of videos (:class:`tsam_cli.metrics.vfid.VFIDScorer`); needs >= 2 videos."""

    name, label = "vfid", "I3D"
    failures = (ValueError, RuntimeError)

    def __init__(self, weights: str | Path | None, device: str, n_videos: int) -> None:
        super().__init__()
        self.scorer = None
        if n_videos < 2:
            self.reason = f"needs at least 2 videos, got {n_videos}"
            return
        try:
            from tsam_cli.metrics.vfid import VFIDScorer

            self.scorer = VFIDScorer(weights, device=device)
        except TsamError as exc:
            self.reason = str(exc).splitlines()[0]

    def update(self, result, gt, mask) -> dict:
        self.scorer.add(gt, result)
        return {}

    def summary(self) -> dict:
        return {"vfid": None if self.reason is not None else _finite(self.scorer.compute())}


def build_metrics(names, n_videos: int, *, i3d=None, lpips_alex=None, lpips_lin=None,
                  device: str = "cpu") -> list[Metric]:
    """The metric objects for ``names``, in report order (VFID is set up before LPIPS)."""
    factories: dict[str, Callable[[], Metric]] = {
        "psnr": PSNRMetric,
        "ssim": SSIMMetric,
        "ewarp": EWarpMetric,
        "vfid": lambda: VFIDMetric(i3d, device, n_videos),
        "lpips": lambda: LPIPSMetric(lpips_alex, lpips_lin, device),
    }
    built = {name: factory() for name, factory in factories.items() if name in names}
    return [built[name] for name in REPORT_ORDER if name in built]


def _parse_metrics(metrics) -> list[str]:
    out: list[str] = []
    for m in metrics or DEFAULT_METRICS:
        for part in str(m).replace(",", " ").split():
            part = part.strip().lower()
            if part not in ALL_METRICS:
                raise UsageError(f"unknown metric {part!r}: use any of {', '.join(ALL_METRICS)}")
            if part not in out:
                out.append(part)
    return out


def versions() -> dict:
    """Versions of tsam and the libraries that affect the numbers (without importing torch)."""
    from importlib import metadata

    import tsam_cli

    out = {"tsam": tsam_cli.__version__, "python": sys.version.split()[0]}
    for pkg, dist in (("torch", "torch"), ("numpy", "numpy"), ("av", "av"), ("opencv", "opencv-python-headless")):
        try:
            out[pkg] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    if out["opencv"] is None:
        try:
            import cv2

            out["opencv"] = cv2.__version__
        except ImportError:
            pass
    return out


# --------------------------------------------------------------------------- where results come from


class ExistingResults:
    """Mode (b): results already on disk, ``<folder>/<clip>/`` or ``<folder>/<clip>.mp4``."""

    def __init__(self, folder: str | Path, clips: list[Clip]) -> None:
        self.folder = Path(folder).expanduser()
        if not self.folder.is_dir():
            raise DatasetError(f"results folder {self.folder} does not exist")
        missing = [c.name for c in clips if find_result(self.folder, c.name) is None]
        if missing:
            raise DatasetError(
                f"no result for {len(missing)} of {len(clips)} clips in {self.folder} (e.g. {missing[0]!r}): "
                f"expected {self.folder}/<clip>/*.png or {self.folder}/<clip>.mp4"
            )

    def result(self, clip: Clip, gt: np.ndarray, masks: np.ndarray) -> Path:
        return find_result(self.folder, clip.name)

    def close(self) -> None:
        pass


class KeptResults:
    """``--keep-results DIR``: tsam's output of each clip copied to ``DIR/<clip>/`` through the
    output layer (checked before any work, never inside an input, an existing ``DIR/<clip>``
    replaced only with ``overwrite`` and only when tsam wrote it, swapped in whole).

    ``inputs`` are ``(label, folder)`` pairs that DIR must not be inside (dataset, masks,
    results); ``protected`` are the paths ``DIR/<clip>`` must never be or contain."""

    FLAG = "--keep-results"

    def __init__(self, folder: str | Path, clips: list[Clip], inputs: list, protected: list, overwrite: bool) -> None:
        from tsam_cli.media.output import check_output_path, refuse_inside

        self.folder = Path(folder).expanduser()
        self.protected, self.overwrite = [*inputs, *protected], overwrite
        self.kept: list[Path] = []
        self._created = False
        refuse_inside(self.folder, inputs, self.FLAG)
        if not self.folder.exists():
            check_output_path(self.folder, self.protected, False, suffixes=(), flag=self.FLAG)
            return
        if self.folder.is_symlink() or not self.folder.is_dir():
            raise OutputError(f"{self.FLAG} {self.folder} is not a folder: give a folder (it may exist)")
        for clip in clips:  # now, not after the long work
            check_output_path(self.folder / clip.name, self.protected, overwrite, suffixes=(), flag=self.FLAG)

    def store(self, name: str, frames: Path) -> None:
        """Copy the frame folder ``frames`` to ``DIR/<name>/`` (atomically)."""
        from tsam_cli.media.output import OutputTarget, describe_os_error

        if not self.folder.is_dir():
            try:
                self.folder.mkdir()
            except OSError as exc:
                raise OutputError(f"cannot create {self.folder}: {describe_os_error(exc, self.FLAG)}") from None
            self._created = True
        with OutputTarget(self.folder / name, self.protected, self.overwrite, suffixes=(), flag=self.FLAG) as target:
            target.write_with(lambda tmp: shutil.copytree(frames, tmp, dirs_exist_ok=True))
        self.kept.append(self.folder / name)

    def close(self) -> None:
        """Remove DIR again when this run made it and put nothing in it."""
        if self._created and not self.kept:
            try:
                self.folder.rmdir()
            except OSError:
                pass  # not empty after all (someone put a file there meanwhile): it stays


class TsamResults:
    """Mode (a): inpaint every clip with tsam's pipeline in a temporary folder (removed by ``close``)."""

    def __init__(self, device: str, keep: KeptResults | None = None) -> None:
        self.inpaint, self.opts_cls = _load_pipeline()
        self.device = device
        self.keep = keep
        self.tmp = Path(tempfile.mkdtemp(prefix="tsam-eval-"))

    def result(self, clip: Clip, gt: np.ndarray, masks: np.ndarray) -> Path:
        out = _run_pipeline(self.inpaint, self.opts_cls, self.tmp / clip.name, gt, masks, self.device)
        if self.keep is not None:
            self.keep.store(clip.name, out)
        return out

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self.keep is not None:
            self.keep.close()


def _load_pipeline():
    from tsam_cli.core.pipeline import InpaintOptions, inpaint

    return inpaint, InpaintOptions


def _run_pipeline(inpaint, opts_cls, work: Path, gt: np.ndarray, masks: np.ndarray, device: str) -> Path:
    """Mode (a): write frames and masks (255 = hole) as PNG folders, inpaint to PNG frames."""
    from tsam_cli.media.output import describe_os_error

    frames_dir, mask_dir, out_dir = work / "frames", work / "masks", work / "out"
    try:
        write_png_frames(frames_dir, gt)
        write_png_frames(mask_dir, masks)
    except OSError as exc:
        cause = describe_os_error(exc, "TMPDIR")
        raise OutputError(f"cannot write the clip's frames to the temporary folder {work.parent}: {cause}") from None
    opts = opts_cls(mask=str(mask_dir), dilate=0, mask_threshold=0, lossless=True, quiet=True, device=device)
    inpaint(str(frames_dir), str(out_dir), opts)
    if not is_frame_dir(out_dir):
        raise TsamError(f"tsam produced no frames in {out_dir}")
    return out_dir


# --------------------------------------------------------------------------- scoring


@dataclass
class _Settings:
    """What every clip is scored with."""

    size: tuple[int, int] | None
    masks: EvalMasks
    max_frames: int | None
    allow_partial: bool = False


def _update_metrics(metrics: list[Metric], name: str, result, gt, mask, videos: list[dict],
                    unavailable: dict[str, str]) -> dict:
    """Feed one clip to every available metric; a metric that fails is dropped from all rows."""
    row: dict = {}
    for metric in metrics:
        if metric.reason is not None:
            continue
        try:
            row.update(metric.update(result, gt, mask))
        except metric.failures as exc:
            metric.fail(f"{metric.label} failed on {name}: {exc}".splitlines()[0])
            unavailable[metric.name] = metric.reason
            for v in videos:
                for col in metric.columns:
                    v.pop(col, None)
    return row


def _score_clip(clip: Clip, source, settings: _Settings, metrics: list[Metric], videos: list[dict],
                unavailable: dict[str, str]) -> dict:
    """Read one clip's ground truth, masks and result, score them; returns the clip's row."""
    gt = read_frames(clip.source, settings.size, settings.max_frames)
    eval_size = (gt.shape[2], gt.shape[1])
    masks = clip_masks(clip, settings.masks, len(gt), eval_size)
    res = read_frames(source.result(clip, gt, masks), eval_size, settings.max_frames)
    row = {"name": clip.name, "frames": int(len(gt)), "hole_ratio": float(masks.mean())}
    n = min(len(res), len(gt))
    if len(res) != len(gt):
        if not settings.allow_partial:
            raise DatasetError(
                f"the result of clip {clip.name!r} has {plural(len(res), 'frame')}, its ground truth "
                f"{plural(len(gt), 'frame')}: give complete results, or --allow-partial to score the first {n} "
                "(shown in the table)")
        row["scored"] = n
        row["note"] = f"result has {plural(len(res), 'frame')}, ground truth {len(gt)}: scored the first {n}"
    row.update(_update_metrics(metrics, clip.name, res[:n], gt[:n], masks[:n], videos, unavailable))
    return row


def _progress_line(i: int, n: int, row: dict) -> str:
    values = ", ".join(f"{k} {v:.4f}" for k, v in row.items()
                       if k in ("psnr", "ssim", "ewarp", "lpips") and v is not None)
    return f"[{i + 1}/{n}] {row['name']}: {values}"


def _score_clips(clips: list[Clip], source, settings: _Settings, metrics: list[Metric],
                progress: Callable[[str], None] | None = None) -> tuple[list[dict], dict[str, str]]:
    """Score every clip; returns the per-video rows and ``unavailable`` (metric -> reason)."""
    unavailable = {m.name: m.reason for m in sorted(metrics, key=lambda m: ALL_METRICS.index(m.name))
                   if m.reason is not None}
    videos: list[dict] = []
    for i, clip in enumerate(clips):
        row = _score_clip(clip, source, settings, metrics, videos, unavailable)
        videos.append(row)
        if progress is not None:
            progress(_progress_line(i, len(clips), row))
    return videos, unavailable


def _check_settings(masks: EvalMasks, size: tuple[int, int] | None) -> None:
    if masks.source != "generate" and not Path(masks.source).is_dir():
        raise DatasetError(f"mask folder {masks.source} does not exist: pass --masks DIR with DIR/<clip>/*.png")
    if size is not None and (size[0] < 16 or size[1] < 16):
        raise UsageError(f"evaluation size {size[0]}x{size[1]} is too small (min 16x16)")


def evaluate(
    dataset: str, root: str | Path, *, results: str | Path | None = None, metrics=DEFAULT_METRICS,
    size: tuple[int, int] = DEFAULT_SIZE, masks: EvalMasks | None = None, i3d: str | Path | None = None,
    lpips_alex: str | Path | None = None, lpips_lin: str | Path | None = None, max_videos: int | None = None,
    max_frames: int | None = None, device: str = "auto", keep_results: str | Path | None = None,
    command: str | None = None, progress: Callable[[str], None] | None = None, overwrite: bool = False,
    allow_partial: bool = False,
) -> dict:
    """Evaluate a dataset; returns the report dict (also what ``--json`` writes).

    ``dataset`` is "davis", "youtube-vos" or "folder" (:func:`discover`); ``results`` a folder
    of another method's results (mode b), None to run tsam's pipeline (mode a); ``metrics`` any
    of "psnr" (with hole PSNR), "ssim", "vfid", "ewarp", "lpips"; ``size`` (W, H), None for the
    native size; ``i3d`` / ``lpips_alex`` / ``lpips_lin`` weight files (default: the weight
    cache); ``max_videos`` / ``max_frames`` keep the first N; ``device`` as everywhere ("auto"
    = CUDA when available); ``keep_results``: mode (a) copies tsam's outputs to
    ``keep_results/<clip>/`` (:class:`KeptResults`: checked before any work, an existing folder
    replaced only with ``overwrite``); ``allow_partial`` scores results with another frame
    count on the frames both have instead of a DatasetError; ``command`` is recorded in the
    report, ``progress`` gets one line per clip.

    The dict holds ``videos`` (per clip), ``mean``, ``unavailable`` (metric -> reason),
    ``conventions``, ``versions``, ``command`` and the settings; non-finite values are None.
    VFID and LPIPS failures (missing weights, fewer than 2 videos for VFID, frames too small for
    LPIPS) do not abort the other metrics: they are listed in ``unavailable`` with the reason.
    """
    from tsam_cli.device import resolve_device

    names = _parse_metrics(metrics)
    masks = masks or EvalMasks()
    _check_settings(masks, size)
    clips = discover(dataset, root, max_videos)
    existing = ExistingResults(results, clips) if results is not None else None
    keep = _kept_results(keep_results, existing, clips, input_folders(root, masks, results), overwrite)
    dev = resolve_device(device)
    scorers = build_metrics(names, len(clips), i3d=i3d, lpips_alex=lpips_alex, lpips_lin=lpips_lin, device=dev)
    source = existing if existing is not None else TsamResults(dev, keep)
    settings = _Settings(size, masks, max_frames, allow_partial)
    try:
        videos, unavailable = _score_clips(clips, source, settings, scorers, progress)
    finally:
        source.close()
    mean = {key: value for metric in scorers for key, value in metric.summary().items()}
    report = _report_settings(dataset, root, existing, size, masks, names, dev, command)
    return {**report, "videos": videos, "mean": mean, "unavailable": unavailable, "conventions": CONVENTIONS}


def _kept_results(folder, existing: ExistingResults | None, clips: list[Clip], inputs: list,
                  overwrite: bool) -> KeptResults | None:
    """``--keep-results``, checked now (before any clip is inpainted), or None."""
    if folder is None:
        return None
    if existing is not None:
        raise UsageError("--keep-results applies when tsam inpaints the clips, not with --results: drop one of them")
    return KeptResults(folder, clips, inputs, [("a clip of the dataset", c.source) for c in clips], overwrite)


def input_folders(root, masks: EvalMasks | None, results) -> list[tuple[str, Path]]:
    """The folders an evaluation reads as a whole, which none of its outputs may be inside."""
    folders = [("the dataset", Path(root).expanduser())]
    if masks is not None and masks.source != "generate":
        folders.append(("the mask folder", Path(masks.source)))
    if results is not None:
        folders.append(("the results folder", Path(results).expanduser()))
    return folders


def _report_settings(dataset: str, root, existing: ExistingResults | None, size, masks: EvalMasks,
                     names: list[str], device: str, command: str | None) -> dict:
    """The report's first part: how the evaluation was run."""
    return {
        "tool": "tsam eval",
        "command": command if command is not None else " ".join(sys.argv),
        "versions": versions(),
        "dataset": dataset,
        "root": str(Path(root).expanduser().resolve()),
        "mode": "score-results" if existing is not None else "run-tsam",
        "results": str(existing.folder.resolve()) if existing is not None else None,
        "size": list(size) if size is not None else None,
        "masks": masks.describe(),
        "metrics": names,
        "device": device,
    }


CONVENTIONS = {
    "psnr": "20*log10(255) - 10*log10(MSE), MSE over all pixels and RGB channels of a frame, float64; "
    "mean = over all frames of all videos (official TSAM/FFVI evaluate.py); "
    "psnr_video_mean = mean of per-video means; identical frames (inf) count as 100 dB in means",
    "psnr_hole": "same, MSE over hole pixels only; frames without hole pixels are skipped",
    "ssim": "Wang et al. 2004, 11x11 Gaussian window sigma 1.5, K1=0.01, K2=0.03, L=255, valid "
    "window positions, mean of R,G,B (= skimage structural_similarity(channel_axis=-1, gaussian_weights=True, "
    "sigma=1.5, use_sample_covariance=False, data_range=255)); mean over all frames",
    "vfid": "Frechet distance of Gaussians fitted to I3D (i3d_rgb_imagenet.pt) mean-pooled Mixed_5c features, "
    "one 1024-d vector per video from all its frames, RGB in [0,1] (FFVI/TSAM/E2FGVI convention)",
    "lpips": "Zhang et al. 2018 LPIPS v0.1, AlexNet (torchvision alexnet-owt-7be5be79.pth + lpips weights/v0.1/alex.pth), "
    "RGB in [-1,1], per frame at the evaluation size; lower = more similar; mean over all frames of all videos, "
    "lpips_video_mean = mean of per-video means",
    "ewarp": "Lai et al. 2018 flow warping error on the result video, OpenCV DIS flow, Ruder et al. occlusion "
    "test, RGB in [0,1], mean over frame pairs then over videos",
}


# --------------------------------------------------------------------------- output


def write_json(report: dict, path: str | Path) -> None:
    """Write the report as strict JSON (non-finite numbers are already null)."""
    Path(path).write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")


def write_csv(report: dict, path: str | Path) -> None:
    """One row per video plus a final ``MEAN`` row; empty cell = not available."""
    cols = ["name", "frames", "hole_ratio"] + [
        c for c in ("psnr", "psnr_hole", "ssim", "ewarp", "lpips")
        if any(c in v for v in report["videos"]) or (c == "lpips" and c in report["metrics"])
    ]
    extra = ["vfid"] if "vfid" in report["metrics"] else []
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols + extra)
        for v in report["videos"]:
            w.writerow([_cell(v.get(c)) for c in cols] + ["" for _ in extra])
        mean = report["mean"]
        total = sum(v["frames"] for v in report["videos"])
        hole = np.mean([v["hole_ratio"] for v in report["videos"]]) if report["videos"] else None
        w.writerow(["MEAN", total, _cell(hole)] + [_cell(mean.get(c)) for c in cols[3:]] + [_cell(mean.get(c)) for c in extra])


def _cell(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.6g}"
    return v
