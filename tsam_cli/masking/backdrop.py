"""A still camera's backdrop, to peel the removal margin where it only shows the background.

Removal masks are recall first (:mod:`tsam_cli.masking.track`): the tracked object grown by a
margin, plus parts regained near it. With a still camera that extra area costs the most: what
lies behind the object is only ever seen on the frames where the object has moved away, and a
hole larger than the object hides more of it (docs/benchmarks.md, "Where the 5 dB gap comes
from": the exact mask grown to the tracked area loses 9.9 dB on a still highway). A still
camera also makes the background easy to know: the per-pixel median of frames sampled over the
clip, where the masks leave each pixel uncovered (the classic background model of video
surveillance, e.g. Piccardi 2004, "Background subtraction techniques: a review"). A margin
pixel whose colour is that background's is background, and is taken out of the mask, peeling
inwards from the mask's outer edge only, so a part of the object that happens to share the
background's colour is never cut out of the mask's inside.

Frames are ``(h, w, 3) uint8`` RGB at the tracking size; masks ``(h, w) bool``, True = object.
"""

from __future__ import annotations

import numpy as np

from tsam_cli.flow.warp import bounding_box, grow

#: frames sampled, evenly over the clip, for the per-pixel median (24 x a 480x270 frame = 9 MB)
BACKDROP_SAMPLES = 24
#: a pixel within this many grey levels (largest channel) of the backdrop shows the background.
#: On the still composites of benchmarks/removal.py: 12 peels too little (highway 24.8 dB), 20
#: and 30 about the same (26.1 / 26.5 dB); 20 keeps a shadow that darkens a mid-grey road by a
#: sixth or more.
PEEL_TOL = 20
#: a frame is peeled when this share of the ring around its mask (:func:`agreement`) matches the
#: backdrop, and only when the median frame of the clip does too. On benchmarks/removal.py's
#: composites (median over frames / frames passing): still highway 0.96 / 95 % (it drifts 0.1
#: px a frame and its light changes, so a whole-frame test fails it: 0.89 of its pixels match),
#: still lawn 1.00 / 75 %, a pan over a valley 0.65 / 0 %, a camera following a car 0.79 / 17 %,
#: a rollercoaster 0.43 / 0 %.
STILL_AGREEMENT = 0.9
#: the ring :func:`agreement` reads: from COVER_GROW + 2 to this many px outside the mask
RING_OUT = 16
#: a ring of fewer trusted pixels than this is not judged (the frame is not peeled)
RING_MIN_PX = 50
#: a backdrop pixel is trusted when this many samples saw it uncovered (its median is then the
#: background's, not the object's, even when the object stood on it for a while)
MIN_SEEN = 3
#: samples see a pixel only farther than this (px) from their mask: the object's blur and shadow
COVER_GROW = 4


class Backdrop:
    """Collects what :meth:`peeled` needs while the tracker goes through the clip once.

    ``keep(i, frame, mask)`` once per frame, in any order, as soon as its mask is known. It keeps
    every ``every``-th frame whole (for the median) and, of every frame, the part under its mask
    (JPEG, quality 95: a few kB; the peel decides by 20 grey levels, far above JPEG's error).
    ``enabled=False`` (``--tight``: the outline is wanted as it is) keeps nothing and peels nothing.
    """

    def __init__(self, n_frames: int, enabled: bool = True) -> None:
        self.enabled = enabled
        self.every = max(1, -(-n_frames // BACKDROP_SAMPLES))  # ceil: at most BACKDROP_SAMPLES
        self.samples: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.parts: dict[int, tuple[int, int, bytes]] = {}

    def keep(self, i: int, frame: np.ndarray, mask: np.ndarray) -> None:
        import cv2

        if not self.enabled:
            return
        if i % self.every == 0:
            self.samples[i] = (frame, mask)
            if len(self.samples) > 2 * BACKDROP_SAMPLES:  # the clip is longer than announced
                self.every *= 2
                self.samples = {k: v for k, v in self.samples.items() if k % self.every == 0}
        box = bounding_box(mask, RING_OUT)  # with the ring that :func:`agreement` reads
        if box is not None:
            y0, y1, x0, x1 = box
            _, buf = cv2.imencode(".jpg", np.ascontiguousarray(frame[y0:y1, x0:x1, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 95])
            self.parts[i] = (y0, x0, buf.tobytes())

    def peeled(self, packed: list[np.ndarray], size: tuple[int, int]) -> list[np.ndarray]:
        """``packed`` masks (frame order, :func:`pack_mask` of ``(h, w) bool``, ``size`` = ``(w, h)``)
        with the still background peeled off their outer edge (:func:`peel`); ``packed`` itself
        when the camera is not still. One mask is unpacked at a time."""
        model = backdrop(self.samples) if self.enabled else None
        if model is None:
            return packed
        judged = [self._judge(i, unpack_mask(p, size), model) for i, p in enumerate(packed)]
        if float(np.median([a for a, _ in judged])) < STILL_AGREEMENT:
            return packed
        return [p if a >= STILL_AGREEMENT and p is not None else old
                for (a, p), old in zip(judged, packed, strict=True)]

    def _judge(self, i: int, mask: np.ndarray, model: tuple[np.ndarray, np.ndarray]) -> tuple[float, np.ndarray | None]:
        """``(agreement of frame i's ring, its mask peeled and packed)`` (0 and None when nothing was kept)."""
        import cv2

        if i not in self.parts or not mask.any():
            return 0.0, None
        y0, x0, buf = self.parts[i]
        part = cv2.imdecode(np.frombuffer(buf, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
        y1, x1 = y0 + part.shape[0], x0 + part.shape[1]
        m, median, trusted = mask[y0:y1, x0:x1], model[0][y0:y1, x0:x1], model[1][y0:y1, x0:x1]
        out = mask.copy()
        out[y0:y1, x0:x1] = peel(part, m, median, trusted)
        return agreement(part, m, median, trusted), pack_mask(out)


def pack_mask(mask: np.ndarray) -> np.ndarray:
    """``(h, w) bool`` -> 1 bit a pixel (``uint8``), as the tracker keeps every frame's mask."""
    return np.packbits(mask)


def unpack_mask(packed: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """:func:`pack_mask`'s inverse: ``(h, w) bool`` for ``size`` = ``(w, h)``."""
    w, h = size
    return np.unpackbits(packed, count=w * h).reshape(h, w).astype(bool)


def backdrop(samples: dict[int, tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray] | None:
    """The background if the camera is still: ``(median (h, w, 3) float32, trusted (h, w) bool)``,
    or None when fewer than :data:`MIN_SEEN` samples were kept or no pixel is trusted.

    ``samples``: frame index -> ``(frame, mask)``; each sample counts only where it is farther
    than :data:`COVER_GROW` px from its mask."""
    if len(samples) < MIN_SEEN:
        return None
    frames = np.stack([f for f, _ in samples.values()]).astype(np.float32)
    covered = np.stack([grow(m, COVER_GROW) for _, m in samples.values()])
    seen = (~covered).sum(axis=0)
    trusted = seen >= MIN_SEEN
    if not trusted.any():
        return None
    frames[covered] = np.inf  # sorted last, never read: a pixel's median is over its first `seen` values
    ranked = np.sort(frames[:, trusted], axis=0)  # (S, N, 3); np.nanmedian is ~20x slower here
    k = seen[trusted]
    cols = np.arange(len(k))
    full = np.zeros(frames.shape[1:], np.float32)
    full[trusted] = 0.5 * (ranked[(k - 1) // 2, cols] + ranked[k // 2, cols])
    return full, trusted


def agreement(frame: np.ndarray, mask: np.ndarray, median: np.ndarray, trusted: np.ndarray) -> float:
    """Share of the trusted pixels from ``COVER_GROW + 2`` to :data:`RING_OUT` px outside ``mask``
    whose colour is the backdrop's (every channel within :data:`PEEL_TOL`): how well the backdrop
    describes this frame where it is known to show the background. 0 for a ring under
    :data:`RING_MIN_PX` pixels. Arrays as in :func:`peel`."""
    ring = grow(mask, RING_OUT) & ~grow(mask, COVER_GROW + 2) & trusted
    if int(ring.sum()) < RING_MIN_PX:
        return 0.0
    return float((np.abs(frame[ring].astype(np.float32) - median[ring]).max(axis=-1) < PEEL_TOL).mean())


def peel(frame: np.ndarray, mask: np.ndarray, median: np.ndarray, trusted: np.ndarray) -> np.ndarray:
    """``mask`` less the pixels that show the background, reached from outside the mask.

    A pixel shows the background where the backdrop is trusted and every channel of ``frame`` is
    within :data:`PEEL_TOL` of ``median``; outside the mask every pixel counts as background.
    That region is opened with a 3x3 cross (a pixel of the object that matches by chance, or a
    one-pixel path between the object's parts, does not count), and the mask pixels joined to
    the outside through it (4-connected) are taken out: the mask is peeled from its edge
    inwards, never holed. Arrays as in :func:`backdrop`, cut to the same box.
    """
    import cv2

    if mask.all():
        return mask
    like = trusted & (np.abs(frame.astype(np.float32) - median).max(axis=-1) < PEEL_TOL)
    background = (like | ~mask).astype(np.uint8)  # what shows the background, outside the mask included
    background = cv2.morphologyEx(background, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3)))
    _, labels = cv2.connectedComponents(background, connectivity=4)
    outer = np.unique(labels[~mask])
    return mask & ~np.isin(labels, outer[outer > 0])
