"""Helpers of the safety tests: run the real CLI in-process or as a child, pause it at a named
point (``tsam_cli.hooks``) to signal it, and places that fail on write (read-only, full).

Nothing here depends on timing: a child is signalled only after it created ``<point>.paused``.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT

from tsam_cli.cli.main import main


def run(argv, capsys):
    """``tsam ARGV`` in this process; returns (exit code, stderr)."""
    code = main([str(a) for a in argv])
    _, err = capsys.readouterr()
    return code, err


def one_error_line(err: str) -> bool:
    """Exactly one ``error:`` line, last, and no traceback (progress bars may come before it)."""
    lines = [line for line in err.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error")]
    return len(errors) == 1 and lines[-1] == errors[0] and "Traceback" not in err


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` with its bytes (to check nothing changed)."""
    return {p: p.read_bytes() for p in Path(folder).rglob("*") if p.is_file()}


def leftovers(folder: Path) -> list[str]:
    """tsam's temporaries, locks and set-aside folders left in ``folder``."""
    return sorted(p.name for p in Path(folder).iterdir() if ".tsam-" in p.name and p.name != ".tsam-output")


def cli(args, umask=None, pause=None, pause_dir=None, wait=True, cwd=ROOT, env=None, preexec=None, **popen):
    """``tsam ARGS`` as a child process (the console entry point, signal handlers included)."""
    env = {**os.environ, **(env or {})}
    if pause:
        env.update(TSAM_TEST_PAUSE_AT=pause, TSAM_TEST_PAUSE_DIR=str(pause_dir))

    def pre():
        if umask is not None:
            os.umask(umask)
        if preexec is not None:
            preexec()

    cmd = [sys.executable, "-m", "tsam_cli.entry", *[str(a) for a in args]]
    if wait:
        popen.setdefault("capture_output", "stdout" not in popen and "stderr" not in popen)
        return subprocess.run(cmd, cwd=cwd, env=env, text=True, preexec_fn=pre, timeout=600, **popen)
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=pre)


def wait_for(path: Path, proc) -> None:
    """Until the child reached its pause point (or died: then fail with its stderr)."""
    deadline = time.monotonic() + 120  # a safety net only; the child normally gets there in seconds
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"child exited {proc.returncode} before {path.name}: {proc.stderr.read()}")
        assert time.monotonic() < deadline, f"child never reached {path.name}"
        time.sleep(0.01)


def interrupt_at(point, sig, args, tmp_path, **kw):
    """Run tsam, signal it at ``point``, let it go on; returns (returncode, stderr)."""
    hooks = tmp_path / "hooks"
    hooks.mkdir(exist_ok=True)
    for f in hooks.iterdir():
        f.unlink()
    p = cli(args, pause=point, pause_dir=hooks, wait=False, **kw)
    wait_for(hooks / f"{point}.paused", p)
    p.send_signal(sig)
    (hooks / f"{point}.resume").touch()
    _, err = p.communicate(timeout=600)
    return p.returncode, err


def no_file_writes() -> None:
    """preexec: every write to a regular file fails (EFBIG), as on a full disk; pipes still work."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def readonly_dir(path: Path) -> Path:
    """``path`` made as a folder that refuses new files; skips where that cannot be arranged
    (root ignores permission bits, so a read-only tmpfs is mounted there)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        path.chmod(0o555)
        return path
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot make a read-only folder here (root without mount)")
    return path


def unmount(path: Path) -> None:
    """Undo :func:`readonly_dir` (a no-op where nothing was mounted)."""
    if os.geteuid() == 0:
        subprocess.run(["umount", str(path)], capture_output=True)
    else:
        path.chmod(0o755)


def full_dir(path: Path) -> Path:
    """``path`` made as a folder on a full filesystem (a small tmpfs filled up); skips where that
    cannot be arranged (mounting needs root)."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(path)], capture_output=True)
    if os.geteuid() != 0 or done.returncode != 0:
        pytest.skip("cannot make a full filesystem here (mounting needs root)")
    try:
        with open(path / ".filler", "wb") as fh:
            while True:
                fh.write(b"\0" * 4096)
                fh.flush()
    except OSError:
        pass
    return path
