"""Mask values: EXIF orientation (shared with frames), 16-bit/float thresholds, alpha masks,
unreadable files (typed error, nothing on stderr)."""

import os
import struct
import threading
import zlib

import cv2
import numpy as np
import pytest

from tsam_cli.errors import InputError, MaskError, UsageError
from tsam_cli.media.images import ImageReadError, read_image
from tsam_cli.media.masks import MaskSpec, MaskStream, effective_threshold, mask_values, threshold_range
from tsam_cli.ui import NullReporter

H, W, T = 40, 64, 3


def stream(spec, n=T, h=H, w=W):
    rep = NullReporter()
    return list(MaskStream(spec, w, h, n, rep)), rep


def exif_orientation(o: int, big_endian: bool = False) -> bytes:
    """A TIFF-structured EXIF block whose IFD0 holds only Orientation = ``o``."""
    e = ">" if big_endian else "<"
    head = b"MM\x00*" if big_endian else b"II*\x00"
    return head + struct.pack(e + "IH", 8, 1) + struct.pack(e + "HHIHH", 0x0112, 3, 1, o, 0) + struct.pack(e + "I", 0)


def jpeg_with_orientation(path, bgr: np.ndarray, o: int, big_endian: bool = False):
    """Encode ``bgr`` as JPEG and insert an ``APP1 Exif`` segment after ``APP0`` (as cameras do)."""
    data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 100])[1].tobytes()
    payload = b"Exif\x00\x00" + exif_orientation(o, big_endian)
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    at = 4 + struct.unpack(">H", data[4:6])[0] if data[2:4] == b"\xff\xe0" else 2
    path.write_bytes(data[:at] + app1 + data[at:])
    return path


def png_with_orientation(path, img: np.ndarray, o: int):
    """Encode ``img`` (any PNG depth/channels, BGR order) with an ``eXIf`` chunk after IHDR."""
    data = cv2.imencode(".png", img)[1].tobytes()
    body = exif_orientation(o)
    chunk = struct.pack(">I", len(body)) + b"eXIf" + body + struct.pack(">I", zlib.crc32(b"eXIf" + body))
    at = 8 + 8 + 13 + 4  # signature, IHDR header, IHDR data, CRC
    path.write_bytes(data[:at] + chunk + data[at:])
    return path


def viewer(img: np.ndarray, o: int) -> np.ndarray:
    """What a viewer shows for stored pixels ``img`` with EXIF orientation ``o`` (numpy only)."""
    ops = {1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
           5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1), 7: lambda a: np.rot90(a, -1)[::-1],
           8: lambda a: np.rot90(a, 1)}
    return ops[o](img)


# -- EXIF orientation: frames and masks agree -------------------------------------------
def test_jpeg_orientation_6_mask_lands_on_the_oriented_frame(tmp_path):
    frame = np.full((H, W, 3), 40, np.uint8)
    frame[0:10, 0:20] = 230  # stored top-left; a viewer shows it top-right after rotating 90 cw
    mask = np.zeros((H, W, 3), np.uint8)
    mask[0:10, 0:20] = 255
    f = jpeg_with_orientation(tmp_path / "frame.jpg", frame, 6)
    m = jpeg_with_orientation(tmp_path / "mask.jpg", mask, 6)
    rgb = read_image(f)
    assert rgb.shape == (W, H, 3)  # portrait, as displayed
    ref = cv2.cvtColor(cv2.imread(str(f), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert np.array_equal(rgb, ref)  # same as the reader's current cv2.imread(IMREAD_COLOR)
    got, rep = stream(MaskSpec(m, dilate=0), h=W, w=H)
    assert not rep.warnings  # a mask read unrotated would be 64x40 and get resized
    expect = np.zeros((W, H), bool)
    expect[0:20, 30:40] = True
    assert np.array_equal(got[0], expect)
    assert np.array_equal(got[0], rgb.max(axis=2) > 127)  # the hole is the bright block


@pytest.mark.parametrize("big_endian", [False, True])
@pytest.mark.parametrize("o", range(1, 9))
def test_read_image_matches_opencv_orientation_in_every_mode(tmp_path, o, big_endian):
    rng = np.random.default_rng(o)
    bgr = cv2.GaussianBlur((rng.random((20, 36, 3)) * 255).astype(np.uint8), (5, 5), 0)
    p = jpeg_with_orientation(tmp_path / "x.jpg", bgr, o, big_endian)
    ref = cv2.cvtColor(cv2.imread(str(p), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    for kw in ({}, {"keep_depth": True}, {"keep_alpha": True}, {"keep_depth": True, "keep_alpha": True}):
        assert np.array_equal(read_image(p, **kw), ref), kw


@pytest.mark.parametrize("o", range(1, 9))
def test_png_exif_orientation_with_16_bit_and_alpha(tmp_path, o):
    bgra = (np.random.default_rng(o).random((6, 10, 4)) * 65535).astype(np.uint16)
    p = png_with_orientation(tmp_path / "x.png", bgra, o)
    got = read_image(p, keep_depth=True, keep_alpha=True)
    expect = viewer(bgra[..., [2, 1, 0, 3]], o)
    assert got.dtype == np.uint16 and got.shape == expect.shape == ((6, 10, 4) if o < 5 else (10, 6, 4))
    assert np.array_equal(got, expect)
    assert np.array_equal(read_image(p), (expect[..., :3] >> 8).astype(np.uint8))


def test_orientation_6_is_a_clockwise_quarter_turn(tmp_path):
    bgr = np.zeros((6, 10, 3), np.uint8)
    bgr[0, 0] = (1, 2, 3)  # stored top-left -> displayed top-right
    got = read_image(png_with_orientation(tmp_path / "x.png", bgr, 6))
    assert got.shape == (10, 6, 3) and tuple(got[0, 5]) == (3, 2, 1) and got.sum() == 6


def test_read_image_channels_and_typed_errors(tmp_path):
    bgr = np.zeros((4, 5, 3), np.uint8)
    bgr[..., 2] = 200  # red in OpenCV's BGR
    cv2.imwrite(str(tmp_path / "red.png"), bgr)
    rgb = read_image(tmp_path / "red.png", keep_alpha=True)
    assert rgb.shape == (4, 5, 3) and (rgb[..., 0] == 200).all() and not rgb[..., 1:].any()
    cv2.imwrite(str(tmp_path / "grey.png"), np.full((4, 5), 7, np.uint16))
    grey = read_image(tmp_path / "grey.png", keep_depth=True)
    assert grey.shape == (4, 5, 3) and grey.dtype == np.uint16 and (grey == 7).all()
    with pytest.raises(InputError, match="No such file"):
        read_image(tmp_path / "nope.png", error=InputError)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty file") as info:
        read_image(tmp_path / "empty.png")
    assert info.value.reason == "empty file"


# -- thresholds in the mask's own range --------------------------------------------------
def sixteen_bit_mask(tmp_path):
    m = np.zeros((H, W), np.uint16)
    m[0:10, 0:10] = 1000
    m[20:30, 20:40] = 40000
    cv2.imwrite(str(tmp_path / "m16.png"), m)
    assert cv2.imread(str(tmp_path / "m16.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    return tmp_path / "m16.png", m


def test_16_bit_threshold_is_in_16_bit_values(tmp_path):
    path, m = sixteen_bit_mask(tmp_path)
    got, _ = stream(MaskSpec(path, dilate=0, threshold=5000))
    assert np.array_equal(got[0], m == 40000)
    got, _ = stream(MaskSpec(path, dilate=0))  # default for a lossless image: any non-zero
    assert np.array_equal(got[0], m > 0)
    got, _ = stream(MaskSpec(path, dilate=0, threshold=60000, box=(0, 0, 2, 2)))
    assert got[0].sum() == 4  # 60000 is valid for 16-bit: selects nothing of the image


def test_threshold_outside_the_masks_range_is_a_usage_error(tmp_path):
    img = np.zeros((H, W), np.uint8)
    img[5:10, 5:10] = 255
    cv2.imwrite(str(tmp_path / "m8.png"), img)
    with pytest.raises(UsageError, match=r"0\.\.254.*8-bit"):
        stream(MaskSpec(tmp_path / "m8.png", threshold=5000))
    assert threshold_range(np.uint8) == (0, 254) and threshold_range(np.uint16) == (0, 65534)
    assert threshold_range(np.float32) == (0, 254)


def test_default_thresholds():
    assert effective_threshold(None, np.uint8, lossy=False) == 0
    assert effective_threshold(None, np.uint8, lossy=True) == 127
    assert effective_threshold(None, np.uint16, lossy=True) == 32767
    assert effective_threshold(None, np.uint16, lossy=False) == 0
    assert effective_threshold(127, np.float32, lossy=False) == pytest.approx(127 / 255)


def test_float_tiff_is_0_to_1_with_threshold_on_the_8_bit_scale(tmp_path):
    m = np.zeros((H, W), np.float32)
    m[0:10, 0:10] = 0.3
    m[20:30, 20:30] = 0.8
    assert cv2.imwrite(str(tmp_path / "f.tif"), m)
    got, _ = stream(MaskSpec(tmp_path / "f.tif", dilate=0))
    assert np.array_equal(got[0], m > 0)
    got, _ = stream(MaskSpec(tmp_path / "f.tif", dilate=0, threshold=127))
    assert np.array_equal(got[0], m > 0.5)


# -- alpha --------------------------------------------------------------------------------
def test_alpha_only_mask_uses_alpha(tmp_path):
    bgra = np.zeros((H, W, 4), np.uint8)
    bgra[10:20, 30:50, 3] = 255
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    got, _ = stream(MaskSpec(tmp_path / "a.png", dilate=0))
    assert np.array_equal(got[0], bgra[..., 3] > 0)
    inv, _ = stream(MaskSpec(tmp_path / "a.png", dilate=0, invert=True))
    assert np.array_equal(inv[0], bgra[..., 3] == 0)


def test_alpha_with_colour_keeps_transparent_is_no_mask(tmp_path):
    bgra = np.zeros((H, W, 4), np.uint8)
    bgra[0:20, 0:20, :3] = 255  # white, but only the left half of it is opaque
    bgra[:, 0:10, 3] = 255
    cv2.imwrite(str(tmp_path / "c.png"), bgra)
    got, _ = stream(MaskSpec(tmp_path / "c.png", dilate=0))
    expect = np.zeros((H, W), bool)
    expect[0:20, 0:10] = True
    assert np.array_equal(got[0], expect)


def test_mask_values_rules():
    img = np.zeros((2, 2, 4), np.uint16)
    img[0, 0, 3] = 9
    values, used = mask_values(img)
    assert used and values.dtype == np.uint16 and values[0, 0] == 9 and values.sum() == 9
    img[..., 3] = 65535  # opaque black everywhere: empty, not "everything"
    values, used = mask_values(img)
    assert not used and not values.any()


@pytest.mark.parametrize("alpha", [0, 255])
def test_empty_rgba_mask_error_mentions_alpha(tmp_path, alpha):
    cv2.imwrite(str(tmp_path / "e.png"), np.dstack([np.zeros((H, W, 3), np.uint8), np.full((H, W), alpha, np.uint8)]))
    with pytest.raises(MaskError, match="empty.*alpha"):
        stream(MaskSpec(tmp_path / "e.png"))
    cv2.imwrite(str(tmp_path / "e3.png"), np.zeros((H, W, 3), np.uint8))
    with pytest.raises(MaskError, match="empty") as info:
        stream(MaskSpec(tmp_path / "e3.png"))
    assert "alpha" not in str(info.value)


# -- unreadable files: typed error, silent stderr --------------------------------------------
def test_corrupt_png_mask_is_a_mask_error_and_prints_nothing(tmp_path, capfd):
    img = np.zeros((H, W), np.uint8)
    img[5:10, 5:10] = 255
    data = bytearray(cv2.imencode(".png", img)[1].tobytes())
    idat = data.index(b"IDAT")
    data[idat + 8] ^= 0xFF  # a byte of compressed data: the IDAT CRC no longer matches
    (tmp_path / "crc.png").write_bytes(bytes(data))
    (tmp_path / "cut.png").write_bytes(bytes(data[: len(data) // 2]))
    (tmp_path / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"x" * 40)
    for name in ("crc.png", "cut.png", "junk.png"):
        with pytest.raises(MaskError, match=f"cannot read mask image .*{name}"):
            stream(MaskSpec(tmp_path / name))
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_other_threads_stderr_is_kept_while_decoding(tmp_path, capfd, monkeypatch):
    """fd 2 is redirected while decoding; a progress bar's complete lines written from another
    thread meanwhile come back on stderr, and only the codec's line becomes the reason.

    Deterministic: the other thread writes (and finishes) inside the decode call itself.
    Byte-level interleaving of two writers on one fd cannot be sorted out afterwards, so a
    line of the other thread that splits a codec line may end up in the reason (cosmetic).
    """
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)

    def fake_imdecode(data, flags):
        os.write(2, b"libpng error: IDAT: CRC error\n")
        writer = threading.Thread(target=lambda: os.write(2, b"\r\x1b[2Ktick 1/10\n"))
        writer.start()
        writer.join()
        return None

    monkeypatch.setattr(cv2, "imdecode", fake_imdecode)  # images.py imports cv2 where it decodes
    with pytest.raises(ImageReadError) as info:
        read_image(tmp_path / "bad.png")
    assert info.value.reason == "libpng error: IDAT: CRC error"
    _, err = capfd.readouterr()
    assert "tick 1/10" in err and "libpng" not in err


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_channel_max_is_numpys_max_over_channels(dtype, channels):
    from tsam_cli.media.masks import channel_max

    rng = np.random.default_rng(channels)
    img = (rng.random((7, 9, channels)) * 200).astype(dtype)
    out = channel_max(img)
    assert out.dtype == img.dtype and np.array_equal(out, img.max(axis=2))
