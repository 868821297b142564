"""Hostile caches and paths for ``tsam weights``: nothing a user put there is lost or written through.

The rules checked here (README "Safety", docs/design.md "Safety rules"):

* a file in the weights cache is never deleted; one with a wrong checksum is refused with one line
  naming it, and ``--force`` replaces it only with a verified download;
* only a file this very run downloaded may be deleted (a download that will not load);
* tsam writes only its own ``<file>.part`` (never through a link, never a folder of that name);
* ``weights convert`` writes through the one output layer: never the source, ``.safetensors``
  only, the umask's mode, one line for a bad source (exit 6) or output (exit 5), nothing left
  behind after a full disk or a signal.

Downloads go to a real HTTP server on 127.0.0.1 (tests/test_weights.py); the cache lives under
tmp_path (TSAM_HOME). No test waits on timing: children are signalled at named pause points.
"""

from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import test_weights
import torch
from cli_helpers import interrupt_at, leftovers, one_error_line, readonly_dir, run, unmount
from conftest import ROOT, isolated_weights
from test_weights import PAYLOAD, PAYLOAD_SHA, _url_spec

import tsam_cli.model.official as official
import tsam_cli.model.tsam_format as tsam_format
from tsam_cli import weights
from tsam_cli.errors import WeightsError
from tsam_cli.model.config import ModelConfig
from tsam_cli.model.generator import TSAMGenerator
from tsam_cli.ui import NullReporter
from tsam_cli.weights import OFFICIAL, Source, WeightSpec

server = test_weights.server  # the same local HTTP server fixture as test_weights.py

TINY = ModelConfig(name="tiny", stem_width=8, widths=(4, 8, 8, 8), depths=(1, 1, 1, 1), decoder_width=16)


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch) -> Path:
    """TSAM_HOME under tmp_path, no proxies, no back-off sleeps, a registry copy."""
    return isolated_weights(tmp_path, monkeypatch)


def _user_file(home: Path, name: str = "test-url.bin", body: bytes = b"the user's own copy") -> Path:
    """A file the user put in the cache by hand (its checksum does not match the registry)."""
    dest = home / "weights" / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(body)
    return dest


def _strays(folder: Path) -> list[str]:
    """Unfinished downloads and temporaries left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part") or ".tsam-" in p.name)


# --------------------------------------------------------------------------------------
# a file in the cache is never deleted
# --------------------------------------------------------------------------------------


def test_download_keeps_a_user_file_with_a_wrong_checksum(server, home, capsys):
    """Before: the file was deleted first, then the download tried; offline it was simply gone."""
    _url_spec(server)
    dest = _user_file(home)
    code, err = run(["weights", "download", "test-url"], capsys)
    assert code == 6 and one_error_line(err), err
    assert str(dest) in err and "--force" in err and "move it" in err
    assert dest.read_bytes() == b"the user's own copy" and server.requests == []


def _register(server, path: str, sha: str | None = PAYLOAD_SHA) -> WeightSpec:
    """``test-url`` (cached as ``test-url.bin``) served from ``path`` on the test server."""
    return weights.register(WeightSpec(name="test-url", source=Source("url", f"{server.base}{path}"),
                                       filename="test-url.bin", sha256=sha), replace=True)


def test_force_replaces_a_user_file_only_with_a_verified_download(server, home):
    server.files["/ok.bin"] = PAYLOAD
    dest = _user_file(home)
    _register(server, "/ok.bin", sha="0" * 64)  # what the server sends fails the checksum
    with pytest.raises(WeightsError, match="checksum mismatch"):
        weights.download("test-url", force=True)
    assert dest.read_bytes() == b"the user's own copy" and _strays(dest.parent) == []
    _register(server, "/gone.bin")  # 404: a failed download keeps the file too
    with pytest.raises(WeightsError, match="could not download"):
        weights.download("test-url", force=True)
    assert dest.read_bytes() == b"the user's own copy" and _strays(dest.parent) == []
    _register(server, "/ok.bin")  # the real file, verified: now it replaces the user's
    old = os.umask(0o022)
    try:
        assert weights.download("test-url", force=True).read_bytes() == PAYLOAD
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o644 and _strays(dest.parent) == []


def test_resolve_with_download_never_replaces_a_corrupt_file(server, home):
    """``resolve(name, download=True)`` (``inpaint --model NAME``) used to delete and replace it."""
    _url_spec(server)
    dest = _user_file(home)
    with pytest.raises(WeightsError, match="tsam did not delete it"):
        weights.resolve("test-url", download=True)
    assert dest.read_bytes() == b"the user's own copy" and server.requests == []


def test_a_file_that_appears_during_the_download_wins(server, home, monkeypatch):
    """The verified download is put in place with link(), which never replaces: a file the user
    saved there meanwhile is kept (before: os.replace overwrote it)."""
    _url_spec(server)
    real_verify = weights._verify_part

    def verify_then_user_saves(spec, part):
        real_verify(spec, part)
        (part.parent / "test-url.bin").write_bytes(b"saved by hand meanwhile")

    monkeypatch.setattr(weights, "_verify_part", verify_then_user_saves)
    with pytest.raises(WeightsError, match="appeared while tsam was downloading"):
        weights.download("test-url")
    assert (home / "weights" / "test-url.bin").read_bytes() == b"saved by hand meanwhile"
    assert _strays(home / "weights") == []


def _serve_official(server, body: bytes) -> Path:
    server.files["/tsam_official.pth"] = body
    weights.register(WeightSpec(name=OFFICIAL, source=Source("url", f"{server.base}/tsam_official.pth"),  # type: ignore[attr-defined]
                                filename="tsam_official.pth"), replace=True)
    return weights.target_path(OFFICIAL)


def test_only_the_file_this_run_downloaded_is_deleted(server, home, monkeypatch):
    """A download that will not load is deleted, but not a file put in its place meanwhile."""
    pth = _serve_official(server, b"\x80\x02 not a checkpoint " * 50)

    def user_replaces_it_then_load_fails(path, **_kw):
        tmp = Path(path).with_name("user.tmp")  # the user saves their own copy under the same name
        tmp.write_bytes(b"the user's checkpoint")
        os.replace(tmp, path)
        raise WeightsError(f"cannot read {path}: corrupt")

    monkeypatch.setattr(official, "load_official_generator", user_replaces_it_then_load_fails)
    with pytest.raises(WeightsError, match="delete or replace"):
        weights.official_weights(download=True, reporter=NullReporter())
    assert pth.read_bytes() == b"the user's checkpoint"


def test_a_foreign_file_at_the_converted_path_is_never_replaced(server, home, monkeypatch):
    """The cache's ``tsam_official.safetensors`` is replaced only when tsam wrote it (its stamp)."""
    pth = _serve_official(server, b"unused")
    pth.parent.mkdir(parents=True)
    pth.write_bytes(b"a checkpoint")
    converted = tsam_format.save_generator(TSAMGenerator(TINY).eval(), weights.converted_path())  # no stamp
    before = converted.read_bytes()
    monkeypatch.setattr(official, "load_official_generator", lambda p, **kw: TSAMGenerator(TINY).eval())
    warnings: list[str] = []
    rep = NullReporter()
    rep.warn = warnings.append  # type: ignore[method-assign]
    assert weights.official_weights(reporter=rep) == pth
    assert converted.read_bytes() == before and "not written by tsam" in warnings[0]


# --------------------------------------------------------------------------------------
# the cache location and what sits in it
# --------------------------------------------------------------------------------------


def test_tsam_home_that_is_a_file_is_one_line_everywhere(server, home, monkeypatch, capsys):
    _url_spec(server)
    home.parent.mkdir(parents=True, exist_ok=True)
    home.write_bytes(b"not a folder")
    for argv in (["weights", "download", "test-url"], ["weights", "list"]):
        code, err = run(argv, capsys)
        assert code == 6 and one_error_line(err), err
        assert f"TSAM_HOME={home} is a file: set it to a folder" in err
    with pytest.raises(WeightsError, match="is a file"):
        weights.resolve("test-url")
    assert home.read_bytes() == b"not a folder" and server.requests == []


def test_unreadable_cache_is_one_line(server, home, monkeypatch, capsys):
    """Simulated with os.access (root reads any folder); the table is not shown with false rows."""
    folder = home / "weights"
    folder.mkdir(parents=True)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == folder else real_access(p, mode, **kw))
    code, err = run(["weights", "list"], capsys)
    assert code == 6 and one_error_line(err) and "cannot be read" in err and "TSAM_HOME" in err, err


def test_read_only_tsam_home_is_one_line(server, home, capsys):
    _url_spec(server)
    readonly_dir(home)
    try:
        code, err = run(["weights", "download", "test-url"], capsys)
    finally:
        unmount(home)
    assert code == 6 and one_error_line(err) and str(home / "weights") in err and "TSAM_HOME" in err, err


def test_a_name_given_twice_prints_one_path(server, home, capsys):
    _url_spec(server)
    from tsam_cli.cli.main import main

    assert main(["weights", "download", "test-url", "test-url", "--force", "-q"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [str(home / "weights" / "test-url.bin")] and len(server.requests) == 1


def test_unknown_name_fails_before_any_download(server, home, capsys):
    _url_spec(server)
    code, err = run(["weights", "download", "test-url", "no-such-weights"], capsys)
    assert code == 6 and one_error_line(err) and "no-such-weights" in err and "known weights" in err
    assert server.requests == []


def test_a_cache_folder_linked_elsewhere_works(server, home, tmp_path):
    """Moving the cache to another disk with a symbolic link is a normal set-up."""
    _url_spec(server)
    elsewhere = tmp_path / "other-disk"
    elsewhere.mkdir()
    home.mkdir()
    (home / "weights").symlink_to(elsewhere)
    assert weights.download("test-url").read_bytes() == PAYLOAD
    assert (elsewhere / "test-url.bin").read_bytes() == PAYLOAD


def test_a_cached_file_that_is_a_link_is_never_replaced(server, home, tmp_path):
    _url_spec(server)
    mine = tmp_path / "mine.bin"
    mine.write_bytes(PAYLOAD)
    link = home / "weights" / "test-url.bin"
    link.parent.mkdir(parents=True)
    link.symlink_to(mine)
    assert weights.download("test-url") == link and server.requests == []  # a good file behind it: used
    with pytest.raises(WeightsError, match="symbolic link"):
        weights.download("test-url", force=True)
    mine.write_bytes(b"changed")
    with pytest.raises(WeightsError, match="symbolic link"):
        weights.download("test-url")
    assert link.is_symlink() and mine.read_bytes() == b"changed" and server.requests == []


def test_a_part_file_that_is_a_link_is_never_written_through(server, home, tmp_path):
    """Before: the download was appended (Range) to whatever file the link pointed at."""
    _url_spec(server)
    victim = tmp_path / "victim.bin"
    victim.write_bytes(b"precious")
    part = home / "weights" / "test-url.bin.part"
    part.parent.mkdir(parents=True)
    part.symlink_to(victim)
    with pytest.raises(WeightsError, match="not a regular file") as info:
        weights.download("test-url")
    assert "\n" not in str(info.value)
    assert victim.read_bytes() == b"precious" and part.is_symlink() and server.requests == []


@pytest.mark.parametrize("name", ["test-url.bin.part", "test-url.bin"])
def test_folders_where_files_belong_are_one_line_and_kept(server, home, name, capsys):
    _url_spec(server)
    folder = home / "weights" / name
    folder.mkdir(parents=True)
    (folder / "keep.txt").write_text("mine")
    code, err = run(["weights", "download", "test-url"], capsys)
    assert code == 6 and one_error_line(err) and str(folder) in err and "move it away" in err, err
    assert (folder / "keep.txt").read_text() == "mine" and server.requests == []
    if name == "test-url.bin":
        with pytest.raises(WeightsError, match="not a file"):
            weights.resolve("test-url")  # before: "not downloaded yet"


def test_disk_full_during_download_loses_nothing(server, home, monkeypatch, capsys):
    """The write fails half-way (ENOSPC): one line, the good cached file kept, no .part left."""
    _url_spec(server)
    weights.download("test-url")
    dest = home / "weights" / "test-url.bin"
    real_write = weights._write_all

    def full(fd, data):
        real_write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(weights, "_write_all", full)
    code, err = run(["weights", "download", "test-url", "--force", "-q"], capsys)
    assert code == 6 and one_error_line(err) and "disk is full" in err and "TSAM_HOME" in err, err
    assert dest.read_bytes() == PAYLOAD and _strays(dest.parent) == []


def test_file_size_limit_during_download_is_one_line_in_a_real_process(server, home):
    """A real write failure (EFBIG under RLIMIT_FSIZE), in a child running the real CLI."""
    script = textwrap.dedent(f"""
        import sys
        from tsam_cli import weights
        from tsam_cli.weights import Source, WeightSpec
        weights.register(WeightSpec(name="big", source=Source("url", "{server.base}/big.bin"), filename="big.bin"))
        from tsam_cli.cli.main import main
        sys.exit(main(["weights", "download", "big", "-q"]))
    """)
    server.files["/big.bin"] = PAYLOAD

    def limit():
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    env = {**os.environ, "TSAM_HOME": str(home), "no_proxy": "*", "NO_PROXY": "*"}
    r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                       preexec_fn=limit, timeout=300)
    assert r.returncode == 6 and one_error_line(r.stderr) and "size limit" in r.stderr, r.stderr
    assert _strays(home / "weights") == [] and not (home / "weights" / "big.bin").exists()


# --------------------------------------------------------------------------------------
# weights convert
# --------------------------------------------------------------------------------------


@pytest.fixture
def tiny_convert(monkeypatch):
    """``load_official_generator`` gives a tiny model: the output path is what is tested here."""
    monkeypatch.setattr(official, "load_official_generator", lambda p, **kw: TSAMGenerator(TINY).eval())


def test_convert_never_writes_its_source(tmp_path, tiny_convert, capsys):
    """Before: ``-o SRC --overwrite`` replaced the checkpoint with the conversion."""
    src = tmp_path / "ckpt.safetensors"
    src.write_bytes(b"the checkpoint")
    os.link(src, tmp_path / "hard.safetensors")
    (tmp_path / "soft.safetensors").symlink_to(src)
    for out in (src, tmp_path / "hard.safetensors", tmp_path / "soft.safetensors", tmp_path / "." / src.name):
        code, err = run(["weights", "convert", src, "-o", out, "--overwrite"], capsys)
        assert code == 5 and one_error_line(err), err
    assert src.read_bytes() == b"the checkpoint" and leftovers(tmp_path) == []


def test_convert_output_gets_the_umask_mode(tmp_path, tiny_convert, capsys):
    """Before: 0600 (the safetensors writer makes private files)."""
    src = tmp_path / "ckpt.pth"
    src.write_bytes(b"x")
    out = tmp_path / "out.safetensors"
    old = os.umask(0o022)
    try:
        assert run(["weights", "convert", src, "-o", out], capsys)[0] == 0
        os.umask(0o027)
        assert run(["weights", "convert", src, "-o", out, "--overwrite"], capsys)[0] == 0
        assert stat.S_IMODE(os.stat(out).st_mode) == 0o640
        os.umask(0o022)
        assert run(["weights", "convert", src, "-o", out, "--overwrite"], capsys)[0] == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o644
    assert tsam_format.load_generator(out).config == TINY and leftovers(tmp_path) == []


@pytest.mark.parametrize("out_name,needle", [
    ("out.pth", "use a name ending in .safetensors"),
    ("out", "use a name ending in .safetensors"),
    ("folder", "is a folder"),
    ("missing/out.safetensors", "does not exist"),
])
def test_convert_bad_output_is_exit_5(tmp_path, tiny_convert, out_name, needle, capsys):
    src = tmp_path / "ckpt.pth"
    src.write_bytes(b"x")
    (tmp_path / "folder").mkdir()
    code, err = run(["weights", "convert", src, "-o", tmp_path / out_name], capsys)
    assert code == 5 and one_error_line(err) and needle in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pth", "folder"]


def test_convert_into_a_read_only_folder_is_exit_5(tmp_path, tiny_convert, capsys):
    src = tmp_path / "ckpt.pth"
    src.write_bytes(b"x")
    ro = readonly_dir(tmp_path / "ro")
    try:
        code, err = run(["weights", "convert", src, "-o", ro / "out.safetensors"], capsys)
        assert os.listdir(ro) == []
    finally:
        unmount(ro)
    assert code == 5 and one_error_line(err) and "not writable" in err, err


def test_convert_on_a_full_disk_is_exit_5_and_leaves_nothing(tmp_path, tiny_convert, monkeypatch, capsys):
    src = tmp_path / "ckpt.pth"
    src.write_bytes(b"x")
    out = tmp_path / "out.safetensors"
    out.write_bytes(b"the previous conversion")

    def full(path, data):
        Path(path).write_bytes(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(official, "write_bytes", full)  # the name convert_official calls
    code, err = run(["weights", "convert", src, "-o", out, "--overwrite"], capsys)
    assert code == 5 and one_error_line(err) and "disk is full" in err, err
    assert out.read_bytes() == b"the previous conversion" and leftovers(tmp_path) == []


@pytest.mark.parametrize("what", ["missing", "folder", "garbage", "truncated", "fifo"])
def test_convert_bad_source_is_exit_6(tmp_path, what, capsys):
    src = tmp_path / "src.pth"
    if what == "folder":
        src.mkdir()
    elif what == "garbage":
        src.write_bytes(b"\x80\x02 not a checkpoint at all" * 10)
    elif what == "truncated":
        torch.save({"state_dict": {"generator.x": torch.zeros(1000)}}, src)
        src.write_bytes(src.read_bytes()[:300])
    elif what == "fifo":
        os.mkfifo(src)
    out = tmp_path / "out.safetensors"
    code, err = run(["weights", "convert", src, "-o", out], capsys)
    assert code == 6 and one_error_line(err) and str(src) in err, err
    assert not out.exists() and leftovers(tmp_path) == []


def test_convert_interrupted_while_writing_leaves_nothing(tmp_path):
    """A real child, signalled at the pause point after the bytes are in the temporary."""
    from test_official import write_official_checkpoint

    src = tmp_path / "official.pth"
    write_official_checkpoint(src)
    out = tmp_path / "out.safetensors"
    rc, err = interrupt_at("writing", signal.SIGTERM, ["weights", "convert", src, "-o", out], tmp_path)
    assert rc == 143 and one_error_line(err) and "nothing was written" in err, err
    assert not out.exists() and leftovers(tmp_path) == [] and sorted(os.listdir(tmp_path)) == ["hooks", "official.pth"]


def test_save_generator_gives_umask_modes_and_leaves_nothing(tmp_path, monkeypatch):
    """The trainer's export and the cache conversion: umask mode (before: 0600), a full disk
    is one WeightsError line with the old file kept and no temporary left."""
    out = tmp_path / "g.safetensors"
    old = os.umask(0o027)
    try:
        tsam_format.save_generator(TSAMGenerator(TINY).eval(), out)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o640
    before = out.read_bytes()

    def full(path, data):
        Path(path).write_bytes(data[:100])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tsam_format, "write_bytes", full)  # the name save_generator calls
    with pytest.raises(WeightsError, match="disk is full") as info:
        tsam_format.save_generator(TSAMGenerator(TINY).eval(), out)
    assert "\n" not in str(info.value)
    assert out.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["g.safetensors"]
