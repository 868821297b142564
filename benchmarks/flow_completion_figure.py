"""Figure for docs/design.md: flow inside a hole before and after motion-layer completion.

One case: a textured background panning 8 px/frame to the left, a red subject fixed in the
frame, and a hole in the background right above the subject (the clip of
tests/test_flow_completion.py). Four panels, flow colour-coded in HSV (hue = direction,
brightness = magnitude, 0 to ``MAX_PX``), the hole outlined:

  frame t | DIS flow t -> t+1 as measured | before: smooth fill | after: motion layers

    python benchmarks/flow_completion_figure.py [--out docs/flow_completion.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from tsam_cli.flow.complete import FLOW_MARGIN, smooth_fill
from tsam_cli.flow.estimate import DISFlow
from tsam_cli.flow.pair import pair_flow
from tsam_cli.flow.warp import grow

ROOT = Path(__file__).resolve().parents[1]
MAX_PX = 10.0  # magnitude shown at full brightness
SPEED, H, W = 8, 128, 192
SCALE = 2  # panels are upscaled (nearest) so the 192x128 frames stay readable


def texture(h: int, w: int, seed: int) -> np.ndarray:
    """Smooth random colour texture in [0, 255], ``(h, w, 3) float32``."""
    rng = np.random.default_rng(seed)
    t = cv2.GaussianBlur(rng.random((h, w, 3)).astype(np.float32), (0, 0), 2.0)
    return (t - t.min()) / (t.max() - t.min()) * 255


def clip() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames 0 and 1 ``(2, H, W, 3) uint8`` (hole showing the removed object), subject and hole masks."""
    bg_t = texture(H, W + 2 * SPEED, 1)
    bg = np.stack([0.2 * bg_t[..., 0], bg_t[..., 1], bg_t[..., 2]], axis=2)
    t2 = texture(H, W, 2)
    fg = np.stack([150 + 0.4 * t2[..., 0], 0.3 * t2[..., 1], 0.3 * t2[..., 2]], axis=2)
    removed = np.stack([0.3 * t2[..., 1], 0.3 * t2[..., 0], 120 + 0.5 * t2[..., 2]], axis=2)
    subject = np.zeros((H, W), bool)
    subject[70:120, 70:120] = True
    hole = np.zeros((H, W), bool)
    hole[40:70, 60:130] = True
    frames = np.stack([bg[:, SPEED * t : SPEED * t + W] for t in range(2)])
    frames[:, subject] = fg[subject]
    frames[:, hole] = removed[hole]
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8), subject, hole


def flow_to_rgb(flow: np.ndarray) -> np.ndarray:
    """``(H, W, 2)`` flow -> ``(H, W, 3) uint8`` RGB: hue = direction, value = magnitude / MAX_PX."""
    mag, ang = cv2.cartToPolar(np.ascontiguousarray(flow[..., 0]), np.ascontiguousarray(flow[..., 1]))
    hsv = np.zeros((*flow.shape[:2], 3), np.uint8)
    hsv[..., 0] = (ang * 90 / np.pi).astype(np.uint8)  # OpenCV hue is 0..179 for 0..360 degrees
    hsv[..., 1] = 255
    hsv[..., 2] = np.clip(mag / MAX_PX * 255, 0, 255).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def wheel(size: int = 56) -> np.ndarray:
    """Legend: the colour of every vector up to MAX_PX, ``(size, size, 3) uint8``."""
    r = np.linspace(-MAX_PX, MAX_PX, size, dtype=np.float32)
    fx, fy = np.meshgrid(r, r)
    img = flow_to_rgb(np.stack([fx, fy], axis=2))
    img[fx**2 + fy**2 > MAX_PX**2] = 255
    return img


def panel(img: np.ndarray, hole: np.ndarray, title: str, epe: float | None = None) -> np.ndarray:
    """Upscale, outline the hole (white), add a title bar; ``(SCALE*H + 22, SCALE*W, 3) uint8``."""
    big = cv2.resize(img, (W * SCALE, H * SCALE), interpolation=cv2.INTER_NEAREST)
    cnts, _ = cv2.findContours(cv2.resize(hole.astype(np.uint8), (W * SCALE, H * SCALE),
                                          interpolation=cv2.INTER_NEAREST), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(big, cnts, -1, (255, 255, 255), 2)
    bar = np.full((22, big.shape[1], 3), 255, np.uint8)
    text = title if epe is None else f"{title}  (EPE {epe:.2f} px)"
    cv2.putText(bar, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([bar, big])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "flow_completion.png")
    args = ap.parse_args()
    frames, subject, hole = clip()
    est = DISFlow()
    raw = est(frames[0], frames[1])
    before = smooth_fill(raw, grow(hole, FLOW_MARGIN))  # the completion before the motion layers
    after = pair_flow(est, frames[0], frames[1], hole, hole).fwd
    truth = np.array([-SPEED, 0.0], np.float32)

    def epe(f):
        return float(np.linalg.norm(f[hole] - truth, axis=1).mean())

    row1 = np.hstack([panel(frames[0], hole, "frame t (hole outlined)"),
                      panel(flow_to_rgb(raw), hole, "DIS flow t -> t+1, measured")])
    row2 = np.hstack([panel(flow_to_rgb(before), hole, "before: smooth fill", epe(before)),
                      panel(flow_to_rgb(after), hole, "after: motion layers", epe(after))])
    fig = np.vstack([row1, np.full((6, row1.shape[1], 3), 255, np.uint8), row2])
    legend = np.full((70, fig.shape[1], 3), 255, np.uint8)
    legend[7:63, 6:62] = wheel()
    cv2.putText(legend, f"flow colour: hue = direction, brightness = magnitude (0-{MAX_PX:g} px); "
                f"true background flow (-{SPEED}, 0) px, subject (0, 0)",
                (72, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
    fig = np.vstack([fig, legend])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(fig, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {args.out} ({fig.shape[1]}x{fig.shape[0]}); hole EPE before {epe(before):.3f} px, "
          f"after {epe(after):.3f} px")


if __name__ == "__main__":
    main()
