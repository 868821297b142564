"""Hostile / broken safetensors weight files are refused before anything is built or read.

Every refusal must be a one-line :class:`WeightsError` (exit code 6 through the CLI). Instead
of timing, the tests check *what was done*: a guard records every generator built off the
meta device and every ``safetensors.safe_open`` call; a refused file must cause neither.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
from conftest import translating_video, write_video

import tsam_cli.model.official as official
from tsam_cli.errors import WeightsError
from tsam_cli.model.config import ModelConfig
from tsam_cli.model.generator import TSAMGenerator
from tsam_cli.model.tsam_format import load_generator, read_safetensors_header, save_generator

TINY = ModelConfig(name="tiny", stem_width=8, widths=(4, 8, 8, 8), depths=(1, 1, 1, 1), decoder_width=16)


# ----------------------------------------------------------------------------------- helpers
def write_raw(path: Path, header: dict, data: bytes = b"") -> Path:
    """Write a safetensors file by hand: 8-byte little-endian length, JSON header, data."""
    raw = json.dumps(header).encode("utf-8")
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def read_raw(path: Path) -> tuple[dict, bytes]:
    """``(header dict, data bytes)`` of a safetensors file (for editing)."""
    blob = path.read_bytes()
    n = struct.unpack("<Q", blob[:8])[0]
    return json.loads(blob[8 : 8 + n]), blob[8 + n :]


@pytest.fixture(scope="module")
def good_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return save_generator(TSAMGenerator(TINY).eval(), tmp_path_factory.mktemp("w") / "tiny.safetensors")


def with_config_text(src: Path, dst: Path, edit) -> Path:
    """Copy ``src`` to ``dst`` with its config JSON text replaced by ``edit(text)``."""
    header, data = read_raw(src)
    header["__metadata__"]["tsam_config"] = edit(header["__metadata__"]["tsam_config"])
    return write_raw(dst, header, data)


@pytest.fixture()
def guard(monkeypatch):
    """Record every real (non-meta) generator built and every ``safe_open`` of a file."""
    import safetensors

    calls: list[str] = []

    def generator(cfg, *args, **kwargs):
        if torch.empty(0).device.type != "meta":
            calls.append(f"TSAMGenerator({cfg.name}) on a real device")
        return TSAMGenerator(cfg, *args, **kwargs)

    def safe_open(*args, **kwargs):
        calls.append("safe_open")
        raise RuntimeError("guard: safe_open must not be called")

    monkeypatch.setattr(official, "TSAMGenerator", generator)
    monkeypatch.setattr(safetensors, "safe_open", safe_open)
    return calls


def refused(path: Path, guard: list[str], *needles: str) -> str:
    """Assert ``load_generator(path)`` raises a one-line WeightsError mentioning ``needles``
    without building a real generator or opening the tensors; return the message."""
    with pytest.raises(WeightsError) as err:
        load_generator(path)
    msg = str(err.value)
    assert "\n" not in msg and "\r" not in msg, msg
    for needle in needles:
        assert needle in msg, msg
    assert guard == [], guard
    return msg


# ----------------------------------------------------------------------------------- tests
def test_good_file_still_loads(good_file):
    model = load_generator(good_file)
    assert model.config == TINY
    assert load_generator(good_file, official_quirks=True).config.official_quirks is True
    meta, entries = read_safetensors_header(good_file)
    assert ModelConfig.from_json(meta["tsam_config"]) == TINY
    assert entries.keys() == model.state_dict().keys()


def test_hostile_huge_config_builds_nothing(tmp_path, guard):
    """A 200-byte file whose config asks for widths 1024 / depths 10 (~1.6 G values)."""
    cfg = TINY.replace(name="huge", widths=(1024,) * 4, depths=(10,) * 4, decoder_width=4096)
    header = {"__metadata__": {"tsam_config": cfg.to_json()},
              "x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}
    path = write_raw(tmp_path / "huge.safetensors", header, b"\0" * 4)
    assert path.stat().st_size < 1000
    refused(path, guard, "huge", "limit")


@pytest.mark.parametrize(
    "edit, needle",
    [
        (lambda t: t.replace('"widths": [4, 8, 8, 8]', '"widths": [4, 1e400, 8, 8]'), "widths[1]"),
        (lambda t: t.replace('"widths": [4, 8, 8, 8]', '"widths": [4, 8, 8, 4096]'), "widths[3]"),
        (lambda t: t.replace('"bn_eps": 1e-05', '"bn_eps": NaN'), "bn_eps"),
        (lambda t: t.replace('"leaky_slope": 0.2', '"leaky_slope": -Infinity'), "leaky_slope"),
        (lambda t: t.replace('"depths": [1, 1, 1, 1]', '"depths": [1, -1, 1, 1]'), "depths[1]"),
        (lambda t: t.replace('"depths": [1, 1, 1, 1]', '"depths": [1, 1]'), "depths"),
        (lambda t: t.replace('"stem_width": 8', '"stem_width": "8"'), "stem_width"),
        (lambda t: t.replace('"stem_width": 8', '"stem_width": 8.0'), "stem_width"),
        (lambda t: t.replace('"stem_width": 8', '"stem_width": ' + "9" * 5000), "model config"),
        (lambda t: t.replace('"out_channels": 3', '"out_channels": 4'), "out_channels' is 4: must be 3"),
        (lambda t: t.replace('"use_flow": true', '"use_flow": 1'), "use_flow"),
        (lambda t: t.replace('"name": "tiny"', '"name": "a\\nb"'), "name"),
        (lambda t: t.replace('"use_flow": true, ', ""), "missing keys: use_flow"),
        (lambda t: t.replace('"use_flow": true', '"use_flow": true, "gpu_hog": 1'), "gpu_hog"),
        (lambda t: "[" * 100_000, "not valid JSON"),
        (lambda t: "[1, 2]", "JSON object"),
    ],
    ids=["1e400", "too-wide", "nan", "-inf", "negative", "short-list", "string", "float-int",
         "5000-digits", "rgb-only", "int-bool", "newline-name", "missing-key", "unknown-key", "nested", "list"],
)
def test_bad_config_values(good_file, tmp_path, guard, edit, needle):
    header, _ = read_raw(good_file)
    before = header["__metadata__"]["tsam_config"]
    assert edit(before) != before  # the edit applies to the stored JSON text
    path = with_config_text(good_file, tmp_path / "bad.safetensors", edit)
    refused(path, guard, "invalid model config", needle)


def test_missing_config(tmp_path, guard):
    path = write_raw(tmp_path / "nocfg.safetensors", {"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}},
                     b"\0" * 4)
    refused(path, guard, "no TSAM model config")


def test_wrong_tensor_shape_in_header(good_file, tmp_path, guard):
    header, data = read_raw(good_file)
    key = "coarse_net.downsample_module.base_model.conv1.weight"
    shape = header[key]["shape"]
    assert shape == [8, 5, 7, 7]
    header[key]["shape"] = [5, 8, 7, 7]  # same byte size: only the shape check can catch it
    refused(write_raw(tmp_path / "shape.safetensors", header, data), guard, key, "(5, 8, 7, 7)", "(8, 5, 7, 7)")


def test_wrong_dtype_and_names(good_file, tmp_path, guard):
    header, data = read_raw(good_file)
    key = "coarse_net.downsample_module.base_model.conv1.weight"
    header[key]["dtype"] = "I32"  # same item size as F32
    refused(write_raw(tmp_path / "dtype.safetensors", header, data), guard, key, "I32")
    header, data = read_raw(good_file)
    header["evil\nkey"] = header.pop(key)
    refused(write_raw(tmp_path / "names.safetensors", header, data), guard, "1 missing", "1 unexpected")


def test_inconsistent_offsets(good_file, tmp_path, guard):
    header, data = read_raw(good_file)
    key = "coarse_net.downsample_module.base_model.conv1.weight"
    header[key]["data_offsets"] = [0, 4]
    refused(write_raw(tmp_path / "off.safetensors", header, data), guard, "data_offsets")
    header, data = read_raw(good_file)
    header["__metadata__"] = {"tsam_config": 5}
    refused(write_raw(tmp_path / "meta.safetensors", header, data), guard, "__metadata__")


def test_huge_header_length(tmp_path, guard):
    path = tmp_path / "huge_header.safetensors"
    path.write_bytes(struct.pack("<Q", 2**62) + b'{"a": 1}')
    refused(path, guard, "header length")
    path.write_bytes(struct.pack("<Q", 200 * 1024 * 1024) + b"{" + b" " * 100)
    refused(path, guard, "header length")
    # detected as safetensors by content, whatever the file name
    other = tmp_path / "huge_header.bin"
    other.write_bytes(struct.pack("<Q", 2**62) + b'{"a": 1}')
    refused(other, guard, "header length")


def test_truncated_and_garbage_files(good_file, tmp_path, guard):
    blob = good_file.read_bytes()
    for cut, needle in [(len(blob) - 100, "truncated"), (200, "truncated"), (5, "too short"), (0, "too short")]:
        path = tmp_path / f"cut{cut}.safetensors"
        path.write_bytes(blob[:cut])
        refused(path, guard, needle)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(bytes(range(256)) * 10)
    refused(garbage, guard)
    bad_json = tmp_path / "bad_json.safetensors"
    bad_json.write_bytes(struct.pack("<Q", 4) + b"{\xff\xfe}")
    refused(bad_json, guard, "not valid JSON")
    refused(tmp_path / "missing.safetensors", guard, "not found")


def test_config_bounds_in_python():
    """The same checks apply to configs built in code (e.g. from a training JSON)."""
    with pytest.raises(ValueError, match="widths\\[0\\]"):
        ModelConfig(widths=(float("inf"), 8, 8, 8))
    with pytest.raises(ValueError, match="depths\\[2\\]"):
        TINY.replace(depths=(1, 1, 13, 1))
    with pytest.raises(ValueError, match="official_quirks"):
        TINY.replace(official_quirks="yes")
    partial = ModelConfig.from_dict({"name": "p", "stem_width": 8, "widths": [4, 8, 8, 8], "decoder_width": 16})
    assert partial.depths == (3, 4, 6, 3)  # user configs may omit keys; weight files may not
    incomplete = {k: v for k, v in TINY.to_dict().items() if k != "bn_eps"}
    with pytest.raises(ValueError, match="missing keys: bn_eps"):
        ModelConfig.from_dict(incomplete, complete=True)


def test_cli_refuses_bad_model_with_exit_6(tmp_path, capsys):
    from tsam_cli.cli.main import main

    video = write_video(tmp_path / "in.mp4", translating_video(T=4, h=32, w=48))
    bad = with_config_text_file(tmp_path)
    code = main(["inpaint", str(video), "--box", "2,2,8,8", "-o", str(tmp_path / "out.mp4"), "--model", str(bad)])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 6, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "widths[1]" in lines[0]
    assert not (tmp_path / "out.mp4").exists()


def with_config_text_file(tmp_path: Path) -> Path:
    """A small weight file whose config holds ``1e400`` (built without the module fixture)."""
    text = TINY.to_json().replace('"widths": [4, 8, 8, 8]', '"widths": [4, 1e400, 8, 8]')
    header = {"__metadata__": {"tsam_config": text}, "x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}
    return write_raw(tmp_path / "bad.safetensors", header, b"\0" * 4)
