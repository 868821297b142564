"""Benchmark of ``tsam mask text``: subtitles drawn onto real clips, mask IoU, misses at changes, speed.

Clips from ``../shared/data`` (bmx-trees, schoolgirls, running_car and landscape clips of
``train/``), each resized to 432x240 and looped ping-pong to ``--frames`` frames at 25 fps.
Subtitles are drawn with OpenCV's Hershey fonts (simplex, duplex, complex, triplex), white
with a black outline, 1-3 centred lines near the bottom, a new one every 1-3 s (sometimes a
short pause without text between two), sizes 0.45-0.7 (letters 9-16 px high). The truth
per frame is the tight box of each drawn line (outline included), grown by ``--pad``.

Printed per clip and overall, for each ``--every``:

* IoU: mask vs the union of the true padded boxes, mean over frames showing text;
* false: frames without text that got a mask;
* worst miss: the longest run of frames whose text is unmasked (under 90 % of its drawn
  pixels inside the mask: a word or line missing); the goal is <= 1 (at a change);
* partly: frames with under 99 % of the drawn pixels covered (a fringe or a dot outside);
* s/frame: the whole ``tsam mask text`` stage (decode + detect + tracks), 2 cores.

Rows: the baseline masks the whole search band (``--region bottom``) in every frame;
"every 1 raw" is the per-frame detection (no gap bridging, no minimum length).

    python benchmarks/mask_text.py [--frames 150] [--clips 8] [--pad 4] [--rows "every 1,every 5"]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import SHARED, loop_index

SIZE = (432, 240)
FPS = 25
FONTS = ("FONT_HERSHEY_SIMPLEX", "FONT_HERSHEY_DUPLEX", "FONT_HERSHEY_COMPLEX", "FONT_HERSHEY_TRIPLEX")
WORDS = ("the", "you", "what", "never", "tomorrow", "station", "I", "think", "we", "should", "go", "back",
         "where", "is", "everyone", "listen", "to", "me", "please", "don't", "know", "why", "she", "left",
         "morning", "quiet", "river", "OK", "right", "now", "42", "years", "ago", "Hello!", "wait...", "again")
TRAIN_CLIPS = ("sam2_dog_park", "sam2_juggle_lawn", "ta_aquarium", "cotracker_paraglide_air", "sam2_cups_table")


def load_clip(name: str, n: int) -> np.ndarray:
    """``(n, 240, 432, 3) uint8`` RGB frames of a shared clip, resized, looped ping-pong."""
    import cv2

    from tsam_cli.media import iter_frames, probe

    if name == "bmx-trees":
        src = SHARED / "bmx-trees" / "frames"
    elif name in ("schoolgirls", "running_car"):
        src = SHARED / name / f"{name}.mp4"
    else:
        src = SHARED / "train" / name
    info = probe(src, fps=FPS) if src.is_dir() else probe(src)
    frames = [cv2.resize(f.rgb, SIZE, interpolation=cv2.INTER_AREA) for _, f in zip(range(80), iter_frames(info), strict=False)]
    return np.stack([frames[i] for i in loop_index(len(frames), n)])


def random_subtitle(rng, width: int) -> dict:
    """One subtitle: lines of text, font, scale, stroke width."""
    font = getattr(__import__("cv2"), FONTS[rng.integers(len(FONTS))])
    scale = float(rng.uniform(0.45, 0.7))
    thick = int(rng.integers(1, 3))
    lines = []
    for _ in range(int(rng.integers(1, 4))):
        words = list(rng.choice(WORDS, size=int(rng.integers(2, 7))))
        while len(words) > 1 and _text_width(" ".join(words), font, scale, thick + 2) > width - 24:
            words.pop()
        lines.append(" ".join(words))
    return {"lines": lines, "font": font, "scale": scale, "thick": thick}


def _text_width(text: str, font, scale: float, thick: int) -> int:
    import cv2

    return cv2.getTextSize(text, font, scale, thick)[0][0]


def draw_subtitle(frame: np.ndarray, sub: dict) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``sub`` onto a copy of ``frame`` -> ``(frame, boxes (K, 4) x0 y0 x1 y1 of the drawn lines)``.

    White text, black outline (stroke + 2 px), lines centred, bottom line 12 px above the edge."""
    import cv2

    h, w = frame.shape[:2]
    out = frame.copy()
    font, scale, thick = sub["font"], sub["scale"], sub["thick"]
    (_, line_h), base = cv2.getTextSize("Ag", font, scale, thick + 2)
    step = line_h + base + 4
    boxes = []
    for k, text in enumerate(reversed(sub["lines"])):
        tw = _text_width(text, font, scale, thick + 2)
        org = ((w - tw) // 2, h - 12 - base - k * step)
        ink = np.zeros((h, w), np.uint8)
        cv2.putText(ink, text, org, font, scale, 255, thick + 2, cv2.LINE_AA)
        cv2.putText(out, text, org, font, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
        cv2.putText(out, text, org, font, scale, (255, 255, 255), thick, cv2.LINE_AA)
        ys, xs = np.nonzero(ink)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return out, np.array(boxes, np.float32)


def subtitle_track(n: int, seed: int) -> list[dict | None]:
    """Per frame: the subtitle shown (same dict object while it stays) or None; each lasts 1-3 s,
    and a third of them are followed by a pause of 0.3-1 s."""
    rng = np.random.default_rng(seed)
    out: list[dict | None] = []
    while len(out) < n:
        sub = random_subtitle(rng, SIZE[0])
        out += [sub] * int(rng.integers(FPS, 3 * FPS + 1))
        if rng.random() < 1 / 3:
            out += [None] * int(rng.integers(FPS * 3 // 10, FPS + 1))
    return out[:n]


def make_case(folder: Path, clip: str, n: int, seed: int) -> tuple[Path, list, list]:
    """Write the subtitled clip as a lossless .mkv; returns (path, boxes per frame, ink per frame)."""
    from tsam_cli.media import create_video

    frames = load_clip(clip, n)
    subs = subtitle_track(n, seed)
    boxes, inks = [], []
    path = folder / f"{clip}.mkv"
    with create_video(path, SIZE[0], SIZE[1], FPS, lossless=True) as writer:
        for f, sub in zip(frames, subs, strict=True):
            if sub is None:
                drawn, b = f, np.zeros((0, 4), np.float32)
            else:
                drawn, b = draw_subtitle(f, sub)
            writer.write(drawn)
            boxes.append(b)
            inks.append(np.abs(drawn.astype(np.int16) - f).max(axis=2) > 24)
    return path, boxes, inks


#: the rows: label -> TextMaskOptions fields ("band" is the baseline: the whole search region)
CONFIGS = {
    "band (baseline)": None,
    "every 1 raw": {"every": 1, "min_frames": 1, "max_gap": 0},
    "every 1": {"every": 1},
    "every 5": {"every": 5},
}


def run_masks(video: Path, config: dict | None, pad: int) -> tuple[np.ndarray, float]:
    """``(T, H, W) bool`` masks of one configuration, and its seconds per frame."""
    from tsam_cli.masking.boxes import boxes_mask, region_rect
    from tsam_cli.masking.options import TextMaskOptions
    from tsam_cli.masking.text import text_masks
    from tsam_cli.media import probe
    from tsam_cli.ui import NullReporter

    info = probe(video)
    if config is None:
        band = boxes_mask([_xyxy(region_rect("bottom", info.width, info.height))], info.width, info.height, 0)
        return np.repeat(band[None], info.n_frames, axis=0), 0.0
    t0 = time.perf_counter()
    masks = text_masks(info, TextMaskOptions(pad=pad, **config), NullReporter())
    seconds = time.perf_counter() - t0  # decode + detect + tracks; drawing the masks is not counted
    return np.stack([m for m, _ in masks]), seconds / info.n_frames


def _xyxy(rect) -> list:
    x, y, w, h = rect
    return [x, y, x + w, y + h]


def score(masks: np.ndarray, boxes: list, inks: list, pad: int) -> dict:
    """IoU over frames with text; frames without text that got a mask; the longest run of
    frames whose text is unmasked (under 90 % of its drawn pixels covered: a line or word
    missing); frames only partly covered (under 99 %: a letter's fringe or a dot outside)."""
    from tsam_cli.masking.boxes import boxes_mask

    h, w = masks.shape[1:]
    ious, false, run, worst, partly = [], 0, 0, 0, 0
    for m, b, ink in zip(masks, boxes, inks, strict=True):
        if not len(b):
            false += int(m.any())
            run = 0
            continue
        truth = boxes_mask(b, w, h, pad)
        ious.append((m & truth).sum() / (m | truth).sum())
        covered = (m & ink).sum() / max(1, ink.sum())
        run = run + 1 if covered < 0.9 else 0
        worst = max(worst, run)
        partly += int(covered < 0.99)
    return {"iou": float(np.mean(ious)) if ious else float("nan"), "false": false, "worst": worst, "partly": partly}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--pad", type=int, default=4)
    ap.add_argument("--clips", type=int, default=8, help="how many clips (of 8)")
    ap.add_argument("--rows", default=",".join(CONFIGS), help="comma-separated row labels to run")
    args = ap.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"{SHARED} is missing: this benchmark needs the shared clips")
    clips = ["bmx-trees", "schoolgirls", "running_car", *TRAIN_CLIPS][: args.clips]
    print("command: python benchmarks/mask_text.py " + " ".join(sys.argv[1:]))
    print(f"{len(clips)} clips x {args.frames} frames at {SIZE[0]}x{SIZE[1]}, pad {args.pad}")
    with tempfile.TemporaryDirectory() as tmp:
        cases = [make_case(Path(tmp), c, args.frames, seed) for seed, c in enumerate(clips)]
        print(f"{'row':<20}{'clip':>24}{'IoU':>7}{'false':>7}{'worst miss':>11}{'partly':>8}{'s/frame':>9}")
        for label in args.rows.split(","):
            rows = []
            for clip, (path, boxes, inks) in zip(clips, cases, strict=True):
                masks, spf = run_masks(path, CONFIGS[label], args.pad)
                s = score(masks, boxes, inks, args.pad)
                rows.append((s, spf))
                print(f"{label:<20}{clip:>24}{s['iou']:>7.3f}{s['false']:>7}{s['worst']:>11}{s['partly']:>8}{spf:>9.3f}")
            total = {k: sum(r[0][k] for r in rows) for k in ("false", "partly")}
            print(f"{label:<20}{'ALL (mean / sum / max)':>24}{np.mean([r[0]['iou'] for r in rows]):>7.3f}{total['false']:>7}"
                  f"{max(r[0]['worst'] for r in rows):>11}{total['partly']:>8}{np.mean([r[1] for r in rows]):>9.3f}")


if __name__ == "__main__":
    t_start = time.perf_counter()
    main()
    print(f"total {time.perf_counter() - t_start:.0f} s")
