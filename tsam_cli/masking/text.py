"""Burned-in text -> masks: PP-OCR's DB text detector on every (or every N-th) frame.

The detector is the PP-OCR detection network (DB, "Real-time Scene Text Detection with
Differentiable Binarization", Liao et al., AAAI 2020) as the ONNX file that ships inside
the ``rapidocr`` wheel (Apache-2.0, weights by PaddleOCR), run with onnxruntime: no
download at run time, so it works offline. Only the model file is taken from the wheel;
pre- and post-processing are here (``docs/masking.md`` gives the sources):

* input: the frame's region in BGR (PaddleOCR's training order), resized to a multiple of
  32 (:data:`DET_SCALE`), normalised ``(x / 255 - 0.5) / 0.5``;
* output: a text probability map at the input size; pixels above 0.3 form regions
  (DB's binarisation threshold), a region whose mean probability is at least
  ``--threshold`` (DB's box threshold, 0.5) is a text box, grown by DB's "unclip"
  offset ``D = A * r / L`` (area ``A``, perimeter ``L``) because DB is trained on text
  regions shrunk by such an offset (:data:`UNCLIP_RATIO`).

Boxes are then carried, tracked, bridged and padded by :mod:`.boxes`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from tsam_cli.errors import UsageError
from tsam_cli.masking.boxes import Boxes, boxes_mask, detect_sparse, no_boxes, region_rect, smooth_tracks
from tsam_cli.masking.options import TextMaskOptions, parse_region
from tsam_cli.masking.save import to_display

#: DB's binarisation threshold on the probability map (PaddleOCR's and rapidocr's default)
BIN_THRESHOLD = 0.3
#: hysteresis: a text region's box reaches over the connected pixels above this. PP-OCR's
#: probability fades over trailing punctuation ("wait..."), which 0.3 cuts off; 0.1 keeps
#: it (96 tuning frames: frames with < 99 % of the letters covered 2 -> 1, IoU 0.889 -> 0.883)
LOW_THRESHOLD = 0.1
#: DB's unclip ratio r in D = A * r / L. PaddleOCR's 1.6 rebuilds its training labels, which
#: keep a margin around the letters; tsam pads separately (``--pad``) and wants the letters'
#: own box. IoU with the ink box + 4 px on 96 subtitled frames of 3 clips that are not in the
#: benchmark (sam2_coffee_pour, sam2_bedroom_kids, aot_market_stall): r = 0.4 -> 0.823,
#: 0.6 -> 0.876, 0.8 -> 0.883; 1.6 -> about 0.75 (docs/masking.md)
UNCLIP_RATIO = 0.8
#: the detector input is the region scaled by this. 1 (native size) finds 240p subtitles
#: (letters 9-16 px) as well as 1.5x or 2x does (box IoU 0.767 / 0.760 / 0.765 on 20 frames, unclip 1.6)
#: at a quarter of 2x's time (0.06 vs 0.28 s for a 432x96 band on 2 cores)
DET_SCALE = 1.0
#: the detector's input sides are multiples of 32 (DB's five stride-2 stages)
STRIDE = 32
#: the ONNX files rapidocr ships, newest first; any ``*det*.onnx`` in the wheel is a fallback
MODEL_NAMES = ("PP-OCRv6_det_small.onnx", "ch_PP-OCRv4_det_infer.onnx")
EXTRA_HINT = 'install the text extra: pip install -e ".[text]" in the tsam clone (rapidocr + onnxruntime)'


def find_model() -> Path:
    """Path of the DB detection model inside the installed ``rapidocr`` wheel (not imported).

    Raises :class:`UsageError` naming the extra when rapidocr or onnxruntime is missing."""
    if importlib.util.find_spec("onnxruntime") is None:
        raise UsageError(f"tsam mask text needs onnxruntime: {EXTRA_HINT}")
    spec = importlib.util.find_spec("rapidocr")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError(f"tsam mask text needs the PP-OCR model of the rapidocr package: {EXTRA_HINT}")
    models = Path(list(spec.submodule_search_locations)[0]) / "models"
    for name in MODEL_NAMES:
        if (models / name).is_file():
            return models / name
    found = sorted(models.glob("*det*.onnx"))
    if not found:
        raise UsageError(f"no text detection model in {models}: reinstall it - {EXTRA_HINT}")
    return found[0]


class TextDetector:
    """``(h, w, 3) uint8 RGB`` crop -> ``(K, 4) float32`` boxes ``x0, y0, x1, y1`` in crop pixels.

    Args:
        box_threshold: mean text probability a region needs (0-1).
        scale: the crop is resized by this before detection (see :data:`DET_SCALE`).
    """

    def __init__(self, box_threshold: float = 0.5, scale: float = DET_SCALE, model: Path | None = None) -> None:
        path = model or find_model()  # first: a missing extra is a one-line error, not an ImportError
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.log_severity_level = 3  # errors only: its warnings are not the user's business
        self.session = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.box_threshold, self.scale = box_threshold, scale

    def probability(self, rgb: np.ndarray) -> np.ndarray:
        """Text probability ``(h, w) float32`` in [0, 1] at the crop's own size."""
        import cv2

        h, w = rgb.shape[:2]
        sw, sh = (max(STRIDE, int(round(s * self.scale / STRIDE)) * STRIDE) for s in (w, h))
        x = cv2.resize(rgb[..., ::-1], (sw, sh), interpolation=cv2.INTER_LINEAR if self.scale >= 1 else cv2.INTER_AREA)
        x = (x.astype(np.float32) / 255.0 - 0.5) / 0.5
        prob = self.session.run(None, {self.input: x.transpose(2, 0, 1)[None]})[0][0, 0]
        return cv2.resize(prob, (w, h), interpolation=cv2.INTER_AREA)

    def __call__(self, rgb: np.ndarray) -> Boxes:
        if rgb.shape[0] < 2 or rgb.shape[1] < 2:
            return no_boxes()
        return prob_to_boxes(self.probability(rgb), self.box_threshold)


def prob_to_boxes(prob: np.ndarray, box_threshold: float, low: float | None = None) -> Boxes:
    """DB post-processing on an ``(h, w)`` probability map -> boxes (axis-aligned, unclipped).

    Regions of ``prob > BIN_THRESHOLD`` (8-connected) whose mean probability is at least
    ``box_threshold`` are text. Each one's box is the bounding box of the region of
    ``prob > low`` that holds it (hysteresis, as Canny's edges: the faint tail of a line,
    such as trailing punctuation, joins the line's box), grown by ``D = A * UNCLIP_RATIO / L``
    on each side (``A``, ``L``: the box's area and perimeter), clipped to the map; boxes
    under 3 px are noise."""
    import cv2

    low = LOW_THRESHOLD if low is None else low
    h, w = prob.shape
    n, labels, stats, _ = cv2.connectedComponentsWithStats((prob > BIN_THRESHOLD).astype(np.uint8), connectivity=8)
    if n <= 1:
        return no_boxes()
    means = np.bincount(labels.ravel(), weights=prob.ravel(), minlength=n) / np.maximum(stats[:, cv2.CC_STAT_AREA], 1)
    _, low_labels, low_stats, _ = cv2.connectedComponentsWithStats((prob > low).astype(np.uint8), connectivity=8)
    out, seen = [], set()
    for k in range(1, n):
        if means[k] < box_threshold or min(stats[k, 2:4]) < 2:
            continue
        ys, xs = np.nonzero(labels == k)
        grown = int(low_labels[ys[0], xs[0]])
        if grown in seen:  # two text regions joined by their faint tails: one box
            continue
        seen.add(grown)
        x, y, bw, bh = low_stats[grown, :4]
        d = bw * bh * UNCLIP_RATIO / (2.0 * (bw + bh))
        box = [max(0.0, x - d), max(0.0, y - d), min(float(w), x + bw + d), min(float(h), y + bh + d)]
        if box[2] - box[0] > 3 and box[3] - box[1] > 3:
            out.append(box)
    return np.array(out, np.float32).reshape(-1, 4)


class TextMasks:
    """The text masks of one video, ``(mask, pts)`` per frame when iterated (coded orientation).

    Built by :func:`text_masks`: detection (pass 1) is done on construction and keeps only
    boxes and timestamps; iterating draws each frame's mask from its boxes (no decoding).
    ``summary``: one line for the user."""

    def __init__(self, info, boxes: list[Boxes], pts: list, pad: int) -> None:
        self.info, self.boxes, self.pts, self.pad = info, boxes, pts, pad
        shown = sum(1 for b in boxes if len(b))
        self.summary = f"text in {shown} of {len(boxes)} frames"

    def __iter__(self) -> Iterator[tuple[np.ndarray, int | None]]:
        rot = self.info.rotation
        dw, dh = (self.info.height, self.info.width) if rot in (90, 270) else (self.info.width, self.info.height)
        for boxes, pts in zip(self.boxes, self.pts, strict=True):
            m = boxes_mask(boxes, dw, dh, self.pad)
            yield (np.ascontiguousarray(np.rot90(m, k=rot // 90)) if rot else m), pts


def _crops(info, rect, pts: list, rep) -> Iterator[np.ndarray]:
    """Display-oriented crops of ``rect`` from every frame; timestamps appended to ``pts``."""
    from tsam_cli.media import complete_frames

    x, y, w, h = rect
    for frame in complete_frames(info):  # a truncated input stops here, not silently
        pts.append(frame.pts)
        yield np.ascontiguousarray(to_display(frame.rgb, info.rotation)[y : y + h, x : x + w])
        rep.advance("find text")


def text_masks(info, opts: TextMaskOptions, reporter) -> TextMasks:
    """Detect text in every frame of ``info`` (see the module and :mod:`.boxes`); returns the
    masks to stream. Raises :class:`UsageError` when the ``text`` extra is missing."""
    opts.validate()
    detector = TextDetector(opts.threshold)
    rot = info.rotation
    dw, dh = (info.height, info.width) if rot in (90, 270) else (info.width, info.height)
    rect = region_rect(parse_region(opts.region), dw, dh)
    pts: list = []
    reporter.start("find text", info.n_frames)
    raw = list(detect_sparse(_crops(info, rect, pts, reporter), detector, opts.every))
    offset = np.array([rect[0], rect[1], rect[0], rect[1]], np.float32)
    boxes = [b + offset for b in smooth_tracks(raw, opts.min_frames, opts.max_gap)]
    return TextMasks(info, boxes, pts, opts.pad)
