"""Exemplar-based hole filling: multi-scale PatchMatch with Wexler voting, mixed with Telea.

``PatchFiller`` is a :class:`tsam_cli.core.propagate.HoleFiller`: ``(image (H, W, 3) uint8 RGB,
hole (H, W) bool, True = hole) -> (H, W, 3) uint8`` with every known pixel unchanged. It invents
what no frame shows by copying patches of the same frame (sharp texture) instead of diffusing
the border inwards (Telea: smooth, blurred).

Method (references, constants and measurements in ``docs/texture-fill.md``):

1. Work on a crop: the hole's bounding box grown by a margin (sources come from there only).
2. Gaussian pyramid of the crop (``cv2.pyrDown``, 3 levels); at the coarsest level the hole
   starts as the Telea fill and every target patch gets a random source.
3. At each level, a few EM rounds (Wexler, Shechtman & Irani, PAMI 2007):
   a. nearest-neighbour field of every patch that overlaps the hole to a patch made of known
      pixels only, by PatchMatch (Barnes et al., SIGGRAPH 2009): propagation from the four
      neighbours (at 4, 2 and 1 px, as all targets move at once) and random search at halving
      radii, each step vectorised over all target patches at once;
   b. voting: each hole pixel becomes the weighted mean of the pixels that the patches
      covering it copy; weight = similarity x border confidence (Wexler et al. 2007). At the
      finest level the pixel takes the copy of the single best-weighted patch instead
      (no averaging blur; Newson et al. 2014 reconstruct their last level this way).
   Patches are compared on RGB plus two texture features (mean absolute x/y derivative,
   Newson et al., SIAM J. Imaging Sci. 2014) that keep the match away from flat sources.
4. The field is upsampled to the next level (source x2 + parity) and voted there to start it.
5. The result is mixed with Telea: ``(1 - m) * telea + m * patch + d * highpass(patch)``
   (low frequencies half from Telea, which errs less there; detail from the patches).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tsam_cli.core.rows import RowThreads
from tsam_cli.flow.warp import bounding_box

# One target set at one pyramid level: flat arrays over the target patches (centres in crop coords).
_Field = tuple[np.ndarray, np.ndarray]  # (sy, sx) source centre of each target patch


@dataclass(frozen=True)
class PatchSettings:
    """Settings of :class:`PatchFiller` (defaults measured on 12 clips, ``docs/texture-fill.md``)."""

    patch: int = 7  # patch side, px: Barnes et al. 2009 use 7x7 patches
    levels: int = 3  # pyramid levels, each half the size of the next: coarse-to-fine as in Wexler
    margin: int = 32  # px around the hole's bounding box that sources come from (measured, docs)
    em_iters: tuple[int, ...] = (3, 3, 4)  # EM rounds per level, finest first (measured, docs)
    pm_iters: int = 2  # PatchMatch iterations per EM round: the field arrives nearly converged
    #                    from the coarser level (Barnes et al. need 4-5 from a random start)
    jumps: tuple[int, ...] = (4, 2, 1)  # px: propagation steps, jump flooding (Rong & Tan 2006)
    gamma: float = 1.3  # confidence gamma ** -distance to the border: Wexler et al. 2007
    sigma_pct: float = 75.0  # similarity scale = this percentile of patch distances: Wexler et al. 2007
    texture: float = 2.0  # weight of the texture features (Newson et al. 2014; value measured, docs)
    finest_vote: str = "best"  # at the finest level: "best" = one window per pixel (sharp, Newson
    #                            et al. 2014's final reconstruction), "mean" = Wexler's average
    mix: float = 0.5  # m: weight of the patch fill against Telea (measured, docs)
    detail: float = 0.5  # d: extra weight of the patch fill's high-pass (measured, docs)
    detail_sigma: float = 1.5  # px: Gaussian scale of that high-pass (measured, docs)
    telea_radius: int = 5  # px: same radius as TeleaFiller
    seed: int = 0  # random search is seeded: same input, same output

    def __post_init__(self) -> None:
        if self.patch < 3 or self.patch % 2 == 0:
            raise ValueError(f"patch must be odd and >= 3, got {self.patch}")
        if self.levels < 1 or not self.em_iters or min(self.em_iters) < 1 or self.pm_iters < 1:
            raise ValueError("levels, em_iters and pm_iters must be >= 1")
        if not 0.0 <= self.mix <= 1.0 or self.detail < 0 or self.detail_sigma <= 0:
            raise ValueError("mix must lie in [0, 1], detail >= 0 and detail_sigma > 0")
        if self.finest_vote not in ("best", "mean"):
            raise ValueError(f"finest_vote must be 'best' or 'mean', got {self.finest_vote!r}")


class PatchFiller:
    """Sharp exemplar fill of never-seen regions, a drop-in for ``TeleaFiller``.

    ``__call__(image (H, W, 3) uint8 RGB, hole (H, W) bool, True = hole) -> (H, W, 3) uint8``;
    pixels outside ``hole`` are returned unchanged. When the crop holds no patch made of known
    pixels only (no known pixel, or too few around the hole), the result is exactly
    ``TeleaFiller``'s (with no known pixel at all OpenCV returns the image as it was).
    Same input, same output (seeded random search).
    """

    name = "patch"

    def __init__(self, settings: PatchSettings | None = None, threads: int = 1) -> None:
        self.settings = settings or PatchSettings()
        self.threads = threads  # the patch rows are split over this many threads: same result for any

    def __call__(self, image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        import cv2

        s = self.settings
        hole = np.asarray(hole, dtype=bool)
        if not hole.any():
            return image.copy()
        telea = cv2.inpaint(image, hole.astype(np.uint8), s.telea_radius, cv2.INPAINT_TELEA)
        out = telea.copy()
        y0, y1, x0, x1 = bounding_box(hole, s.margin + s.patch)
        crop, chole, ctelea = image[y0:y1, x0:x1], hole[y0:y1, x0:x1], telea[y0:y1, x0:x1]
        with RowThreads(self.threads) as rows:
            patch = exemplar_fill(crop, chole, ctelea, s, rows)
        if patch is not None:
            out[y0:y1, x0:x1] = mix_with_telea(patch, ctelea, chole, s)
        out[~hole] = image[~hole]
        return out


def mix_with_telea(patch: np.ndarray, telea: np.ndarray, hole: np.ndarray, s: PatchSettings) -> np.ndarray:
    """``(1 - m) telea + m patch + d (patch - blur(patch))`` in the hole, as (h, w, 3) uint8.

    ``patch`` (h, w, 3) float32 0-255, ``telea`` (h, w, 3) uint8, ``hole`` (h, w) bool.
    """
    import cv2

    low = cv2.GaussianBlur(patch, (0, 0), s.detail_sigma)
    mixed = (1 - s.mix) * telea.astype(np.float32) + s.mix * patch + s.detail * (patch - low)
    out = telea.copy()
    out[hole] = np.clip(np.rint(mixed[hole]), 0, 255).astype(np.uint8)
    return out


# --------------------------------------------------------------------------- pyramid


def exemplar_fill(crop: np.ndarray, hole: np.ndarray, telea: np.ndarray, s: PatchSettings,
                  rows: RowThreads | None = None) -> np.ndarray | None:
    """Coarse-to-fine PatchMatch + voting on a crop; ``(h, w, 3) float32`` 0-255, or None when no
    patch of known pixels exists at the finest level. ``hole`` (h, w) bool, True = hole.
    ``rows``: threads the per-patch work is split over (one thread when None)."""
    rng = np.random.default_rng(s.seed)
    images, holes = pyramid(crop.astype(np.float32), hole, levels_for(hole.shape, s))
    if not usable_sources(holes[0], s.patch).any():
        return None
    teleas = pyramid(telea.astype(np.float32), hole, len(images))[0]
    field, img, dense = None, None, None
    for lv in range(len(images) - 1, -1, -1):
        start = with_texture(np.where(holes[lv][..., None], teleas[lv], images[lv]), holes[lv], s)
        level = Level(start, holes[lv], s.patch, s.gamma, rows)
        if not level.sources.any():  # the coarse hole swallowed every patch: start finer
            continue
        if dense is None:  # coarsest usable level: Telea in the hole, random field
            img, field = start, level.random_field(rng)
        else:
            field = level.upsampled_field(dense, rng)
            start = level.with_hole(upsample(img, level.shape))
            img = level.vote(field, np.ones(len(field[0]), np.float32), start)
        img, field = level.em(img, field, s.em_iters[min(lv, len(s.em_iters) - 1)], s, rng, finest=lv == 0)
        dense = level.dense(field)
    return img[..., :3]


def with_texture(img: np.ndarray, hole: np.ndarray, s: PatchSettings) -> np.ndarray:
    """``(h, w, 5) float32``: RGB + ``s.texture`` x (|d/dx|, |d/dy|) of grey averaged over a patch
    (the texture features of Newson et al. 2014: they tell a textured patch from a flat one of
    the same mean colour). In the hole they start at their mean over the known pixels next to
    it (the Telea fill there is flat, and would pull the matches to flat sources)."""
    import cv2

    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    feats = [cv2.blur(np.abs(cv2.Sobel(grey, cv2.CV_32F, dx, 1 - dx)), (s.patch, s.patch)) for dx in (1, 0)]
    feat = np.stack(feats, axis=-1) * s.texture
    ring = cv2.dilate(hole.astype(np.uint8), np.ones((2 * s.patch + 1,) * 2, np.uint8)) > 0
    ring &= ~hole
    if ring.any():
        feat[hole] = feat[ring].mean(axis=0)
    return np.concatenate([img, feat], axis=-1)


def cv2_pyrdown(img: np.ndarray) -> np.ndarray:
    """Half size with OpenCV's 5x5 Gaussian (``cv2.pyrDown``); ``(h, w[, c])`` -> ``((h+1)//2, (w+1)//2[, c])``."""
    import cv2

    return cv2.pyrDown(img)


def upsample(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of ``img`` (h, w, C) float32 to ``shape`` (rows, cols)."""
    import cv2

    return cv2.resize(img, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)


def levels_for(shape: tuple[int, int], s: PatchSettings) -> int:
    """As many of ``s.levels`` as keep the coarsest crop at least 3 patches wide in both directions."""
    n = 1
    while n < s.levels and min(shape) / 2 ** n >= 3 * s.patch:
        n += 1
    return n


def pyramid(img: np.ndarray, hole: np.ndarray, levels: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Images (float32) and holes, finest first; a coarse pixel is a hole when any hole pixel
    enters its pyrDown filter, so coarse known pixels hold known colours only."""
    images, holes = [img], [hole]
    for _ in range(levels - 1):
        images.append(cv2_pyrdown(images[-1]))
        holes.append(cv2_pyrdown(holes[-1].astype(np.float32)) > 0)
    return images, holes


def usable_sources(hole: np.ndarray, patch: int) -> np.ndarray:
    """``(h, w) bool``: centres whose whole ``patch`` x ``patch`` window lies in the crop and is known."""
    import cv2

    r = patch // 2
    known = (~hole).astype(np.uint8)
    ok = cv2.erode(known, np.ones((patch, patch), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
    ok[:r], ok[-r:], ok[:, :r], ok[:, -r:] = False, False, False, False
    return ok


# --------------------------------------------------------------------------- one level


class Level:
    """One pyramid level: the crop image's known pixels, its hole, the target and source patches.

    Targets: every patch centre whose window overlaps the hole (the hole dilated by the patch
    radius). Sources: centres whose window lies fully on known pixels inside the crop.
    ``image`` (h, w, 5) float32: RGB 0-255 + the two texture features (``with_texture``), the
    hole already holding a first estimate; ``hole`` (h, w) bool, True = hole. ``rows`` splits the
    per-patch gathers and distances over threads (:class:`RowThreads`; the same numbers).
    """

    def __init__(self, image: np.ndarray, hole: np.ndarray, patch: int, gamma: float,
                 rows: RowThreads | None = None) -> None:
        import cv2

        self.image, self.hole, self.patch, self.r = image, hole, patch, patch // 2
        self.rows = rows or RowThreads(1)
        self.shape = hole.shape
        self.sources = usable_sources(hole, patch)
        self.src_y, self.src_x = np.nonzero(self.sources)
        target = cv2.dilate(hole.astype(np.uint8), np.ones((patch, patch), np.uint8)) > 0
        self.ty, self.tx = np.nonzero(target)
        self.tmap = np.full(self.shape, -1, np.int64)
        self.tmap[self.ty, self.tx] = np.arange(len(self.ty))
        dy, dx = np.mgrid[0:patch, 0:patch]
        self.dy, self.dx = dy.ravel(), dx.ravel()
        self.confidence = border_confidence(hole, self.ty, self.tx, gamma)
        self.src_features = self.features_at(self.pad(image), self.src_y, self.src_x)
        self.src_index = np.full(self.shape, -1, np.int64)
        self.src_index[self.src_y, self.src_x] = np.arange(len(self.src_y))

    def pad(self, img: np.ndarray) -> np.ndarray:
        """``img`` (h, w, C) padded by the patch radius (reflected) so every window exists."""
        import cv2

        return cv2.copyMakeBorder(img, self.r, self.r, self.r, self.r, cv2.BORDER_REFLECT)

    def features_at(self, padded: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        """``(N, patch * patch * 3 + 2 * patch)`` float32 for the windows centred on ``(y, x)``
        (crop coords): the window's RGB, then the centre's texture features repeated ``patch``
        times (the features are already window means, so the centre stands for the window at
        the weight of a full window's channel, for a third of the cost)."""

        def part(a: int, b: int) -> np.ndarray:
            ya, xa = y[a:b], x[a:b]
            rgb = padded[ya[:, None] + self.dy, xa[:, None] + self.dx, :3].reshape(b - a, -1)
            tex = padded[ya + self.r, xa + self.r, 3:]
            return np.concatenate([rgb, np.tile(tex, self.patch)], axis=1)

        return self.rows(part, len(y))

    def with_hole(self, fill: np.ndarray) -> np.ndarray:
        """The level's image with ``fill`` (h, w, 5) float32 in the hole."""
        img = self.image.copy()
        img[self.hole] = fill[self.hole]
        return img

    def random_field(self, rng: np.random.Generator) -> _Field:
        """A random source centre for every target."""
        pick = rng.integers(0, len(self.src_y), len(self.ty))
        return self.src_y[pick], self.src_x[pick]

    def dense(self, field: _Field) -> np.ndarray:
        """``(h, w, 2) int64``: the field as an image of source centres, -1 off the targets."""
        out = np.full((*self.shape, 2), -1, np.int64)
        out[self.ty, self.tx, 0], out[self.ty, self.tx, 1] = field
        return out

    def upsampled_field(self, coarse: np.ndarray, rng: np.random.Generator) -> _Field:
        """A coarser level's dense field (``dense``) at this level: source doubled plus the target's
        parity (the coarse-to-fine start of Barnes et al. 2009); random where that is no usable source."""
        hc, wc = coarse.shape[:2]
        parent = coarse[np.minimum(self.ty // 2, hc - 1), np.minimum(self.tx // 2, wc - 1)]
        sy, sx = 2 * parent[:, 0] + self.ty % 2, 2 * parent[:, 1] + self.tx % 2
        ok = (parent[:, 0] >= 0) & self.usable(sy, sx)
        ry, rx = self.random_field(rng)
        return np.where(ok, sy, ry), np.where(ok, sx, rx)

    def usable(self, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        """``(N,) bool``: ``(y, x)`` inside the crop and a usable source centre."""
        h, w = self.shape
        inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
        out = np.zeros(len(y), bool)
        out[inside] = self.sources[y[inside], x[inside]]
        return out

    def distance(self, targets: np.ndarray, idx: np.ndarray, sy: np.ndarray, sx: np.ndarray) -> np.ndarray:
        """Mean squared difference (per pixel and channel) between target windows
        ``targets[idx]`` (N, P) and the source windows centred on ``(sy, sx)``."""
        src = self.src_index[sy, sx]

        def part(a: int, b: int) -> np.ndarray:
            diff = targets[idx[a:b]] - self.src_features[src[a:b]]
            return np.einsum("ij,ij->i", diff, diff) / diff.shape[1]

        return self.rows(part, len(idx))

    def try_candidates(self, targets, field, best, sy, sx, idx=None) -> None:
        """Replace (in place) the field entries ``idx`` (default: all) by ``(sy, sx)`` where that is a
        usable source with a smaller distance. ``best`` (N,) float32 holds the current distances."""
        idx = np.arange(len(best)) if idx is None else idx
        ok = self.usable(sy, sx)
        idx, sy, sx = idx[ok], sy[ok], sx[ok]
        if len(idx) == 0:
            return
        d = self.distance(targets, idx, sy, sx)
        better = d < best[idx]
        idx = idx[better]
        field[0][idx], field[1][idx], best[idx] = sy[better], sx[better], d[better]

    def propagate(self, targets, field, best, step: int) -> None:
        """PatchMatch propagation (Barnes et al. 2009, Sec. 3.2), all targets at once: each target tries
        the source of its neighbour ``step`` px away (left, right, up, down) shifted back by ``step``."""
        h, w = self.shape
        for oy, ox in ((0, step), (0, -step), (step, 0), (-step, 0)):
            ny, nx = self.ty - oy, self.tx - ox
            inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
            nb = np.full(len(self.ty), -1, np.int64)
            nb[inside] = self.tmap[ny[inside], nx[inside]]
            idx = np.nonzero(nb >= 0)[0]
            self.try_candidates(targets, field, best, field[0][nb[idx]] + oy, field[1][nb[idx]] + ox, idx)

    def random_search(self, targets, field, best, rng: np.random.Generator) -> None:
        """PatchMatch random search (Barnes et al. 2009, Sec. 3.2): a uniform candidate in a window of
        radius ``w * alpha ** i`` around the current source, alpha = 1/2 (the paper's), w = the crop size,
        until the radius is below 1 px."""
        radius = max(self.shape)
        n = len(self.ty)
        while radius >= 1:
            oy, ox = rng.integers(-radius, radius + 1, (2, n))
            self.try_candidates(targets, field, best, field[0] + oy, field[1] + ox)
            radius //= 2

    def match(self, img: np.ndarray, field: _Field, iters: int, rng: np.random.Generator,
              jumps: tuple[int, ...] = (4, 2, 1)):
        """``iters`` PatchMatch iterations for the current image; returns ``(field, distances)``."""
        targets = self.features_at(self.pad(img), self.ty, self.tx)
        field = (field[0].copy(), field[1].copy())
        best = self.distance(targets, np.arange(len(self.ty)), *field)
        for _ in range(iters):
            for step in jumps:  # jump-flood steps: one parallel sweep reaches their sum in px
                self.propagate(targets, field, best, step)
            self.random_search(targets, field, best, rng)
        return field, best

    def weights(self, best: np.ndarray, s) -> np.ndarray:
        """Vote weight of each target patch: similarity exp(-d / (2 sigma^2)), sigma^2 the
        ``s.sigma_pct`` percentile of the distances, times the border confidence (Wexler et al. 2007)."""
        sigma2 = max(float(np.percentile(best, s.sigma_pct)), 1e-6)
        return np.exp(-best / (2 * sigma2)).astype(np.float32) * self.confidence

    def vote(self, field: _Field, weight: np.ndarray, img: np.ndarray) -> np.ndarray:
        """Each hole pixel = weighted mean of what the target windows covering it copy (Wexler's
        voting); ``img`` (h, w, 5) float32 is returned with its hole replaced."""
        r, (h, w) = self.r, self.shape
        padded = self.pad(self.image)
        acc = np.zeros((h + 2 * r, w + 2 * r, padded.shape[2]), np.float32)
        wsum = np.zeros((h + 2 * r, w + 2 * r), np.float32)
        wcol = weight[:, None]

        def add(a: int, b: int) -> None:  # one vectorised scatter per window offset
            for dy, dx, k in self.offsets(a, b):
                ys, xs = self.ty[k] + dy, self.tx[k] + dx
                acc[ys, xs] += wcol[k] * padded[field[0][k] + dy, field[1][k] + dx]
                wsum[ys, xs] += weight[k]

        self.rows.each(add, h + 2 * r, self.patch)
        acc, wsum = acc[r:r + h, r:r + w], wsum[r:r + h, r:r + w]
        out = img.copy()
        sel = self.hole & (wsum > 0)
        out[sel] = acc[sel] / wsum[sel][:, None]
        return out

    def vote_best(self, field: _Field, weight: np.ndarray, img: np.ndarray) -> np.ndarray:
        """Each hole pixel = what the covering window of the largest weight copies (no averaging,
        so no blur; Newson et al. 2014 reconstruct the final level the same way)."""
        r, (h, w) = self.r, self.shape
        padded = self.pad(self.image)
        val = np.zeros((h + 2 * r, w + 2 * r, padded.shape[2]), np.float32)
        top = np.full((h + 2 * r, w + 2 * r), -1.0, np.float32)

        def pick(a: int, b: int) -> None:
            for dy, dx, k in self.offsets(a, b):
                ys, xs, wk = self.ty[k] + dy, self.tx[k] + dx, weight[k]
                win = wk > top[ys, xs]
                val[ys[win], xs[win]] = padded[field[0][k][win] + dy, field[1][k][win] + dx]
                top[ys[win], xs[win]] = wk[win]

        self.rows.each(pick, h + 2 * r, self.patch)
        out = img.copy()
        out[self.hole] = val[r:r + h, r:r + w][self.hole]
        return out

    def offsets(self, a: int, b: int):
        """``(dy, dx, targets)`` for every window offset in order, ``targets`` the slice of target
        patches whose pixel at that offset lies on padded rows ``a..b-1`` (``ty`` is sorted, as
        ``np.nonzero`` returns it). Each pixel thus sees the offsets in the same order whatever
        the row ranges, so votes split over threads add up exactly as in one pass."""
        for dy, dx in zip(self.dy, self.dx, strict=True):
            lo, hi = np.searchsorted(self.ty, (a - dy, b - dy))
            yield dy, dx, slice(int(lo), int(hi))

    def em(self, img: np.ndarray, field: _Field, iters: int, s, rng: np.random.Generator, finest: bool):
        """``iters`` rounds of (match, vote); returns the final ``(image, field)``."""
        vote = self.vote_best if finest and s.finest_vote == "best" else self.vote
        for _ in range(iters):
            field, best = self.match(img, field, s.pm_iters, rng, s.jumps)
            img = vote(field, self.weights(best, s), img)
        return img, field


def border_confidence(hole: np.ndarray, ty: np.ndarray, tx: np.ndarray, gamma: float) -> np.ndarray:
    """``(N,) float32``: ``gamma ** -dist`` at each target centre, dist = distance (px) to the nearest
    known pixel (0 outside the hole); Wexler et al. 2007, gamma = 1.3."""
    import cv2

    dist = cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, 3)
    return (gamma ** -dist[ty, tx]).astype(np.float32)
