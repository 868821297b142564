"""Output paths: what ``-o`` may be, and how an output replaces what was there, safely.

The rules (``docs/design.md``, "Safety rules"):

* ``-o`` is a new path, an existing **regular file** with a video suffix, or an existing
  folder that holds only frames as tsam writes them (``00000.png`` ...) or nothing. Symbolic
  links, device nodes, FIFOs and sockets are refused, whatever ``--overwrite`` says.
* ``-o`` is never one of the protected paths (input video or frame folder, mask, mask
  folder, weight file), nor a folder containing one of them, nor the current folder or one
  of its parents. Paths are compared by device + inode as well as by resolved name, so
  symbolic links, hard links, ``..`` and case variants on case-insensitive filesystems
  are all caught.
* An exclusive lock (``flock`` on ``.NAME.tsam-lock`` beside the target) is held from the
  check to the end of the run: a second run with the same ``-o`` stops at once (exit 5).
* The result is written to a hidden temporary ``.NAME.tsam-PID.tmp...`` beside the target.
  :meth:`OutputTarget.commit` swaps it in with signals held back: a file is replaced by
  one ``rename``; a folder is renamed aside (``.NAME.tsam-PID.old``), the new one renamed
  in, the old one deleted. Whatever interrupts the run, exactly one complete version is
  left, and a later run removes temporaries whose process is gone (and restores an old
  folder that a killed swap left aside).
* Final outputs get the normal mode for the user's umask (0644 / 0755 with umask 022).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import stat
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tsam_cli import hooks
from tsam_cli.errors import STOP_SIGNALS, Interrupted, OutputError, signal_number

VIDEO_OUT_SUFFIXES = {".mp4", ".mov", ".m4v", ".mkv"}
#: names tsam gives the frames of a folder output (``VideoWriter``): ``00000.png`` ...
FRAME_NAME = re.compile(r"^\d{5,}\.png$")
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no /proc: the set-and-restore trick (start-up, single thread)
    os.umask(mask)
    return mask


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _ancestors_and_self(path: Path) -> list[Path]:
    resolved = path.resolve()
    return [resolved, *resolved.parents]


def _contains(outer: Path, inner: Path) -> bool:
    """True when ``outer`` is ``inner`` or one of its parent folders (by inode and by name)."""
    outer_id = _identity(outer)
    for p in _ancestors_and_self(inner):
        if p == outer.resolve() or (outer_id is not None and _identity(p) == outer_id):
            return True
    return False


def is_frame_folder(folder: Path) -> bool:
    """A folder tsam may replace: empty, or only ``NNNNN.png`` regular files."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return False
    return all(e.is_file(follow_symlinks=False) and FRAME_NAME.match(e.name) for e in entries)


def output_kind(out: Path) -> str:
    """``"folder"`` for a path without suffix (or an existing folder), else ``"file"``.

    Raises OutputError for a suffix tsam cannot write."""
    if out.suffix == "" or (out.is_dir() and not out.is_symlink()):
        return "folder"
    if out.suffix.lower() not in VIDEO_OUT_SUFFIXES:
        raise OutputError(
            f"cannot write {out.suffix!r} files: use -o NAME.mp4, .mov, .mkv, or a folder for PNG frames"
        )
    return "file"


def _labelled(p) -> tuple[str, Path]:
    """``(label, path)`` from a protected entry given as a pair or a bare path."""
    return (p[0], Path(p[1])) if isinstance(p, tuple) else ("an input", Path(p))


def check_output_path(out: Path, protected: list, overwrite: bool) -> str:
    """Refuse an ``-o`` that would destroy data or cannot be written; return its kind.

    Args:
        out: the ``-o`` path as given.
        protected: every input of the run (video, mask, mask folder, weight file), each a
            path or a ``(label, path)`` pair; the label names it in messages ("the input").
        overwrite: ``--overwrite`` was given.
    Returns ``"file"`` or ``"folder"``. Raises :class:`OutputError` (exit 5).
    """
    out = Path(out)
    if str(out) in ("", "."):
        raise OutputError("-o names the current folder: give a new file (out.mp4) or a new folder name")
    if out.is_symlink():
        raise OutputError(f"output {out} is a symbolic link: give the real path, or a new name")
    kind = output_kind(out)
    for what, p in [("the current folder", Path.cwd()), *(_labelled(p) for p in protected)]:
        if _identity(p) is not None and _contains(out, p):
            rel = f"is {what}" if _identity(out) == _identity(p) else f"contains {what} {p}"
            raise OutputError(f"output {out} {rel}, which tsam must not replace: choose another -o path")
    if out.exists():
        _check_replaceable(out, kind, overwrite)
    _check_parent(out)
    return kind


def _check_replaceable(out: Path, kind: str, overwrite: bool) -> None:
    mode = os.lstat(out).st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise OutputError(
            f"output {out} is a device, FIFO or socket, not a file tsam can replace: choose another -o path"
        )
    if kind == "file" and not stat.S_ISREG(mode):
        raise OutputError(f"output {out} exists and is not a regular file: choose another -o path")
    if kind == "folder" and not stat.S_ISDIR(mode):
        raise OutputError(f"output {out} exists and is not a folder: add .mp4 to write a video, or choose another -o path")
    if not overwrite:
        raise OutputError(f"output {out} already exists: pass --overwrite or choose another -o path")
    if kind == "folder" and not is_frame_folder(out):
        raise OutputError(
            f"output folder {out} holds files tsam did not write (only 00000.png ... may be replaced): "
            "choose an empty or new folder"
        )


def _check_parent(out: Path) -> None:
    parent = out.parent
    if not parent.exists():
        raise OutputError(f"output folder {parent} does not exist: create it first")
    if not parent.is_dir():
        raise OutputError(f"{parent} is not a folder: choose an -o path inside a folder")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"output folder {parent} is not writable: choose another -o path")


def describe_os_error(exc: OSError) -> str:
    """A short cause for an OSError while writing, naming full disks and read-only filesystems."""
    code = getattr(exc, "errno", None)
    if code == errno.ENOSPC:
        return "the disk is full: free some space or choose another -o path"
    if code == errno.EROFS:
        return "the filesystem is read-only: choose another -o path"
    if code == errno.EDQUOT:
        return "the disk quota is exhausted: free some space or choose another -o path"
    if code == errno.EFBIG:
        return "the file is larger than allowed (file size limit): choose another -o path"
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied: choose another -o path"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"{text}: check the -o location"


@contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT/SIGTERM/SIGHUP back for the block; deliver the first one after it.

    Done with Python-level handlers, not ``pthread_sigmask``: a mask only covers the
    calling thread, and the kernel hands a process signal to any thread that does not
    block it (decoder, progress-bar and BLAS threads), after which CPython still runs the
    handler in the main thread. Outside the main thread this is a no-op (signals are
    only ever handled there).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {s: signal.getsignal(s) for s in _SIGNALS}
    for s in _SIGNALS:
        signal.signal(s, lambda signum, _frame: pending.append(signum))
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if pending:
            signal.raise_signal(pending[0])  # now handled as usual, with the swap done


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class OutputTarget:
    """The one way tsam writes ``-o``: checked, locked, written aside, swapped in atomically.

    Usage::

        with OutputTarget(out, protected, overwrite) as target:
            write everything into target.tmp   # a new empty file or folder
            target.commit()                     # swap; after this the output is complete
        # leaving the block without commit() removes target.tmp

    ``committed`` tells, after an interruption, whether the output on disk is the new one.
    """

    def __init__(self, out: str | os.PathLike, protected: list, overwrite: bool) -> None:
        self.path = Path(out)
        self.protected = list(protected)
        self.overwrite = overwrite
        self.kind = check_output_path(self.path, self.protected, overwrite)
        self.tmp: Path | None = None
        self.committed = False
        self._lock_fd: int | None = None
        self._lock_path = self.path.parent / f".{self.path.name}.tsam-lock"
        self._umask = current_umask()

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> OutputTarget:
        self._lock()
        try:
            self._recover_stale()
            check_output_path(self.path, self.protected, self.overwrite)  # again, now under the lock
            self._make_tmp()
            hooks.pause_point("target-open")
        except BaseException:  # a signal may come right after the temporary was made
            self._remove(self.tmp)
            self.tmp = None
            self._unlock()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if not self.committed:
                self._remove(self.tmp)
        finally:
            self.tmp = None
            self._unlock()
        if exc is not None and isinstance(exc, STOP_SIGNALS):
            raise self.interrupted(signal_number(exc)) from None

    def interrupted(self, signum: int) -> Interrupted:
        """The one-line report of a signal, true to what is on disk."""
        if self.committed:
            return Interrupted(f"interrupted after {self.path} was complete: the new output is kept", signum)
        before = "the existing output is unchanged" if self.path.exists() else "nothing was written"
        return Interrupted(f"interrupted before {self.path} was complete: {before}", signum)

    def _prefix(self) -> str:
        return f".{self.path.name}.tsam-"

    def _make_tmp(self) -> None:
        parent, prefix = self.path.parent, f"{self._prefix()}{os.getpid()}."
        try:
            if self.kind == "folder":
                self.tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=parent))
            else:
                fd, name = tempfile.mkstemp(prefix=prefix, suffix=f".tmp{self.path.suffix}", dir=parent)
                os.close(fd)
                self.tmp = Path(name)
        except OSError as exc:
            raise OutputError(f"cannot write to {parent}: {describe_os_error(exc)}") from None

    # -- locking -----------------------------------------------------------------------
    def _lock(self) -> None:
        import fcntl

        while True:
            try:
                fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666 & ~self._umask)
            except OSError as exc:
                raise OutputError(f"cannot write to {self.path.parent}: {describe_os_error(exc)}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise OutputError(
                    f"another tsam run is writing {self.path} right now: wait for it to finish or choose another -o path"
                ) from None
            if _identity(self._lock_path) == (os.fstat(fd).st_dev, os.fstat(fd).st_ino):
                self._lock_fd = fd
                return
            os.close(fd)  # the lock file was removed by the previous owner meanwhile: take the new one

    def _unlock(self) -> None:
        if self._lock_fd is None:
            return
        try:
            os.unlink(self._lock_path)  # unlink before unlocking: a waiter re-checks the inode
        except OSError:
            pass
        os.close(self._lock_fd)
        self._lock_fd = None

    def _recover_stale(self) -> None:
        """Under the lock: remove temporaries of dead runs; put back an old output a killed swap left aside."""
        pattern = re.compile(re.escape(self._prefix()) + r"(\d+)\.(.*)$")
        for entry in os.scandir(self.path.parent):
            m = pattern.match(entry.name)
            if not m or _pid_alive(int(m.group(1))) and int(m.group(1)) != os.getpid():
                continue
            stale = Path(entry.path)
            if m.group(2) == "old" and not self.path.exists():
                os.replace(stale, self.path)  # the swap died between its two renames: the old output comes back
            elif m.group(2) != "lock":
                self._remove(stale)

    # -- the swap ----------------------------------------------------------------------
    def commit(self) -> None:
        """Swap the finished temporary in; signals are held back until the output is complete."""
        if self.tmp is None:
            raise RuntimeError("commit() outside the with-block")
        self._set_modes(self.tmp)
        with signals_held():
            hooks.pause_point("commit")
            try:
                aside = self._swap()
                self.committed = True
                hooks.pause_point("committed")
                self._remove(aside)
            except OSError as exc:
                raise OutputError(f"cannot write {self.path}: {describe_os_error(exc)}") from None

    def _swap(self) -> Path | None:
        if self.kind == "file" or not self.path.exists():
            if self.kind == "folder" and self.path.exists():
                raise OutputError(f"{self.path} appeared during the run: choose another -o path")
            os.replace(self.tmp, self.path)
            return None
        if not is_frame_folder(self.path):  # changed since the check
            raise OutputError(f"output folder {self.path} now holds files tsam did not write: nothing was replaced")
        aside = self.path.parent / f"{self._prefix()}{os.getpid()}.old"
        os.replace(self.path, aside)
        hooks.pause_point("swap")
        os.replace(self.tmp, self.path)
        return aside

    def _set_modes(self, path: Path) -> None:
        """Temporaries are created private (0600/0700); the output gets the umask's normal mode."""
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~self._umask)

    @staticmethod
    def _remove(path: Path | None) -> None:
        """Best effort: a failure to clean up must never hide the error that caused it."""
        if path is None:
            return
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        except OSError:
            pass
