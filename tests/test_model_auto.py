"""``--model auto`` (the default): classical on the CPU, the official weights on CUDA.

The official weights live on Google Drive, unreachable from here, so the ``tsam-official``
entry is pointed at a 127.0.0.1 HTTP server (http.server in a thread) that serves a file in the
official layout: a ``torch.save`` dict with ``arch``, ``epoch``, ``logger`` (an object of a class
``utils.logger.Logger`` made on the fly in a fake module), ``state_dict`` with the 408
``generator.`` keys (spectral-norm aliases sharing storage), optimizers, ``monitor_best`` and
``config``. CUDA is mocked (``tsam_cli.device.cuda_available``) to reach the CUDA branch; the
network is never run on it. The cache lives under tmp_path (``TSAM_HOME``).

Decisions tested here: an unreachable server or a corrupt download gives the classical filler
and one warning (naming the file), exit 0; a corrupt file this run downloaded is deleted so the
next run fetches it again, a corrupt file already in the cache (maybe put there by hand) is kept
and the warning says to delete or replace it.
"""

from __future__ import annotations

import collections
import io
import os
import socket
import subprocess
import sys
import threading
import weakref
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import isolated_weights, local_http_server, official_logger_module, texture, write_pngs

from tsam_cli import device, models, weights
from tsam_cli.errors import UsageError, WeightsError
from tsam_cli.options import InpaintOptions
from tsam_cli.ui import NullReporter
from tsam_cli.weights import OFFICIAL, Source, WeightSpec

ROOT = Path(__file__).resolve().parents[1]


class Recorder(NullReporter):
    """A reporter that keeps what it was told: info lines and progress totals / advances."""

    def __init__(self) -> None:
        super().__init__()
        self.infos: list[str] = []
        self.totals: dict[str, int | None] = {}
        self.done: dict[str, int] = collections.Counter()

    def info(self, msg: str) -> None:
        self.infos.append(msg)

    def start(self, stage: str, total: int | None) -> None:
        self.totals[stage] = total

    def advance(self, stage: str, n: int = 1) -> None:
        self.done[stage] += n


# ------------------------------------------------------------------ an official-layout checkpoint
def _official_generator_state(seed: int = 0) -> collections.OrderedDict:
    """The 408 official ``generator.`` keys of a seeded FULL generator, fp16 (as the parity fixture).

    Our keys are the official keys minus the spectral-norm duplicates (docs/official-checkpoint.md
    facts 22-24): an SN conv ``X`` also has ``X.weight_orig`` / ``X.bias`` (the same tensors as
    ``X.layer.weight`` / ``X.layer.bias``) and ``X.weight_u`` / ``X.weight_v``; conv11 (no norm)
    has ``X.weight`` / ``X.bias``.
    """
    from tsam_cli.model.config import FULL
    from tsam_cli.model.generator import TSAMGenerator

    torch.manual_seed(seed)
    ours = {k: v.half() if v.is_floating_point() else v for k, v in TSAMGenerator(FULL).state_dict().items()}
    state = collections.OrderedDict()
    for key, value in ours.items():
        state["generator." + key] = value
        if not key.endswith(".layer.weight"):
            continue
        base = key[: -len(".layer.weight")]
        bias = ours[base + ".layer.bias"]
        if ".conv11." in key:
            state[f"generator.{base}.weight"], state[f"generator.{base}.bias"] = value, bias
        else:
            state[f"generator.{base}.weight_orig"], state[f"generator.{base}.bias"] = value, bias
            state[f"generator.{base}.weight_u"] = torch.randn(value.shape[0]).half()
            state[f"generator.{base}.weight_v"] = torch.randn(value[0].numel()).half()
    assert len(state) == 408  # fact 40
    return state


def official_checkpoint_bytes(seed: int = 0) -> bytes:
    """A checkpoint in the official top-level layout (fact 39), as the bytes of a .pth file."""
    Logger = type("Logger", (), {"__module__": "utils.logger", "__init__": lambda self: setattr(self, "entries", {})})
    logger = Logger()
    logger.entries[1] = {"epoch": 1, "loss": 0.25}
    ckpt = {"arch": "VideoInpaintingModel", "epoch": 100, "logger": logger, "state_dict": _official_generator_state(seed),
            "optimizer_g": None, "optimizer_d_s": None, "optimizer_d_t": None, "monitor_best": float("inf"),
            "config": {"name": "flow_finetune_davis", "arch": {"args": {"opts": {"flow_tsm": True}}}}}
    buf = io.BytesIO()
    with official_logger_module(Logger):
        torch.save(ckpt, buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def official_bytes() -> bytes:
    return official_checkpoint_bytes()


# ------------------------------------------------------------------ a local HTTP server
class _Handler(BaseHTTPRequestHandler):
    files: dict[str, bytes]
    requests: list[str]

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # http.server's naming
        self.requests.append(self.path)
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server():
    handler = type("H", (_Handler,), {"files": {}, "requests": []})
    with local_http_server(handler) as base:
        handler.base = base
        yield handler


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Cache under tmp_path, no proxies, a fresh registry, no GPU unless a test says so."""
    isolated_weights(tmp_path, monkeypatch)
    monkeypatch.setattr(models, "_HINTED", weakref.WeakSet())
    monkeypatch.setattr(device, "cuda_available", lambda: False)


def _serve_official(server, body: bytes) -> Path:
    """Point the tsam-official entry at ``server`` serving ``body``; return the cache path."""
    server.files["/tsam_official.pth"] = body
    weights.register(WeightSpec(name=OFFICIAL, source=Source(kind="url", ref=server.base + "/tsam_official.pth"),
                                filename="tsam_official.pth", size=len(body)), replace=True)
    return weights.target_path(OFFICIAL)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def gpu(monkeypatch):
    monkeypatch.setattr(device, "cuda_available", lambda: True)
    monkeypatch.setattr(device, "cuda_name", lambda index=0: "Mock GPU")


# ------------------------------------------------------------------ CPU
def test_default_is_auto_and_valid():
    opts = InpaintOptions()
    assert opts.model == "auto"
    opts.validate()


def test_auto_on_cpu_is_classical_with_one_hint():
    rep = Recorder()
    assert models.choose_model("auto", "auto", rep) == "classical"
    assert models.choose_model("auto", "cpu", rep) == "classical"
    assert len(rep.infos) == 1, rep.infos  # once per reporter (a batch shows it once)
    hint = rep.infos[0]
    cost = models.CPU_FULL_COST
    assert "--model full" in hint and f"{cost['s_per_frame']:g} s/frame" in hint and f"{cost['peak_gb']:g} GB" in hint
    assert "tsam weights download tsam-official" in hint  # not downloaded yet
    assert not rep.warnings and not weights.cache_dir().exists()  # no network, nothing written


def test_auto_with_cpu_device_on_a_gpu_machine_is_classical(gpu):
    assert models.choose_model("auto", "cpu", Recorder()) == "classical"


def test_auto_with_cuda_device_without_gpu_is_a_usage_error():
    with pytest.raises(UsageError, match="no CUDA GPU"):
        models.choose_model("auto", "cuda", Recorder())


def test_other_models_pass_through():
    for name in ("classical", "compact", "some/file.safetensors"):
        assert models.choose_model(name, "auto", Recorder()) == name


# ------------------------------------------------------------------ CUDA (mocked): download + convert
def test_auto_on_cuda_downloads_converts_once_then_never_unpickles(gpu, server, official_bytes, monkeypatch):
    from tsam_cli.model import official, tsam_format

    pth = _serve_official(server, official_bytes)
    rep = Recorder()
    path = Path(models.choose_model("auto", "auto", rep))
    assert path == weights.converted_path() and path.suffix == ".safetensors" and path.is_file()
    assert server.requests == ["/tsam_official.pth"]
    assert rep.totals["weights MB"] == len(official_bytes) // 1_000_000  # the progress bar's total
    assert rep.done["weights MB"] == len(official_bytes) // 1_000_000
    assert any("downloading" in m for m in rep.infos) and any("converting" in m for m in rep.infos)
    assert pth.is_file() and not rep.warnings

    model = tsam_format.load_generator(path)
    ref = torch.load(io.BytesIO(official_bytes), weights_only=False, pickle_module=official.restricted_pickle)
    key = "coarse_net.upsample_module.conv11.featureConv.layer.weight"
    assert torch.equal(model.state_dict()[key], ref["state_dict"]["generator." + key].float())
    assert model.config.official_quirks and model.config.use_flow

    def refuse(*args, **kwargs):
        raise AssertionError("the official .pth was unpickled again")

    monkeypatch.setattr(official, "read_official_checkpoint", refuse)
    monkeypatch.setattr(official, "load_official_generator", refuse)
    rep2 = Recorder()
    assert Path(models.choose_model("auto", "auto", rep2)) == path  # .pth still there, stamp matches
    pth.unlink()  # and without the .pth at all
    assert Path(models.choose_model("auto", "cuda", rep2)) == path
    tsam_format.load_generator(path)  # the safetensors loader never unpickles
    assert server.requests == ["/tsam_official.pth"] and not rep2.infos and not rep2.warnings


def test_replaced_pth_is_converted_again(server, official_bytes, monkeypatch):
    from tsam_cli.model import official

    pth = _serve_official(server, official_bytes)
    pth.parent.mkdir(parents=True)
    pth.write_bytes(official_bytes)
    first = Path(models.choose_model("full", "cpu", Recorder()))  # --model full converts the cached .pth
    assert first == weights.converted_path() and server.requests == []
    calls = []
    real = official.load_official_generator
    monkeypatch.setattr(official, "load_official_generator", lambda p, **kw: calls.append(p) or real(p, **kw))
    models.choose_model("full", "cpu", Recorder())
    assert calls == []  # unchanged: not converted again
    st = pth.stat()
    os.utime(pth, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # e.g. `tsam weights download --force`
    models.choose_model("full", "cpu", Recorder())
    assert calls == [pth]


def test_parallel_runs_convert_once(server, official_bytes, monkeypatch):
    """Two runs at once (e.g. torchrun ranks): one converts, the other waits for it (flock)."""
    from tsam_cli.model import official

    pth = _serve_official(server, official_bytes)
    pth.parent.mkdir(parents=True)
    pth.write_bytes(official_bytes)
    from tsam_cli.media import output

    calls, real, real_lock = [], official.load_official_generator, output.take_lock
    both_at_the_lock = threading.Barrier(2, timeout=120)  # the timeout is a safety net only

    def take_lock(*args, **kw):  # each run reaches the cache lock before either converts
        both_at_the_lock.wait()
        return real_lock(*args, **kw)

    monkeypatch.setattr(output, "take_lock", take_lock)
    monkeypatch.setattr(official, "load_official_generator", lambda p, **kw: calls.append(p) or real(p, **kw))
    got: list[str] = []
    threads = [threading.Thread(target=lambda: got.append(models.choose_model("full", "cpu", Recorder())))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert got == [str(weights.converted_path())] * 2 and calls == [pth]


def test_unwritable_cache_loads_the_pth_with_a_warning(server, official_bytes, monkeypatch):
    from tsam_cli.model import tsam_format

    pth = _serve_official(server, official_bytes)
    pth.parent.mkdir(parents=True)
    pth.write_bytes(official_bytes)

    def cannot_write(model, path, extra=None):
        raise WeightsError(f"cannot write {path}: Read-only file system")

    monkeypatch.setattr(tsam_format, "save_generator", cannot_write)
    rep = Recorder()
    assert models.choose_model("full", "cpu", rep) == str(pth)
    assert "Read-only file system" in rep.warnings[0] and "loading tsam_official.pth itself" in rep.warnings[0]


def test_full_without_download_is_the_usual_error():
    with pytest.raises(WeightsError, match="not downloaded yet"):
        models.choose_model("full", "cpu", Recorder())


def test_auto_offline_falls_back_with_a_warning(gpu):
    port = _closed_port()
    weights.register(WeightSpec(name=OFFICIAL, source=Source(kind="url", ref=f"http://127.0.0.1:{port}/x.pth"),
                                filename="tsam_official.pth"), replace=True)
    rep = Recorder()
    assert models.choose_model("auto", "auto", rep) == "classical"
    assert len(rep.warnings) == 1
    assert "could not download weights 'tsam-official'" in rep.warnings[0] and "classical" in rep.warnings[0]
    assert not weights.converted_path().exists()


def test_auto_corrupt_download_falls_back_and_is_fetched_again(gpu, server):
    pth = _serve_official(server, b"\x80\x02 not a checkpoint " * 500)
    rep = Recorder()
    assert models.choose_model("auto", "auto", rep) == "classical"
    assert len(rep.warnings) == 1 and str(pth) in rep.warnings[0] and "deleted" in rep.warnings[0]
    assert not pth.exists() and not weights.converted_path().exists()
    assert models.choose_model("auto", "auto", Recorder()) == "classical"
    assert server.requests == ["/tsam_official.pth"] * 2  # downloaded again, not stuck on a bad file


def test_auto_corrupt_file_in_cache_is_kept(gpu, server):
    pth = _serve_official(server, b"unused")
    pth.parent.mkdir(parents=True)
    pth.write_bytes(b"PK\x03\x04 truncated zip")
    rep = Recorder()
    assert models.choose_model("auto", "auto", rep) == "classical"
    assert str(pth) in rep.warnings[0] and "delete or replace" in rep.warnings[0]
    assert pth.read_bytes() == b"PK\x03\x04 truncated zip" and server.requests == []


# ------------------------------------------------------------------ command line
def _tiny_clip(tmp_path: Path) -> Path:
    frames = [np.roll(texture(48, 64, seed=1), 2 * t, axis=1) for t in range(8)]
    return write_pngs(tmp_path / "in", frames)


def test_cli_default_output_is_byte_identical_to_classical(tmp_path, capsys):
    from tsam_cli.cli.main import main

    clip = _tiny_clip(tmp_path)
    common = [str(clip), "--box", "20,12,16,14", "--fps", "25"]
    assert main(["inpaint", *common, "-o", str(tmp_path / "auto")]) == 0
    err = capsys.readouterr().err
    cost = f"{models.CPU_FULL_COST['s_per_frame']:g} s/frame"
    assert "--model auto on the CPU: using the classical filler" in err and cost in err
    assert main(["inpaint", *common, "--model", "classical", "-o", str(tmp_path / "classical")]) == 0
    a, c = sorted((tmp_path / "auto").glob("*.png")), sorted((tmp_path / "classical").glob("*.png"))
    assert len(a) == 8 and [p.name for p in a] == [p.name for p in c]
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, c, strict=True))
    assert "--model auto" not in capsys.readouterr().err  # no hint when classical is asked for


def test_cli_auto_offline_on_gpu_exits_0(gpu, tmp_path, capsys):
    from tsam_cli.cli.main import main

    weights.register(WeightSpec(name=OFFICIAL, source=Source(kind="url", ref=f"http://127.0.0.1:{_closed_port()}/x"),
                                filename="tsam_official.pth"), replace=True)
    code = main(["inpaint", str(_tiny_clip(tmp_path)), "--box", "20,12,16,14", "--fps", "25", "-o",
                 str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "warning:" in err and "using the classical filler" in err and "Traceback" not in err
    assert len(list((tmp_path / "out").glob("*.png"))) == 8


def test_weights_list_says_what_auto_picks(capsys, monkeypatch):
    from tsam_cli.cli.main import main

    assert main(["weights", "list"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--model auto (the default) uses here: classical (no CUDA GPU" in out
    monkeypatch.setattr(device, "cuda_available", lambda: True)
    monkeypatch.setattr(device, "cuda_name", lambda index=0: "Mock GPU")
    assert main(["weights", "list"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "uses here: tsam-official (CUDA GPU Mock GPU; downloaded on first use" in out


# ------------------------------------------------------------------ benchmarks/gpu_check.py
def test_gpu_check_fails_early_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the early failure is not reachable")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert "no CUDA GPU" in proc.stderr and "--device cpu --quick" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_gpu_check_cpu_dry_run(tmp_path):
    """Every non-CUDA part of the GPU check, on tiny sizes (2.5-3.5 minutes on 2 busy cores)."""
    out = tmp_path / "check.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--quick",
                           "--json", str(out)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| speed" in proc.stdout
    fixture = ROOT.parent / "shared" / "reference" / "tsam_parity"
    # without ../shared (a clean clone, as CI has it) the parity section says it was skipped
    assert ("| parity" in proc.stdout) if fixture.is_dir() else ("parity/precision: skipped" in proc.stdout)
    if fixture.is_dir():  # fp32 on the CPU matches the official outputs
        assert proc.stdout.count("| fp32, TF32 off |") == 3 and "FAIL" not in proc.stdout
    import json

    result = json.loads(out.read_text())
    assert result["speed"] and all(row["s_per_frame"] > 0 for row in result["speed"])


@pytest.mark.skipif(not __import__("tsam_cli.device").device.no_gpu_driver(), reason="a GPU driver is present here")
def test_auto_on_a_machine_without_gpu_driver_does_not_import_torch():
    """The classical default must not pay for PyTorch (~0.2 GB RSS) just to learn there is no GPU."""
    code = ("import sys; from tsam_cli.models import choose_model; "
            "print(choose_model('auto', 'auto'), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["classical", "False"]
