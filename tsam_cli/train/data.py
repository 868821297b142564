"""Training data: video discovery, random clips, on-the-fly masks and cached optical flow.

Datasets (``discover``): the layouts of :mod:`tsam_cli.data.layouts`, shared with ``tsam eval``:
  * ``davis``: ``ROOT/JPEGImages/480p/<sequence>/*.jpg`` (DAVIS 2017 layout). ``split="paper"``
    keeps the 60 sequences of ``splits/davis_train.txt`` (paper §4.1: the 60 first-frame-only
    videos = DAVIS-2017 test-dev + test-challenge); ``split="all"`` keeps every sequence.
  * ``youtube-vos``: ``ROOT/train/JPEGImages/<video id>/*.jpg`` (the FVI training videos are
    YouTube-VOS train videos, paper §4.1); see :mod:`tsam_cli.data.layouts` for the other accepted roots.
  * ``folder``: every video file and every folder of frames directly inside ``ROOT``.

One sample = one random clip of ``T`` frames of one video (the official loader also draws one
random clip per video per epoch: ``sample_length 7``, ``random_sample true`` in
src/dataset_configs/*_flow.json). Everything random about a sample (temporal stride, start,
scale, crop, flip, mask) comes from ``numpy.random.default_rng([seed, epoch, index])``, so a
batch depends only on (seed, epoch, position): the same with 0 or 8 workers, on 1 or 8 GPUs,
and after a resume.

Optical flow (paper §4 "Implementation details": flow computed on ground-truth frame pairs)
is computed once per frame pair at the video's *base* size (the frame resized to cover the
training size, before the random scale/crop/flip) and cached on disk; the cached flow is then
transformed with the frames exactly like the official loader transforms its pre-computed
flows: resize with vectors scaled by the size ratio (transform_flow.py:141-142), crop, and a
horizontal flip that mirrors the field and negates dx (transform_flow.py:76-80). This is what
makes the cache hit from the second epoch on even though crops and flips change every epoch.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tsam_cli.data import layouts as datasets
from tsam_cli.data.layouts import DATASETS, Clip
from tsam_cli.data.mask_gen import AREA_BUCKETS, KINDS, generate_masks
from tsam_cli.errors import DatasetError, TsamError
from tsam_cli.media import list_images

MASK_KINDS = KINDS  # the paper's three kinds (tsam_cli.data.mask_gen)
SPLIT_DIR = Path(__file__).resolve().parent / "splits"

#: Cached flow format version: bump when the cache content changes meaning.
FLOW_CACHE_VERSION = 1


@dataclass
class VideoSource:
    """One training video: a folder of frames (``frames``) or a video file (``path``)."""

    name: str
    n_frames: int
    frames: list[Path] = field(default_factory=list, repr=False)
    path: Path | None = None
    #: the video file's probe, made on the first read and reused (a probe demuxes the whole file)
    info: object = field(default=None, repr=False, compare=False)

    def read(self, indices: Sequence[int]) -> list[np.ndarray]:
        """``(H, W, 3) uint8 RGB`` frames at ``indices``, through tsam's media layer (images
        oriented as a viewer shows them; videos decoded in order up to the last index
        needed, since seeking is not exact for every codec: extract long videos to folders)."""
        from tsam_cli.media.images import read_image
        from tsam_cli.media.reader import iter_frames, probe

        if self.frames:
            return [read_image(self.frames[i], error=DatasetError) for i in indices]
        wanted = {int(i): None for i in indices}
        last = max(wanted)
        try:
            if self.info is None:
                self.info = probe(self.path)
            for k, frame in enumerate(iter_frames(self.info)):
                if k in wanted:
                    wanted[k] = frame.rgb
                if k >= last:
                    break
        except TsamError as exc:
            raise DatasetError(f"{self.path}: {exc}") from None
        missing = [k for k, v in wanted.items() if v is None]
        if missing:
            raise DatasetError(f"{self.path}: frame {missing[0]} cannot be decoded")
        return [wanted[int(i)] for i in indices]


# ----------------------------------------------------------------------------------- discovery
def read_split(name: str) -> list[str]:
    """Sequence names of a shipped split file (``#`` comments and blank lines ignored)."""
    path = SPLIT_DIR / f"{name}.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def _video_source(clip: Clip) -> VideoSource | None:
    """The training video of one clip; None for a video file that cannot be read."""
    if not clip.is_video:
        files = list_images(clip.source)
        return VideoSource(clip.name, len(files), frames=files)
    from tsam_cli.media.reader import probe

    try:
        info = probe(clip.source)  # counts frames by demuxing; kept for reading
    except TsamError:
        return None  # unreadable or empty: skipped with a warning by the caller
    # named by file name, not stem: a.mp4 and a.mov stay apart, and flow-cache keys stay as before
    return VideoSource(clip.source.name, info.n_frames, path=clip.source, info=info)


def _paper_split(clips: list[Clip]) -> tuple[list[Clip], str | None]:
    """The clips of ``splits/davis_train.txt`` in that file's order, and a warning when some are missing."""
    base = clips[0].source.parent
    wanted = read_split("davis_train")
    by_name = {c.name: c for c in clips}
    missing = [n for n in wanted if n not in by_name]
    if len(missing) == len(wanted):
        raise DatasetError(
            f"none of the 60 DAVIS training sequences (test-dev + test-challenge 2017) is in "
            f"{base}: add them, or use --split all to train on every sequence there"
        )
    warning = None
    if missing:
        warning = (f"{len(missing)} of the 60 DAVIS training sequences are missing from {base} "
                   f"(first: {missing[0]}); training on the {len(wanted) - len(missing)} present")
    return [by_name[n] for n in wanted if n in by_name], warning


def discover(dataset: str, root: Path, split: str = "paper") -> list[VideoSource]:
    """All usable videos of a dataset, without size filtering.

    The layouts are :mod:`tsam_cli.data.layouts`'s (shared with ``tsam eval``); on top of them,
    ``split`` selects DAVIS sequences: ``"paper"`` keeps those of ``splits/davis_train.txt``
    (in that file's order, a warning naming missing ones), ``"all"`` keeps every sequence.
    Unreadable video files are skipped with a warning.  Raises :class:`DatasetError` (one
    line, naming the expected layout) for a missing root or a wrong layout.
    """
    clips = datasets.discover(dataset, root)
    if dataset == "davis" and split == "paper":
        clips, warning = _paper_split(clips)
        if warning:
            warnings.warn(warning, stacklevel=2)
    elif dataset == "davis" and split != "all":
        raise DatasetError(f"unknown DAVIS split {split!r}: use paper or all")
    sources: list[VideoSource] = []
    for clip in clips:
        src = _video_source(clip)
        if src is None:
            warnings.warn(f"skipping {clip.source}: not a readable video", stacklevel=2)
        else:
            sources.append(src)
    if not sources:
        raise DatasetError(f"no videos found under {root}: none of its video files can be read")
    return sources


def keep_long_enough(sources: list[VideoSource], T: int) -> list[VideoSource]:
    """Drop videos with fewer than ``T`` frames (one warning); none left -> DatasetError."""
    short = [s for s in sources if s.n_frames < T]
    kept = [s for s in sources if s.n_frames >= T]
    if short:
        warnings.warn(
            f"skipping {len(short)} video(s) shorter than {T} frames (first: {short[0].name}, "
            f"{short[0].n_frames} frames)",
            stacklevel=2,
        )
    if not kept:
        raise DatasetError(f"every video has fewer than {T} frames: use --frames {max(s.n_frames for s in sources)} or longer videos")
    return kept


# ---------------------------------------------------------------------------------- geometry
def cover_size(w: int, h: int, out_w: int, out_h: int) -> tuple[int, int]:
    """Smallest (w, h) with the frame's aspect ratio that covers (out_w, out_h)."""
    s = max(out_w / w, out_h / h)
    return max(out_w, int(round(w * s))), max(out_h, int(round(h * s)))


def resize_flow(flow: np.ndarray, w: int, h: int) -> np.ndarray:
    """Resize a ``(H, W, 2)`` flow to (w, h) (nearest, as the official loader) and scale its
    vectors by the size ratio (official transform_flow.py:141-142)."""
    import cv2

    fh, fw = flow.shape[:2]
    if (fw, fh) == (w, h):
        return flow
    out = cv2.resize(flow, (w, h), interpolation=cv2.INTER_NEAREST)
    out[..., 0] *= w / fw
    out[..., 1] *= h / fh
    return out


def flip_flow(flow: np.ndarray) -> np.ndarray:
    """Horizontal flip of a ``(H, W, 2)`` flow: mirror the field and negate dx."""
    out = flow[:, ::-1].copy()
    out[..., 0] *= -1
    return out


# --------------------------------------------------------------------------------- flow cache
class FlowCache:
    """Per-pair flow on ground-truth frames, stored as ``.npz`` files (written atomically).

    Key = video name + both frame indices + base size + estimator + format version, hashed.
    ``computed`` counts estimator runs in this process (tests use it).
    """

    def __init__(self, directory: Path | None, method: str = "dis") -> None:
        self.dir = Path(directory) if directory is not None else None
        self.method = method
        self._estimator = None
        self.computed = 0

    def _path(self, video: str, i: int, j: int, size: tuple[int, int]) -> Path | None:
        if self.dir is None:
            return None
        key = f"v{FLOW_CACHE_VERSION}|{self.method}|{video}|{i}|{j}|{size[0]}x{size[1]}"
        digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:20]
        return self.dir / digest[:2] / f"{digest}.npz"

    def pair(self, video: str, i: int, j: int, img_i: np.ndarray, img_j: np.ndarray | None,
             size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(fwd i->j on i, bwd j->i on j, valid_f, valid_b) at ``size``; images at ``size``."""
        path = self._path(video, i, j, size)
        if path is not None and path.is_file():
            try:
                with np.load(path) as z:
                    return (z["fwd"].astype(np.float32), z["bwd"].astype(np.float32),
                            z["valid_f"], z["valid_b"])
            except Exception:  # a corrupt cache file is recomputed
                pass
        from tsam_cli import flow as flow_mod

        if self._estimator is None:
            self._estimator = flow_mod.make_estimator(self.method)
        no_hole = np.zeros(img_i.shape[:2], dtype=bool)
        pf = flow_mod.pair_flow(self._estimator, img_i, img_j, no_hole, no_hole)
        self.computed += 1
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
            try:
                np.savez(tmp, fwd=pf.fwd.astype(np.float16), bwd=pf.bwd.astype(np.float16),
                         valid_f=pf.valid_f, valid_b=pf.valid_b)
                os.replace(tmp, path)
            except OSError:
                tmp.unlink(missing_ok=True)
            except BaseException:  # a signal: no half-written temporary left in a shared cache
                tmp.unlink(missing_ok=True)
                raise
        # return what a cache hit would return (float16 round trip), so results never depend
        # on whether the cache was warm
        return (pf.fwd.astype(np.float16).astype(np.float32), pf.bwd.astype(np.float16).astype(np.float32),
                pf.valid_f, pf.valid_b)


# ----------------------------------------------------------------------------------- dataset
@dataclass
class ClipSpec:
    """Random choices for one sample (drawn from the per-sample generator)."""

    indices: list[int]
    scale: float
    x0: int
    y0: int
    flip: bool
    mask_kind: str
    mask_area: tuple[float, float] | None
    mask_seed: int


class ClipDataset:
    """Map-style dataset of random training clips; item key = ``(epoch, index)``.

    Returns a dict of float32 tensors: ``frames (T,3,H,W)`` in [0, 1], ``masks (T,1,H,W)``
    1 = hole, ``forward``/``backward (T-1,2,H,W)`` and ``forward_valid``/``backward_valid
    (T-1,1,H,W)`` (1 = reliable), in the conventions of :class:`~tsam_cli.model.TSAMGenerator`.
    """

    def __init__(
        self, sources: list[VideoSource], *, frames: int = 7, size: tuple[int, int] = (432, 240),
        seed: int = 0, max_stride: int = 3, max_scale: float = 1.25, flip: bool = True,
        mask_kinds: Sequence[str] = MASK_KINDS, mask_area: bool = True,
        flow_cache: Path | None = None, flow_method: str = "dis", with_flow: bool = True,
    ) -> None:
        self.sources = keep_long_enough(list(sources), frames)
        self.T = int(frames)
        self.W, self.H = int(size[0]), int(size[1])
        self.seed = int(seed)
        self.max_stride = max(1, int(max_stride))
        self.max_scale = max(1.0, float(max_scale))
        self.flip = flip
        self.mask_kinds = tuple(mask_kinds)
        self.mask_area = mask_area
        self.with_flow = with_flow
        self.flows = FlowCache(flow_cache, flow_method)

    def __len__(self) -> int:
        return len(self.sources)

    # ------------------------------------------------------------------ randomness
    def spec(self, epoch: int, index: int) -> ClipSpec:
        rng = np.random.default_rng([self.seed, int(epoch), int(index)])
        src = self.sources[index]
        n, T = src.n_frames, self.T
        max_stride = max(1, min(self.max_stride, (n - 1) // max(T - 1, 1))) if T > 1 else 1
        stride = int(rng.integers(1, max_stride + 1))
        span = (T - 1) * stride + 1
        start = int(rng.integers(0, n - span + 1))
        indices = [start + k * stride for k in range(T)]
        scale = float(rng.uniform(1.0, self.max_scale))
        fx, fy = float(rng.random()), float(rng.random())  # crop offsets as fractions
        flip = bool(self.flip and rng.random() < 0.5)
        kind = self.mask_kinds[int(rng.integers(len(self.mask_kinds)))]
        area = AREA_BUCKETS[int(rng.integers(len(AREA_BUCKETS)))] if self.mask_area else None
        mask_seed = int(rng.integers(2**31 - 1))
        return ClipSpec(indices, scale, int(fx * 1e6), int(fy * 1e6), flip, kind, area, mask_seed)

    # ------------------------------------------------------------------ loading
    def __getitem__(self, key) -> dict:
        import cv2
        import torch

        epoch, index = key if isinstance(key, tuple) else (0, key)
        sp = self.spec(epoch, index)
        src = self.sources[index]
        imgs = src.read(sp.indices)
        h0, w0 = imgs[0].shape[:2]
        bw, bh = cover_size(w0, h0, self.W, self.H)  # base size: flow is computed (and cached) here
        base = [cv2.resize(im, (bw, bh), interpolation=cv2.INTER_AREA) if (im.shape[1], im.shape[0]) != (bw, bh) else im
                for im in imgs]
        crop = _Crop.of(sp, (bw, bh), self.W, self.H)
        frames = np.stack([crop.image(im, cv2.INTER_LINEAR) for im in base])  # (T, H, W, 3)
        masks = generate_masks(
            sp.mask_kind, self.T, self.H, self.W, seed=sp.mask_seed, area=sp.mask_area,
            moving=0.5 if sp.mask_kind == "stationary" else None,  # paper §4.1 "Mask Types"
        )
        out = {
            "frames": torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0,
            "masks": torch.from_numpy(masks.astype(np.float32)).unsqueeze(1),
        }
        if self.with_flow and self.T > 1:
            out.update(self._flows(sp, src, base, crop))
        return out

    def _flows(self, sp, src, base: list, crop: _Crop) -> dict:
        """The clip's pair flows and validity at the base size (cached), cropped like its frames."""
        import cv2
        import torch

        fw, bw_, vf, vb = [], [], [], []
        for t in range(self.T - 1):
            i, j = sp.indices[t], sp.indices[t + 1]
            f, b, v1, v2 = self.flows.pair(src.name, i, j, base[t], base[t + 1], crop.base)
            fw.append(crop.flow(f)), bw_.append(crop.flow(b))
            vf.append(crop.image(v1.astype(np.uint8), cv2.INTER_NEAREST))
            vb.append(crop.image(v2.astype(np.uint8), cv2.INTER_NEAREST))

        def t_flow(xs):
            return torch.from_numpy(np.ascontiguousarray(np.stack(xs))).permute(0, 3, 1, 2).float()

        def t_valid(xs):
            return torch.from_numpy(np.ascontiguousarray(np.stack(xs))).unsqueeze(1).float()

        return {"forward": t_flow(fw), "backward": t_flow(bw_), "forward_valid": t_valid(vf),
                "backward_valid": t_valid(vb)}


@dataclass
class _Crop:
    """The random scale, crop and flip of one training sample, applied alike to its frames,
    validity masks and flows (flows are scaled with the picture and mirrored with the flip)."""

    base: tuple[int, int]  # (w, h) the frames were resized to first
    size: tuple[int, int]  # (w, h) after the random scale
    x0: int
    y0: int
    out: tuple[int, int]  # (W, H) of the crop
    flip: bool

    @classmethod
    def of(cls, sp, base: tuple[int, int], W: int, H: int) -> _Crop:
        bw, bh = base
        sw, sh = max(W, int(round(bw * sp.scale))), max(H, int(round(bh * sp.scale)))
        return cls(base, (sw, sh), (sp.x0 * (sw - W + 1)) // 1_000_001, (sp.y0 * (sh - H + 1)) // 1_000_001,
                   (W, H), sp.flip)

    def image(self, img: np.ndarray, interp: int) -> np.ndarray:
        import cv2

        if self.size != self.base:
            img = cv2.resize(img, self.size, interpolation=interp)
        img = img[self.y0:self.y0 + self.out[1], self.x0:self.x0 + self.out[0]]
        return img[:, ::-1] if self.flip else img

    def flow(self, f: np.ndarray) -> np.ndarray:
        f = resize_flow(f, *self.size)[self.y0:self.y0 + self.out[1], self.x0:self.x0 + self.out[0]]
        return flip_flow(f) if self.flip else f


# ----------------------------------------------------------------------------------- sampler
class EpochSampler:
    """Shuffled indices of one epoch as ``(epoch, index)`` keys, split across ranks.

    Like ``DistributedSampler`` (pads with the first indices to a multiple of the world size,
    rank r takes positions r, r+W, ...), plus ``skip``: the number of this rank's samples of
    the epoch already consumed, so a resumed run continues with exactly the next batch.
    """

    def __init__(self, n: int, *, seed: int = 0, rank: int = 0, world: int = 1, shuffle: bool = True) -> None:
        self.n, self.seed, self.rank, self.world, self.shuffle = n, seed, rank, world, shuffle
        self.epoch = 0
        self.skip = 0
        self.per_rank = -(-n // world)

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = int(epoch), int(skip)

    def __len__(self) -> int:
        return max(0, self.per_rank - self.skip)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch, 7919]).permutation(self.n).tolist()
        else:
            order = list(range(self.n))
        total = self.per_rank * self.world
        order = (order * (total // max(len(order), 1) + 1))[:total]
        mine = order[self.rank::self.world]
        for idx in mine[self.skip:]:
            yield (self.epoch, int(idx))


def worker_init(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed the global RNGs of a worker (samples do not use them,
    but cv2/numpy code called by them might) and keep OpenCV single-threaded in workers."""
    import random

    import cv2
    import torch

    seed = torch.initial_seed() % (2**32)
    random.seed(seed)
    np.random.seed(seed)
    cv2.setNumThreads(1)


__all__ = [
    "DATASETS", "MASK_KINDS", "VideoSource", "discover", "keep_long_enough", "read_split",
    "ClipDataset", "ClipSpec", "EpochSampler", "FlowCache", "worker_init", "cover_size",
    "resize_flow", "flip_flow",
]
