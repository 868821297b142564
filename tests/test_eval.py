"""tsam eval: dataset discovery, mode (b) scoring, mode (a) via a fake and the real pipeline,
JSON/CSV output, the Typer command and bad inputs."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from tsam_cli.errors import DatasetError, UsageError
from tsam_cli.eval.evaluate import EvalMasks, discover, evaluate, read_frames, write_csv, write_json

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
BMX = SHARED / "data" / "bmx-trees" / "frames"
#: bmx-trees frames 0-5 and 30-35 at SIZE, and known answers (tests/fixtures/README.md)
CLIP = Path(__file__).resolve().parent / "fixtures" / "eval_clip"
SIZE = (108, 60)  # frames are written at this size, so evaluation does not resize

needs_shared = pytest.mark.skipif(
    not BMX.is_dir(), reason=f"reference clip not found at {BMX} (../shared is absent in this checkout)"
)


def _fixture_module():
    """tests/fixtures/eval_clip/make_fixture.py: the clip's reader and the known answers' result."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("eval_clip_fixture", CLIP / "make_fixture.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _make_davis(root: Path, n_clips=2, n_frames=6) -> Path:
    """A DAVIS layout of the fixture clips (at most 2 clips of 6 frames), as JPEG quality 95."""
    import cv2

    for c in range(n_clips):
        d = root / "JPEGImages" / "480p" / f"clip{c}"
        d.mkdir(parents=True)
        for i in range(n_frames):
            img = cv2.imread(str(CLIP / "frames" / f"clip{c}" / f"{i:05d}.png"))
            cv2.imwrite(str(d / f"{i:05d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return root


@needs_shared
def test_fixture_clip_is_bmx_trees():
    """The fixture's frames are ../shared's bmx-trees frames 0-5 and 30-35 shrunk to SIZE."""
    import cv2

    files = sorted(BMX.glob("*.jpg"))
    fixture = _fixture_module()
    for name, first in fixture.FIRST.items():
        ours = fixture.read_clip(CLIP / "frames" / name)
        theirs = np.stack([cv2.resize(cv2.imread(str(files[first + i])), SIZE, interpolation=cv2.INTER_AREA)[..., ::-1]
                           for i in range(len(ours))])
        # another libjpeg may decode the source JPEGs a level apart; the fixture PNGs are exact
        assert ours.shape == (6, SIZE[1], SIZE[0], 3) and np.abs(ours.astype(int) - theirs).max() <= 2, name


def test_known_answers_on_the_fixture_clip(tmp_path):
    """PSNR (full frame and hole) and SSIM of a known result on a known clip equal the values
    computed without tsam's metric code (tests/fixtures/eval_clip/make_fixture.py: PSNR from
    its definition, SSIM as skimage computes it), per video and for the dataset."""
    import cv2

    fixture = _fixture_module()
    known = json.loads((CLIP / "known_answers.json").read_text())
    for name in fixture.FIRST:
        gt = fixture.read_clip(CLIP / "frames" / name)
        for i, frame in enumerate(fixture.perturb(gt)):
            (tmp_path / "res" / name).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(tmp_path / "res" / name / f"{i:05d}.png"), frame[..., ::-1])
        (tmp_path / "masks" / name).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "masks" / name / "00000.png"), fixture.hole_mask(*gt.shape[1:3]).astype(np.uint8) * 255)
    rep = evaluate("folder", CLIP / "frames", results=tmp_path / "res", metrics=["psnr", "ssim"], size=SIZE,
                   masks=EvalMasks(source=str(tmp_path / "masks")))
    for v in rep["videos"]:
        for k, want in known["videos"][v["name"]].items():
            assert v[k] == pytest.approx(want, rel=0, abs=1e-9), (v["name"], k)
    for k, want in known["mean"].items():
        assert rep["mean"][k] == pytest.approx(want, rel=0, abs=1e-9), k


def _noisy_results(root: Path, out: Path, amp=5, seed=0) -> float:
    """Results = decoded GT + uniform integer noise in [-amp, amp]; returns the expected
    frame-weighted mean PSNR computed independently here."""
    import cv2

    rng = np.random.default_rng(seed)
    psnrs = []
    for d in sorted((root / "JPEGImages" / "480p").iterdir()):
        (out / d.name).mkdir(parents=True)
        for f in sorted(d.glob("*.jpg")):
            gt = cv2.imread(str(f)).astype(np.int64)
            res = np.clip(gt + rng.integers(-amp, amp + 1, gt.shape), 0, 255)
            cv2.imwrite(str(out / d.name / (f.stem + ".png")), res.astype(np.uint8))
            psnrs.append(10 * math.log10(255**2 / ((gt - res) ** 2).mean()))
    return float(np.mean(psnrs))


def test_mode_b_noise_gives_expected_psnr(tmp_path):
    root = _make_davis(tmp_path / "davis")
    expected = _noisy_results(root, tmp_path / "res")
    rep = evaluate("davis", root, results=tmp_path / "res", metrics=["psnr", "ssim", "ewarp"], size=SIZE)
    assert rep["mode"] == "score-results" and len(rep["videos"]) == 2
    assert rep["mean"]["psnr"] == pytest.approx(expected, abs=1e-6)
    # uniform noise in [-5, 5] has variance 10 -> about 38.1 dB (a bit more from clipping)
    assert 37.5 < rep["mean"]["psnr"] < 39.5
    assert 0.8 < rep["mean"]["ssim"] < 1.0
    assert rep["mean"]["ewarp"] is not None and rep["mean"]["ewarp"] >= 0
    assert rep["mean"]["psnr_hole"] == pytest.approx(rep["mean"]["psnr"], abs=0.5)
    for v in rep["videos"]:
        assert v["frames"] == 6 and 0 < v["hole_ratio"] < 0.75
    # identical results: PSNR inf per frame -> capped mean, SSIM 1
    rep2 = evaluate("davis", root, results=root / "JPEGImages" / "480p", metrics=["psnr", "ssim"], size=SIZE)
    assert rep2["mean"]["psnr"] == 100.0 and rep2["mean"]["psnr_capped_frames"] == 12
    assert rep2["mean"]["ssim"] == pytest.approx(1.0)


def test_generated_masks_are_deterministic_per_clip(tmp_path):
    root = _make_davis(tmp_path / "davis")
    _noisy_results(root, tmp_path / "res")
    kw = dict(results=tmp_path / "res", metrics=["psnr"], size=SIZE)
    a = evaluate("davis", root, masks=EvalMasks(kind="curve", seed=3), **kw)
    b = evaluate("davis", root, masks=EvalMasks(kind="curve", seed=3), **kw)
    c = evaluate("davis", root, masks=EvalMasks(kind="curve", seed=4), **kw)
    assert [v["hole_ratio"] for v in a["videos"]] == [v["hole_ratio"] for v in b["videos"]]
    assert [v["hole_ratio"] for v in a["videos"]] != [v["hole_ratio"] for v in c["videos"]]
    d = evaluate("davis", root, masks=EvalMasks(kind="object", area=(0.3, 0.4)), **kw)
    assert all(0.27 <= v["hole_ratio"] <= 0.43 for v in d["videos"])


def test_vfid_unavailable_does_not_abort_other_metrics(tmp_path):
    root = _make_davis(tmp_path / "davis")
    _noisy_results(root, tmp_path / "res")
    rep = evaluate("davis", root, results=tmp_path / "res", metrics=["psnr", "vfid"], size=SIZE,
                   i3d=tmp_path / "missing_i3d.pt")
    assert rep["mean"]["vfid"] is None and "vfid" in rep["unavailable"]
    assert "\n" not in rep["unavailable"]["vfid"] and "--i3d" in rep["unavailable"]["vfid"]
    assert rep["mean"]["psnr"] is not None


def test_vfid_with_random_i3d_file(tmp_path):
    root = _make_davis(tmp_path / "davis", n_frames=4)
    _noisy_results(root, tmp_path / "res")
    _published_file(tmp_path / "i3d.pt")
    rep = evaluate("davis", root, results=tmp_path / "res", metrics=["vfid"], size=SIZE, i3d=tmp_path / "i3d.pt",
                   device="cpu")
    assert rep["unavailable"] == {} and rep["mean"]["vfid"] is not None and rep["mean"]["vfid"] >= 0


def test_json_and_csv_outputs(tmp_path):
    root = _make_davis(tmp_path / "davis")
    _noisy_results(root, tmp_path / "res")
    rep = evaluate("davis", root, results=tmp_path / "res", metrics=["psnr", "ssim", "vfid"], size=SIZE,
                   i3d=tmp_path / "none.pt", command="tsam eval --root X")
    write_json(rep, tmp_path / "r.json")
    write_csv(rep, tmp_path / "r.csv")
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["command"] == "tsam eval --root X"
    for k in ("tsam", "torch", "numpy", "av"):
        assert k in data["versions"]
    assert data["size"] == list(SIZE) and data["masks"]["source"] == "generate"
    rows = list(csv.reader(open(tmp_path / "r.csv")))
    assert rows[0][:3] == ["name", "frames", "hole_ratio"] and "psnr" in rows[0] and rows[0][-1] == "vfid"
    assert [r[0] for r in rows[1:]] == ["clip0", "clip1", "MEAN"]
    assert rows[-1][-1] == ""  # vfid unavailable -> empty cell


def _published_file(path, seed=0):
    """Random I3D weights in the published layout (plain OrderedDict, legacy format)."""
    from collections import OrderedDict

    import torch

    from tsam_cli.metrics.i3d import published_layout

    g = torch.Generator().manual_seed(seed)
    sd = OrderedDict((k, torch.randn(s, generator=g) * 0.05) for k, s in published_layout().items())
    for k in sd:
        if k.endswith("running_var"):
            sd[k] = sd[k].abs() + 1.0
    torch.save(sd, path, _use_new_zipfile_serialization=False)


def test_mode_a_with_fake_inpaint(tmp_path, monkeypatch):
    import cv2

    import tsam_cli.eval.evaluate as ev
    from tsam_cli.core.pipeline import InpaintOptions

    calls = []

    def fake_inpaint(input_path, output_path, opts):
        calls.append(opts)
        assert opts.dilate == 0 and opts.mask_threshold == 0 and opts.lossless and opts.quiet
        out = Path(output_path)
        out.mkdir(parents=True)
        frames = sorted(Path(input_path).glob("*.png"))
        masks = sorted(Path(opts.mask).glob("*.png"))
        assert len(frames) == len(masks) == 6
        for f, m in zip(frames, masks, strict=True):
            img = cv2.imread(str(f))
            hole = cv2.imread(str(m), cv2.IMREAD_GRAYSCALE) > 0  # 255 = hole
            assert img.shape[:2] == (SIZE[1], SIZE[0]) and hole.any()
            img[hole] = 128  # "inpaint" with grey
            cv2.imwrite(str(out / f.name), img)
        return {"ok": True}

    monkeypatch.setattr(ev, "_load_pipeline", lambda: (fake_inpaint, InpaintOptions))
    root = _make_davis(tmp_path / "davis")
    rep = evaluate("davis", root, metrics=["psnr", "ssim"], size=SIZE, keep_results=tmp_path / "kept")
    assert rep["mode"] == "run-tsam" and len(calls) == 2
    # only hole pixels changed: full-frame PSNR is higher than hole PSNR, both finite
    assert rep["mean"]["psnr_hole"] < rep["mean"]["psnr"] < 100
    assert (tmp_path / "kept" / "clip0").is_dir()
    # the kept outputs score the same in mode (b)
    rep_b = evaluate("davis", root, results=tmp_path / "kept", metrics=["psnr"], size=SIZE)
    assert rep_b["mean"]["psnr"] == pytest.approx(rep["mean"]["psnr"])


def test_mode_a_with_real_pipeline(tmp_path):
    root = _make_davis(tmp_path / "davis")
    rep = evaluate("davis", root, metrics=["psnr"], size=SIZE, device="cpu",
                   masks=EvalMasks(kind="object", area=(0.1, 0.2)))
    assert rep["mode"] == "run-tsam"
    assert 10 < rep["mean"]["psnr_hole"] < rep["mean"]["psnr"] < 100


# ---------------------------------------------------------------- layouts and bad inputs


def test_missing_root_and_wrong_layout(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        discover("davis", tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="JPEGImages/480p"):
        discover("davis", tmp_path / "empty")
    with pytest.raises(DatasetError, match="YouTube-VOS"):
        discover("youtube-vos", tmp_path / "empty")
    with pytest.raises(DatasetError, match="no clips"):
        discover("folder", tmp_path / "empty")
    with pytest.raises(UsageError):
        discover("kinetics", tmp_path / "empty")
    with pytest.raises(DatasetError):
        evaluate("davis", tmp_path / "nope", results=tmp_path)


def _write_clip(d: Path, n=3, size=(40, 24), value=90):
    import cv2

    d.mkdir(parents=True)
    for i in range(n):
        cv2.imwrite(str(d / f"{i:05d}.png"), np.full((size[1], size[0], 3), value + i, np.uint8))


def test_youtube_vos_and_folder_layouts(tmp_path):
    import av

    _write_clip(tmp_path / "yt" / "train" / "JPEGImages" / "abc123")
    _write_clip(tmp_path / "yt" / "train" / "JPEGImages" / "def456")
    assert [c.name for c in discover("youtube-vos", tmp_path / "yt")] == ["abc123", "def456"]
    _write_clip(tmp_path / "yt2" / "JPEGImages" / "x1")
    assert [c.name for c in discover("youtube-vos", tmp_path / "yt2")] == ["x1"]
    assert len(discover("youtube-vos", tmp_path / "yt", max_videos=1)) == 1

    # folder: one frame folder + one video file
    _write_clip(tmp_path / "f" / "frames_clip")
    with av.open(str(tmp_path / "f" / "vid.mp4"), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 48, 32, "yuv420p"
        for i in range(4):
            fr = av.VideoFrame.from_ndarray(np.full((32, 48, 3), 60 + 20 * i, np.uint8), format="rgb24")
            for p in s.encode(fr):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    clips = discover("folder", tmp_path / "f")
    assert [c.name for c in clips] == ["frames_clip", "vid"]
    v = read_frames(tmp_path / "f" / "vid.mp4", size=(32, 16))
    assert v.shape == (4, 16, 32, 3) and v.dtype == np.uint8
    # a video result is matched by name and scored
    rep = evaluate("folder", tmp_path / "f", results=tmp_path / "f", metrics=["psnr"], size=(32, 16))
    assert rep["mean"]["psnr"] == 100.0


def test_results_missing_a_clip(tmp_path):
    _write_clip(tmp_path / "f" / "a")
    _write_clip(tmp_path / "f" / "b")
    _write_clip(tmp_path / "r" / "a")
    with pytest.raises(DatasetError, match="no result for 1 of 2"):
        evaluate("folder", tmp_path / "f", results=tmp_path / "r", metrics=["psnr"], size=(40, 24))
    with pytest.raises(UsageError, match="unknown metric"):
        evaluate("folder", tmp_path / "f", results=tmp_path / "f", metrics=["fvd"], size=(40, 24))


def test_mask_folder(tmp_path):
    import cv2

    _write_clip(tmp_path / "f" / "a", n=3)
    res = tmp_path / "r" / "a"
    _write_clip(res, n=3, value=100)  # +10 everywhere
    md = tmp_path / "m" / "a"
    md.mkdir(parents=True)
    m = np.zeros((24, 40), np.uint8)
    m[5:10, 5:20] = 255
    cv2.imwrite(str(md / "00000.png"), m)  # one mask for all frames (last one repeated)
    rep = evaluate("folder", tmp_path / "f", results=tmp_path / "r", metrics=["psnr"], size=(40, 24),
                   masks=EvalMasks(source=str(tmp_path / "m")))
    assert rep["videos"][0]["hole_ratio"] == pytest.approx(75 / 960)
    assert rep["mean"]["psnr_hole"] == pytest.approx(10 * math.log10(255**2 / 100))
    with pytest.raises(DatasetError, match="mask folder"):
        evaluate("folder", tmp_path / "f", results=tmp_path / "r", masks=EvalMasks(source=str(tmp_path / "nomasks")))


# ---------------------------------------------------------------- CLI


def _app():
    import typer

    from tsam_cli.cli.eval import eval_command, masks_app

    app = typer.Typer()
    app.command("eval")(eval_command)
    app.add_typer(masks_app, name="masks")
    return app


def test_cli_eval(tmp_path):
    from typer.testing import CliRunner

    root = _make_davis(tmp_path / "davis")
    _noisy_results(root, tmp_path / "res")
    r = CliRunner().invoke(_app(), [
        "eval", "--dataset", "davis", "--root", str(root), "--results", str(tmp_path / "res"),
        "--metrics", "psnr,ssim", "--metrics", "vfid", "--size", "108x60", "--mask-kind", "curve",
        "--seed", "1", "--json", str(tmp_path / "o.json"), "--csv", str(tmp_path / "o.csv"),
        "--i3d", str(tmp_path / "no_i3d.pt"), "--max-videos", "1", "--quiet",
    ])
    assert r.exit_code == 0, r.output
    assert "clip0" in r.output and "mean" in r.output and "VFID: unavailable" in r.output
    data = json.loads((tmp_path / "o.json").read_text())
    assert len(data["videos"]) == 1 and data["masks"]["kind"] == "curve" and data["metrics"] == ["psnr", "ssim", "vfid"]
    assert (tmp_path / "o.csv").is_file()


def test_cli_errors_are_typed(tmp_path):
    from typer.testing import CliRunner

    r = CliRunner().invoke(_app(), ["eval", "--root", str(tmp_path / "missing"), "--results", str(tmp_path)])
    assert isinstance(r.exception, DatasetError)
    r = CliRunner().invoke(_app(), ["eval", "--root", str(tmp_path), "--size", "big"])
    assert isinstance(r.exception, UsageError)


def test_cli_masks_generate(tmp_path):
    import cv2
    from typer.testing import CliRunner

    out = tmp_path / "m"
    args = ["masks", "generate", "--kind", "curve", "--frames", "4", "--size", "96x64", "--seed", "3",
            "--area", "20-30", "-o", str(out)]
    r = CliRunner().invoke(_app(), args)
    assert r.exit_code == 0, r.output
    files = sorted(out.glob("*.png"))
    assert len(files) == 4
    m = np.stack([cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files])
    assert set(np.unique(m)) <= {0, 255} and 0.17 <= (m > 0).mean() <= 0.33
    r2 = CliRunner().invoke(_app(), args)  # refuses to overwrite
    assert r2.exit_code != 0
    r3 = CliRunner().invoke(_app(), args + ["--overwrite"])
    assert r3.exit_code == 0
    m2 = np.stack([cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in sorted(out.glob("*.png"))])
    assert np.array_equal(m, m2)  # same seed, same masks


def test_metrics_listed_after_one_option(tmp_path, capsys):
    """`tsam eval --metrics psnr ssim` (space-separated, as in the docs) works through the real CLI."""
    import json

    import cv2
    from conftest import translating_video

    from tsam_cli.cli.main import main

    seq = tmp_path / "ds" / "JPEGImages" / "480p" / "clip"
    seq.mkdir(parents=True)
    for i, f in enumerate(translating_video(T=6, h=48, w=64)):
        cv2.imwrite(str(seq / f"{i:05d}.jpg"), f[..., ::-1])
    out = tmp_path / "r.json"
    code = main(["eval", "--dataset", "davis", "--root", str(tmp_path / "ds"), "--size", "64x48",
                 "--metrics", "psnr", "ssim", "--json", str(out), "-q"])
    assert code == 0, capsys.readouterr().err
    report = json.loads(out.read_text())
    assert {"psnr", "ssim"} <= set(report["mean"]) and "vfid" not in report["mean"]
    assert main(["eval", "--dataset", "davis", "--root", str(tmp_path / "ds"), "--metrics", "psnr", "lpipsx"]) == 2
    assert "lpipsx" in capsys.readouterr().err


def test_frames_are_read_in_natural_order(tmp_path):
    """Unpadded frame numbers (1, 2, ..., 10): eval must pair frame 2 with ground truth 2, not 10."""
    from conftest import write_pngs

    from tsam_cli.eval.evaluate import read_frames, read_masks

    frames = np.stack([np.full((8, 8, 3), 20 * i, np.uint8) for i in range(11)])
    write_pngs(tmp_path / "f", frames, name="{}.png")
    got = read_frames(tmp_path / "f")
    assert [int(g[0, 0, 0]) for g in got] == [20 * i for i in range(11)]
    masks = np.zeros((11, 8, 8), np.uint8)
    masks[2, :2] = 255  # only the frame numbered 2 has a hole
    write_pngs(tmp_path / "m", masks, name="{}.png")
    m = read_masks(tmp_path / "m", 11, (8, 8))
    assert m[2].any() and not m[10].any()
