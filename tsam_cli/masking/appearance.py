"""What the tracked object looks like: a per-pixel object-vs-background score for ``tsam mask track``.

:class:`AppearanceModel` scores every pixel of a frame with a log-odds ``L`` (> 0: looks like
the object). Two parts, summed:

1. **colour**: a Lab colour histogram of the object on the seed frame against one of the
   background (the band around the object, plus the rest of the frame), log ratio per bin
   (:func:`colour_log_odds`). The background histogram follows the video (:meth:`update`:
   half new each frame, sampled outside the current mask), the object's stays the seed's,
   so the object model cannot drift.
2. **learned**: a tiny fully convolutional net (:class:`PixelNet`, 4 dilated 3x3 layers,
   receptive field 31 px, ~7k weights) trained from scratch on the seed frame alone, with
   augmentations (scale, rotation, shift, mirror, motion blur, brightness), in the spirit of
   OSVOS (Caelles et al., "One-Shot Video Object Segmentation", CVPR 2017), which fine-tunes
   a pretrained net on the first frame; here nothing pretrained can be shipped, so the net
   learns colour and local texture of this one object. Every ``update_every`` frames it
   takes a few more steps with the current frame's pixels far from the mask as background
   (negatives only, as OnAVOS does: Voigtlaender & Leibe, "Online Adaptation of Convolutional
   Neural Networks for Video Object Segmentation", BMVC 2017), mixed with the seed frame's
   samples, so new background (the camera pans onto a new wall) stops scoring as the object.

Measured (docs/benchmarks.md, "Mask tracking"): the learned part lifts mean IoU from 0.15
to 0.40 on bmx-trees and from 0.66 to 0.75 on schoolgirls over the colour part alone.

Images are ``(h, w, 3) uint8`` RGB at the tracking size; masks ``(h, w) bool``, True = object.
"""

from __future__ import annotations

import copy

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tsam_cli.masking.track import disk

#: Lab histogram bins (L, a, b): coarse in lightness (shading changes it), finer in colour
COLOUR_BINS = (8, 16, 16)
#: log-odds are clipped to +-this (a bin never seen on one side would give +-inf)
COLOUR_CLIP = 4.0
#: background histogram: the band this many px around the object (weight 0.7) + the rest (0.3)
COLOUR_RING = 40
#: pixels within this many px of the mask are left out of the background samples (its edge
#: may be a few px off; measured in the prototype: 3 vs 8 px, mean IoU 0.30 vs 0.29 bmx-trees, 0.68 vs 0.66 schoolgirls)
BG_MARGIN = 3
#: the net's logits are clipped to +-6 and weighted 0.5 against the colour log-odds
NET_CLIP, NET_WEIGHT = 6.0, 0.5
#: training crops (px) and batch; Adam's step size
CROP, BATCH, LEARNING_RATE = 96, 4, 1e-2
#: steps of the online update, and how far from the mask (px) a pixel is certainly background.
#: 5 steps: the removal composites, mean of three training seeds, 24.68 dB against 10 steps'
#: 24.61 (articulated) and 23.26 against 22.87 (rigid), the outline mode 0.407 / 0.755 IoU
#: against 0.403 / 0.767 (bmx-trees / schoolgirls), at half the update's cost
#: (docs/benchmarks.md, "The tracker's CPU")
UPDATE_STEPS, UPDATE_FAR = 5, 20


def colour_index(img: np.ndarray) -> np.ndarray:
    """``(h, w) int32`` histogram bin of each pixel of ``img`` (``(h, w, 3) uint8`` RGB), 0..prod(bins)-1."""
    lab = cv2.cvtColor(img, cv2.COLOR_RGB2LAB)
    b = COLOUR_BINS
    q = [(lab[..., c].astype(np.int32) * b[c]) >> 8 for c in range(3)]
    return (q[0] * b[1] + q[1]) * b[2] + q[2]


def histogram(idx: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Normalised histogram (sums to 1, or all 0) of the bins ``idx[where]``."""
    h = np.bincount(idx[where], minlength=int(np.prod(COLOUR_BINS))).astype(np.float64)
    return h / max(h.sum(), 1.0)


def background_histogram(idx: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Colours around (0.7) and away from (0.3) ``mask``, leaving out :data:`BG_MARGIN` px at its edge."""
    m = mask.astype(np.uint8)
    outside = cv2.dilate(m, disk(BG_MARGIN)) == 0
    near = outside & (cv2.dilate(m, disk(COLOUR_RING)) > 0)
    return 0.7 * histogram(idx, near) + 0.3 * histogram(idx, outside)


def colour_log_odds(fg: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """Per-bin ``log(P(colour | object) / P(colour | background))``, clipped to +-:data:`COLOUR_CLIP`."""
    eps = 1e-4  # ~ one pixel in 10^4: an unseen colour is neither side's
    return np.clip(np.log((fg + eps) / (bg + eps)), -COLOUR_CLIP, COLOUR_CLIP).astype(np.float32)


class PixelNet(nn.Module):
    """``(N, 5, h, w)`` (Lab + x/y gradients, :func:`net_input`) -> ``(N, h, w)`` object logits.

    Four 3x3 convolutions dilated 1, 2, 4, 8 (receptive field 31 px, the context of a wheel or
    a limb at 432x240) with ReLU, then a 1x1 to one logit.
    """

    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        c = channels
        self.body = nn.ModuleList([nn.Conv2d(5, c, 3, padding=1)] +
                                  [nn.Conv2d(c, c, 3, padding=d, dilation=d) for d in (2, 4, 8)])
        self.head = nn.Conv2d(c, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.body:
            x = F.relu(conv(x))
        return self.head(x)[:, 0]


def net_input(img: np.ndarray) -> torch.Tensor:
    """``(h, w, 3) uint8`` RGB -> ``(5, h, w) float32``: Lab in -0.5..0.5, Sobel x/y of the grey."""
    lab = cv2.cvtColor(img, cv2.COLOR_RGB2LAB).astype(np.float32) / 255.0 - 0.5
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    gx, gy = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    x = np.concatenate([lab, gx[..., None], gy[..., None]], axis=2)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


def augmented_crop(img: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A :func:`crop_origin` square of a random variant of the seed frame (:func:`_draw_augment`),
    ``((ch, cw, 3) uint8, (ch, cw) bool)``,
    made on the crop only: the same random draws, the same mask and pixels within 2 grey levels
    (rounding) of augmenting the whole frame and cropping it, at under a third of the cost (the warp and the blur ran over all of the
    frame for a 96 px square, 740 times in a 40-frame track: 15 % of its CPU)."""
    aug = _draw_augment(mask, rng)
    y0, x0, ch, cw = crop_origin(aug.mask, rng)
    return aug.image(img, y0, y0 + ch, x0, x0 + cw), aug.mask[y0 : y0 + ch, x0 : x0 + cw]


class _Augment:
    """One draw of :func:`_draw_augment`'s random transform; ``mask`` = the transformed mask."""

    def __init__(self, mask: np.ndarray, m: np.ndarray, mirror: bool, kernel: np.ndarray | None,
                 gain: float, offset: float) -> None:
        h, w = mask.shape
        self.m, self.mirror, self.kernel, self.gain, self.offset = m, mirror, kernel, gain, offset
        mk = cv2.warpAffine(mask.astype(np.uint8), m, (w, h), flags=cv2.INTER_NEAREST) > 0
        self.mask = np.ascontiguousarray(mk[:, ::-1] if mirror else mk)

    def image(self, img: np.ndarray, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Rows ``y0:y1`` and columns ``x0:x1`` of the transformed ``img`` (``(h, w, 3) uint8``).
        The warp covers the window plus the blur's reach, clipped to the frame; beyond the
        frame the window is padded as the blur pads a whole frame (reflect-101), so the blurred
        window is the whole frame's blurred, cut."""
        h, w = img.shape[:2]
        if self.mirror:  # columns x0:x1 of the mirrored frame are w-x1:w-x0 of the warped one
            x0, x1 = w - x1, w - x0
        p = 0 if self.kernel is None else self.kernel.shape[0] // 2
        wy0, wy1, wx0, wx1 = max(y0 - p, 0), min(y1 + p, h), max(x0 - p, 0), min(x1 + p, w)
        m = self.m.copy()  # maps the seed frame onto the transformed one: shift it to the window
        m[:, 2] -= (wx0, wy0)
        im = cv2.warpAffine(img, m, (wx1 - wx0, wy1 - wy0), borderMode=cv2.BORDER_REFLECT)
        if p:
            im = cv2.copyMakeBorder(im, wy0 - (y0 - p), y1 + p - wy1, wx0 - (x0 - p), x1 + p - wx1,
                                    cv2.BORDER_REFLECT_101)
        if self.mirror:
            im = im[:, ::-1]
        if p:
            im = cv2.filter2D(im, -1, self.kernel)[p:-p, p:-p]
        im = np.clip(im.astype(np.float32) * self.gain + self.offset, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(im)


def _draw_augment(mask: np.ndarray, rng: np.random.Generator) -> _Augment:
    """A random variant of the seed frame, drawn for its ``mask`` (``(h, w) bool``): scale 0.7-1.2
    and rotation +-8 deg about the object, shift up to 30 % of the frame, mirror (1/2), motion
    blur 3-15 px (1/2, mostly horizontal: pans), brightness x0.8-1.2 and +-20. ``.image(img, 0,
    h, 0, w)`` is the whole frame transformed, ``.mask`` its mask."""
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    m = cv2.getRotationMatrix2D((float(xs.mean()), float(ys.mean())), rng.uniform(-8, 8), rng.uniform(0.7, 1.2))
    m[:, 2] += rng.uniform(-0.3, 0.3, 2) * (w, h)
    mirror = bool(rng.random() < 0.5)
    kernel = None
    if rng.random() < 0.5:
        k = int(rng.integers(3, 16))
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2, :] = 1.0 / k
        kernel = kernel.T.copy() if rng.random() < 0.3 else kernel
    return _Augment(mask, m, mirror, kernel, rng.uniform(0.8, 1.2), rng.uniform(-20, 20))


def crop_origin(mask: np.ndarray, rng: np.random.Generator, near: float = 0.6) -> tuple[int, int, int, int]:
    """``(y0, x0, ch, cw)`` of a :data:`CROP`-px square (or the whole side when smaller) of a
    frame with object ``mask`` ``(h, w) bool``: centred near a random object pixel with
    probability ``near``, else anywhere."""
    h, w = mask.shape
    ch, cw = min(CROP, h), min(CROP, w)
    if mask.any() and rng.random() < near:
        ys, xs = np.nonzero(mask)
        k = rng.integers(len(ys))
        cy, cx = ys[k] + rng.integers(-(ch // 3), ch // 3 + 1), xs[k] + rng.integers(-(cw // 3), cw // 3 + 1)
    else:
        cy, cx = rng.integers(h), rng.integers(w)
    return int(np.clip(cy - ch // 2, 0, h - ch)), int(np.clip(cx - cw // 2, 0, w - cw)), ch, cw


def _balanced_loss(logit: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy where object and background weigh half each (the object is small)."""
    pos = ((target * valid).sum() / valid.sum().clamp(min=1)).clamp(1e-3, 0.999)
    weight = torch.where(target > 0, 0.5 / pos, 0.5 / (1 - pos)) * valid
    return F.binary_cross_entropy_with_logits(logit, target, weight=weight)


class AppearanceModel:
    """Object-vs-background log-odds of each pixel, learned on the seed frame (see the module doc).

    Args:
        frame: ``(h, w, 3) uint8`` RGB seed frame at the tracking size.
        mask: ``(h, w) bool`` the object on it (not empty).
        net_steps: training steps of :class:`PixelNet` on the seed frame; 0 = colour only.
        update_every: online update period in frames (0 = never).
        seed: seeds the crops' draws and the net's initial weights (the caller's random state is
            left as it was).
    """

    def __init__(self, frame: np.ndarray, mask: np.ndarray, net_steps: int, update_every: int, seed: int = 0) -> None:
        idx = colour_index(frame)
        self.fg, self.bg = histogram(idx, mask), background_histogram(idx, mask)
        self.seed, self.update_every, self.frames_seen = (frame, mask), update_every, 0
        self.rng = np.random.default_rng(seed)
        self.net = None
        if net_steps > 0:
            with _one_thread(), torch.random.fork_rng(devices=[]):  # seeded, without touching the caller's RNG
                torch.manual_seed(seed)
                # trained channels-last: oneDNN's kernels for 16 channels take 0.042 against
                # 0.049-0.055 s a step of 4 crops on one thread; scoring a whole frame gains
                # nothing that way, so its input keeps the usual layout
                self.net = PixelNet().to(memory_format=torch.channels_last)
                self.optimiser = torch.optim.Adam(self.net.parameters(), lr=LEARNING_RATE)
                for _ in range(net_steps):
                    self._train_step(None)

    def clone(self) -> AppearanceModel:
        """An independent copy (the backward pass starts again from the seed frame's model)."""
        return copy.deepcopy(self)

    def log_odds(self, frame: np.ndarray) -> np.ndarray:
        """``(h, w) float32`` log-odds that each pixel of ``frame`` is the object."""
        out = colour_log_odds(self.fg, self.bg)[colour_index(frame)]
        if self.net is not None:
            with _one_thread(), torch.no_grad():
                logit = self.net(net_input(frame)[None])[0].numpy()
            out += NET_WEIGHT * np.clip(logit, -NET_CLIP, NET_CLIP)
        return out

    def update(self, frame: np.ndarray, mask: np.ndarray) -> None:
        """Learn this frame's background: ``mask`` ``(h, w) bool`` is where the object is now."""
        self.bg = 0.5 * self.bg + 0.5 * background_histogram(colour_index(frame), mask)
        self.frames_seen += 1
        if self.net is None or self.update_every == 0 or self.frames_seen % self.update_every:
            return
        far = cv2.dilate(mask.astype(np.uint8), disk(UPDATE_FAR)) == 0
        with _one_thread():
            for _ in range(UPDATE_STEPS):
                self._train_step((frame, mask, far))

    def _batch_item(self, current) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One training crop: (input, target, valid); from an augmented seed frame when
        ``current`` is None, else from the current ``(frame, mask, far)``, where only ``far``
        pixels (certain background) count."""
        if current is None:
            img, mask = augmented_crop(*self.seed, self.rng)
            target, valid = torch.from_numpy(mask.astype(np.float32)), torch.ones(mask.shape)
            return net_input(img), target, valid
        img, mask, far = current
        y0, x0, ch, cw = crop_origin(mask, self.rng)
        crop = np.s_[y0 : y0 + ch, x0 : x0 + cw]
        target, valid = (torch.from_numpy(a[crop].astype(np.float32)) for a in (mask, far))
        return net_input(np.ascontiguousarray(img[crop])), target, valid

    def _train_step(self, current) -> None:
        """One Adam step on :data:`BATCH` crops: all from the seed frame, or half from ``current``."""
        items = [self._batch_item(current if current is not None and k % 2 else None) for k in range(BATCH)]
        x, y, valid = (torch.stack(t) for t in zip(*items, strict=True))
        x = x.contiguous(memory_format=torch.channels_last)
        loss = _balanced_loss(self.net(x), y, valid)
        self.optimiser.zero_grad()
        loss.backward()
        self.optimiser.step()


class _one_thread:
    """Run torch on one thread inside the block (a net this small gains nothing from more; on
    2 shared cores 2 threads were 4x slower per step), restoring the previous count after."""

    def __enter__(self) -> None:
        self.before = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc) -> None:
        torch.set_num_threads(self.before)
