"""Benchmark evaluation: PSNR / SSIM / VFID / E_warp / LPIPS on DAVIS, YouTube-VOS (FVI) or a folder.

Two modes:

* **(b) score existing results**: ``results`` is a folder holding, for every clip, either a
  sub-folder of frames ``<results>/<clip>/*.png|jpg`` or a video ``<results>/<clip>.mp4``
  (any container PyAV reads); each is compared with the clip's ground-truth frames.
* **(a) run tsam**: ``results=None``.  Each clip's ground-truth frames (resized to the
  evaluation size) and its masks are written as PNG folders to a temporary directory,
  ``tsam_cli.pipeline.inpaint`` fills the holes, and the output is scored as in (b).

Protocol defaults follow the TSAM paper (§4.2-4.3) and the official/E2FGVI evaluation
code: frames resized to 432x240 (W x H), masks generated per clip with a fixed seed, PSNR
and SSIM per frame averaged over all frames of the dataset, VFID over the set of videos.
Everything is computed at the evaluation size; a result whose frames have another size is
resized (bilinear) to it, which costs a little PSNR: produce results at the evaluation
size.  Results are scored as given (no re-compositing of known pixels).

Mask polarity: 1 = hole in arrays; PNG masks written or read here use 255 (non-zero) = hole.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from tsam_cli.errors import DatasetError, TsamError, UsageError
from tsam_cli.media import IMAGE_SUFFIXES, list_images
from tsam_cli.media.images import read_image

DATASETS = ("davis", "youtube-vos", "folder")
DEFAULT_SIZE = (432, 240)  # (W, H): TSAM / E2FGVI evaluation resolution
DEFAULT_METRICS = ("psnr", "ssim", "vfid")
ALL_METRICS = ("psnr", "ssim", "vfid", "ewarp", "lpips")
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


@dataclass
class Clip:
    """One ground-truth clip: a frame folder or a video file."""

    name: str
    source: Path
    annotations: Path | None = None  # DAVIS Annotations/480p/<seq> when present

    @property
    def is_video(self) -> bool:
        return self.source.is_file()


@dataclass
class MaskSpec:
    """Where masks come from: ``generate`` with a kind/area/seed, or a folder per clip."""

    source: str = "generate"  # "generate" or a directory path
    kind: str = "object"
    area: str | tuple[float, float] | None = "mixed"  # "mixed", None (free) or (lo, hi)
    seed: int = 0

    def describe(self) -> dict:
        if self.source != "generate":
            return {"source": str(self.source), "polarity": "non-zero = hole"}
        from tsam_cli.mask_gen import AREA_BUCKETS

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
            "clip_seed": "tsam_cli.mask_gen.clip_seed(clip_name, seed, kind)",
            "moving": "paper evaluation setting (object/curve move, stationary static)",
        }


# --------------------------------------------------------------------------- discovery


def _is_frame_dir(p: Path) -> bool:
    return p.is_dir() and any(f.suffix.lower() in IMAGE_SUFFIXES for f in p.iterdir())


def _frame_files(d: Path) -> list[Path]:
    """Frame images of ``d`` in natural order (``2.png`` before ``10.png``), as ``tsam inpaint`` reads them."""
    return list_images(d)


def _clips_in(d: Path) -> list[Path]:
    return sorted(p for p in d.iterdir() if _is_frame_dir(p))


def discover(dataset: str, root: str | Path, max_videos: int | None = None) -> list[Clip]:
    """Find the clips of a dataset.

    Layouts:
        * ``davis``: ``ROOT/JPEGImages/480p/<seq>/*.jpg`` (optional
          ``ROOT/Annotations/480p/<seq>/*.png``); ``ROOT`` may also be the ``480p`` folder.
        * ``youtube-vos`` (FVI): ``ROOT/{train,valid,test}/JPEGImages/<id>/*.jpg`` (the first
          split found, in that order) or ``ROOT/JPEGImages/<id>/*.jpg``.
        * ``folder``: ``ROOT/<name>/*.{jpg,png}`` frame folders and/or ``ROOT/<name>.mp4``
          videos (any extension in ``VIDEO_EXTS``).

    Clips are sorted by name; ``max_videos`` keeps the first N.  Raises ``DatasetError``
    when the root is missing or has no clip in the expected layout.
    """
    if dataset not in DATASETS:
        raise UsageError(f"unknown dataset {dataset!r}: use one of {', '.join(DATASETS)}")
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(f"dataset root {root} does not exist: pass the folder that holds the dataset with --root")
    if not root.is_dir():
        raise DatasetError(f"dataset root {root} is not a folder: pass the dataset folder with --root")

    clips: list[Clip] = []
    if dataset == "davis":
        cands = [root / "JPEGImages" / "480p", root]
        base = next((c for c in cands if c.is_dir() and _clips_in(c)), None)
        if base is None:
            raise DatasetError(
                f"{root} does not look like DAVIS: expected {root}/JPEGImages/480p/<sequence>/*.jpg"
            )
        ann_root = root / "Annotations" / "480p"
        for d in _clips_in(base):
            ann = ann_root / d.name
            clips.append(Clip(d.name, d, ann if ann.is_dir() else None))
    elif dataset == "youtube-vos":
        cands = [root / s / "JPEGImages" for s in ("train", "valid", "test")] + [root / "JPEGImages"]
        base = next((c for c in cands if c.is_dir() and _clips_in(c)), None)
        if base is None:
            raise DatasetError(
                f"{root} does not look like YouTube-VOS/FVI: expected {root}/train/JPEGImages/<id>/*.jpg "
                f"or {root}/JPEGImages/<id>/*.jpg"
            )
        clips = [Clip(d.name, d) for d in _clips_in(base)]
    else:
        seen: set[str] = set()
        for p in sorted(root.iterdir()):
            if p.is_file() and p.suffix.lower() in VIDEO_EXTS:
                name = p.stem
            elif _is_frame_dir(p):
                name = p.name
            else:
                continue
            if name in seen:
                raise DatasetError(f"two clips are named {name!r} in {root}: rename one of them")
            seen.add(name)
            clips.append(Clip(name, p))
        if not clips:
            raise DatasetError(
                f"no clips in {root}: expected videos ({', '.join(VIDEO_EXTS[:3])}, ...) or folders of frames"
            )
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
    from tsam_cli.media import iter_frames, probe

    source = Path(source)
    if not source.exists():
        raise DatasetError(f"{source} does not exist")
    frames: list[np.ndarray] = []
    try:
        info = probe(source, fps=1.0 if source.is_dir() else None)
        for fr in iter_frames(info):
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

    folder = Path(folder)
    files = _frame_files(folder) if folder.is_dir() else []
    if not files:
        raise DatasetError(f"no mask images in {folder}: expected {folder}/*.png (non-zero = hole)")
    out = []
    for f in files[:n_frames]:
        m = read_image(f, keep_depth=True, error=DatasetError).max(axis=2)
        out.append((_resize(m, size, nearest=True) > 0).astype(np.uint8))
    while len(out) < n_frames:
        out.append(out[-1])
    return np.stack(out)


def write_frames(folder: Path, frames: np.ndarray) -> None:
    """Write uint8 RGB (T, H, W, 3) or {0,1} masks (T, H, W) (saved as 0/255) as PNGs."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames):
        img = cv2.cvtColor(f, cv2.COLOR_RGB2BGR) if f.ndim == 3 else (f > 0).astype(np.uint8) * 255
        if not cv2.imwrite(str(folder / f"{i:05d}.png"), img):
            raise TsamError(f"cannot write {folder / f'{i:05d}.png'}: check the folder is writable")


def find_result(results: Path, name: str) -> Path | None:
    """``results/<name>/`` (frames) or ``results/<name>.<video ext>``; None if absent."""
    d = results / name
    if _is_frame_dir(d):
        return d
    for ext in VIDEO_EXTS:
        for cand in (results / f"{name}{ext}", results / f"{name}{ext.upper()}"):
            if cand.is_file():
                return cand
    return None


def clip_masks(clip: Clip, spec: MaskSpec, n_frames: int, size: tuple[int, int]) -> np.ndarray:
    """Masks (T, H, W) uint8 {0,1}, 1 = hole, for one clip (generated or read)."""
    if spec.source != "generate":
        return read_masks(Path(spec.source) / clip.name, n_frames, size)
    from tsam_cli.mask_gen import AREA_BUCKETS, clip_seed, generate_masks

    seed = clip_seed(clip.name, spec.seed, spec.kind)
    area = spec.area
    if area == "mixed":
        area = AREA_BUCKETS[seed % len(AREA_BUCKETS)]
    return generate_masks(spec.kind, n_frames, size[1], size[0], seed=seed, area=area)


# --------------------------------------------------------------------------- scoring


def _finite(x):
    """JSON-safe float: NaN/inf -> None."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


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


@dataclass
class _Acc:
    psnr: list = field(default_factory=list)
    psnr_hole: list = field(default_factory=list)
    ssim: list = field(default_factory=list)
    ewarp: list = field(default_factory=list)
    lpips: list = field(default_factory=list)


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


def evaluate(
    dataset: str,
    root: str | Path,
    *,
    results: str | Path | None = None,
    metrics=DEFAULT_METRICS,
    size: tuple[int, int] = DEFAULT_SIZE,
    masks: MaskSpec | None = None,
    i3d: str | Path | None = None,
    lpips_alex: str | Path | None = None,
    lpips_lin: str | Path | None = None,
    max_videos: int | None = None,
    max_frames: int | None = None,
    device: str = "auto",
    keep_results: str | Path | None = None,
    command: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Evaluate a dataset; returns the report dict (also what ``--json`` writes).

    Args:
        dataset: "davis", "youtube-vos" or "folder" (see :func:`discover`).
        root: dataset root folder.
        results: mode (b) results folder; ``None`` = mode (a), run tsam's pipeline.
        metrics: any of "psnr" (also gives hole PSNR), "ssim", "vfid", "ewarp", "lpips".
        size: evaluation size (W, H); ``None`` keeps the native size.
        masks: :class:`MaskSpec` (default: generated object masks, mixed area buckets,
            seed 0).
        i3d: path of ``i3d_rgb_imagenet.pt`` for VFID (else looked up, see
            :func:`tsam_cli.metrics.vfid.resolve_i3d_weights`).
        lpips_alex / lpips_lin: for LPIPS, torchvision ``alexnet-owt-7be5be79.pth`` and the
            lpips package's ``weights/v0.1/alex.pth`` (else the weight cache entries
            ``alexnet-imagenet`` / ``lpips-alex-v0.1``).
        max_videos / max_frames: keep the first N clips / frames per clip.
        device: for I3D, LPIPS and tsam's pipeline ("auto" = CUDA when available).
        keep_results: mode (a): copy tsam's outputs to ``keep_results/<clip>/``.
        command: the command line to record (default: ``sys.argv``).
        progress: optional callback receiving one line per clip.

    Returns:
        dict with ``videos`` (per clip), ``mean`` (dataset values), ``unavailable``
        (metric -> reason), ``conventions``, ``versions``, ``command`` and the settings.
        Non-finite values are ``None`` in the dict (JSON null).

    VFID and LPIPS failures (missing weights, fewer than 2 videos for VFID, frames too small
    for LPIPS) do not abort the other metrics: the metric is listed in ``unavailable`` with
    the reason.
    """
    metrics = _parse_metrics(metrics)
    masks = masks or MaskSpec()
    if masks.source != "generate" and not Path(masks.source).is_dir():
        raise DatasetError(f"mask folder {masks.source} does not exist: pass --masks DIR with DIR/<clip>/*.png")
    if size is not None and (size[0] < 16 or size[1] < 16):
        raise UsageError(f"evaluation size {size[0]}x{size[1]} is too small (min 16x16)")
    clips = discover(dataset, root, max_videos)
    results_dir = Path(results).expanduser() if results is not None else None
    if results_dir is not None:
        if not results_dir.is_dir():
            raise DatasetError(f"results folder {results_dir} does not exist")
        missing = [c.name for c in clips if find_result(results_dir, c.name) is None]
        if missing:
            raise DatasetError(
                f"no result for {len(missing)} of {len(clips)} clips in {results_dir} (e.g. {missing[0]!r}): "
                f"expected {results_dir}/<clip>/*.png or {results_dir}/<clip>.mp4"
            )

    dev = _pick_device(device)
    unavailable: dict[str, str] = {}
    vfid_scorer = None
    if "vfid" in metrics:
        if len(clips) < 2:
            unavailable["vfid"] = f"needs at least 2 videos, got {len(clips)}"
        else:
            try:
                from tsam_cli.metrics.vfid import VFIDScorer

                vfid_scorer = VFIDScorer(i3d, device=dev)
            except TsamError as exc:
                unavailable["vfid"] = str(exc).splitlines()[0]
    lpips_model = None
    if "lpips" in metrics:
        try:
            from tsam_cli.metrics.lpips import load_lpips

            lpips_model = load_lpips(lpips_alex, lpips_lin, device=dev)
        except TsamError as exc:
            unavailable["lpips"] = str(exc).splitlines()[0]

    inpaint = opts_cls = None
    tmp_root = None
    if results_dir is None:
        inpaint, opts_cls = _load_pipeline()
        tmp_root = Path(tempfile.mkdtemp(prefix="tsam-eval-"))

    acc = _Acc()
    videos = []
    try:
        for i, clip in enumerate(clips):
            gt = read_frames(clip.source, size, max_frames)
            eval_size = (gt.shape[2], gt.shape[1])
            m = clip_masks(clip, masks, len(gt), eval_size)
            if results_dir is not None:
                res_path = find_result(results_dir, clip.name)
            else:
                res_path = _run_pipeline(inpaint, opts_cls, tmp_root / clip.name, gt, m, dev)
                if keep_results is not None:
                    dst = Path(keep_results) / clip.name
                    if dst.exists():
                        shutil.rmtree(dst)
                    shutil.copytree(res_path, dst)
            res = read_frames(res_path, eval_size, max_frames)
            row = {"name": clip.name, "frames": int(len(gt)), "hole_ratio": float(m.mean())}
            if len(res) != len(gt):
                row["note"] = f"result has {len(res)} frames, ground truth {len(gt)}: scored the first {min(len(res), len(gt))}"
            n = min(len(res), len(gt))
            gt_n, res_n, m_n = gt[:n], res[:n], m[:n]
            if "psnr" in metrics:
                from tsam_cli.metrics.psnr import capped_mean, psnr_frames

                p = psnr_frames(gt_n, res_n)
                ph = psnr_frames(gt_n, res_n, m_n)
                acc.psnr.append(p)
                acc.psnr_hole.append(ph)
                row["psnr"] = _finite(capped_mean(p))
                row["psnr_hole"] = _finite(capped_mean(ph))
            if "ssim" in metrics:
                from tsam_cli.metrics.ssim import ssim_frames

                s = ssim_frames(gt_n, res_n)
                acc.ssim.append(s)
                row["ssim"] = float(s.mean())
            if "ewarp" in metrics:
                from tsam_cli.metrics.ewarp import warping_error

                e = warping_error(res_n)
                acc.ewarp.append(e)
                row["ewarp"] = _finite(e)
            if lpips_model is not None:
                from tsam_cli.metrics.lpips import lpips_frames

                try:
                    lp = lpips_frames(lpips_model, gt_n, res_n)
                except (ValueError, RuntimeError) as exc:
                    unavailable["lpips"] = f"LPIPS failed on {clip.name}: {exc}".splitlines()[0]
                    lpips_model = None
                    acc.lpips.clear()
                    for v in videos:
                        v.pop("lpips", None)
                else:
                    acc.lpips.append(lp)
                    row["lpips"] = _finite(lp.mean())
            if vfid_scorer is not None:
                try:
                    vfid_scorer.add(gt_n, res_n)
                except (ValueError, RuntimeError) as exc:
                    unavailable["vfid"] = f"I3D failed on {clip.name}: {exc}".splitlines()[0]
                    vfid_scorer = None
            videos.append(row)
            if progress is not None:
                progress(f"[{i + 1}/{len(clips)}] {clip.name}: " + ", ".join(
                    f"{k} {v:.4f}" for k, v in row.items() if k in ("psnr", "ssim", "ewarp", "lpips") and v is not None))
    finally:
        if tmp_root is not None:
            shutil.rmtree(tmp_root, ignore_errors=True)

    mean: dict = {}
    if "psnr" in metrics:
        from tsam_cli.metrics.psnr import aggregate

        a = aggregate(acc.psnr)
        ah = aggregate(acc.psnr_hole)
        mean.update(psnr=_finite(a["mean"]), psnr_video_mean=_finite(a["video_mean"]),
                    psnr_capped_frames=a["capped_frames"], psnr_hole=_finite(ah["mean"]),
                    psnr_hole_video_mean=_finite(ah["video_mean"]))
    if "ssim" in metrics:
        allv = np.concatenate(acc.ssim)
        mean.update(ssim=float(allv.mean()), ssim_video_mean=float(np.mean([s.mean() for s in acc.ssim])))
    if "ewarp" in metrics:
        e = np.array(acc.ewarp, dtype=np.float64)
        e = e[~np.isnan(e)]
        mean["ewarp"] = float(e.mean()) if e.size else None
    if "lpips" in metrics:
        mean.update(lpips=None, lpips_video_mean=None)
        if lpips_model is not None and acc.lpips:
            mean.update(lpips=_finite(np.concatenate(acc.lpips).mean()),
                        lpips_video_mean=_finite(np.mean([v.mean() for v in acc.lpips])))
    if "vfid" in metrics:
        mean["vfid"] = None
        if vfid_scorer is not None and "vfid" not in unavailable:
            mean["vfid"] = _finite(vfid_scorer.compute())

    return {
        "tool": "tsam eval",
        "command": command if command is not None else " ".join(sys.argv),
        "versions": versions(),
        "dataset": dataset,
        "root": str(Path(root).expanduser().resolve()),
        "mode": "score-results" if results_dir is not None else "run-tsam",
        "results": str(results_dir.resolve()) if results_dir is not None else None,
        "size": list(size) if size is not None else None,
        "masks": masks.describe(),
        "metrics": metrics,
        "device": dev,
        "videos": videos,
        "mean": mean,
        "unavailable": unavailable,
        "conventions": CONVENTIONS,
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


def _pick_device(device: str) -> str:
    if device != "auto":
        return device
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:  # pragma: no cover
        return "cpu"


def _load_pipeline():
    try:
        from tsam_cli.pipeline import InpaintOptions, inpaint
    except ImportError as exc:
        raise TsamError(
            f"running tsam on the dataset needs tsam_cli.pipeline ({exc}); "
            "or score existing results with --results DIR"
        ) from exc
    return inpaint, InpaintOptions


def _run_pipeline(inpaint, opts_cls, work: Path, gt: np.ndarray, masks: np.ndarray, device: str) -> Path:
    """Mode (a): write frames and masks (255 = hole) as PNG folders, inpaint to PNG frames."""
    frames_dir, mask_dir, out_dir = work / "frames", work / "masks", work / "out"
    write_frames(frames_dir, gt)
    write_frames(mask_dir, masks)
    opts = opts_cls(mask=str(mask_dir), dilate=0, mask_threshold=0, lossless=True, quiet=True, device=device)
    inpaint(str(frames_dir), str(out_dir), opts)
    if not _is_frame_dir(out_dir):
        raise TsamError(f"tsam produced no frames in {out_dir}")
    return out_dir


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
