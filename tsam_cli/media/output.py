"""Output paths: what ``-o`` may be, and how an output replaces what was there, safely.

The rules (``docs/design.md``, "Safety rules"):

* ``-o`` is a new path, an existing **regular file** with a suffix the command writes, or an
  existing folder that is empty or holds only frames as tsam writes them (``00000.png`` ...)
  and tsam's marker (below). ``-o -`` (standard output), symbolic links, device nodes, FIFOs
  and sockets are refused, whatever ``--overwrite`` says.
* ``-o`` is never one of the protected paths (input video or frame folder, mask, mask
  folder, weight file), nor a folder containing one of them, nor the current folder or one
  of its parents. Paths are compared by device + inode as well as by resolved name, so
  symbolic links, hard links, ``..`` and case variants on case-insensitive filesystems
  are all caught.
* An exclusive lock (``flock`` on ``.NAME.tsam-lock`` beside the target) is held from the
  check to the end of the run: a second run with the same ``-o`` stops at once (exit 5).
* The result is written to a hidden temporary ``.NAME.tsam-PID.RANDOM.tmp[SUFFIX]`` beside
  the target. :meth:`OutputTarget.commit` swaps it in with signals held back: a file is
  replaced by one ``rename``; a folder is renamed aside (``.NAME.tsam-PID.old``), the new one
  renamed in, the old one deleted. Whatever interrupts the run, exactly one complete version
  is left, and a later run removes temporaries whose process is gone (and restores an old
  folder that a killed swap left aside). For a NAME over 200 bytes these names use 16 hex
  digits of its SHA-1 instead, so they still fit the filesystem's 255-byte limit.
* Final outputs get the normal mode for the user's umask (0644 / 0755 with umask 022).
* A folder output carries a hidden marker file (``.tsam-output``): only a folder with that
  marker and nothing but ``NNNNN.png`` frames beside it counts as "written by tsam" and may be
  replaced; a user's own folder of ``00000.png`` ... frames never is.
* The same layer serves every output of every command: videos and frame folders (``-o`` of
  inpaint, preview and the mask makers), reports (``eval --json/--csv``) and
  ``--keep-results`` folders, ``masks generate`` folders, weight files (``weights convert``);
  each caller names the suffixes it writes and the flag that names the path in messages.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import signal
import stat
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tsam_cli import hooks
from tsam_cli.errors import STOP_SIGNALS, Interrupted, OutputError, signal_number

VIDEO_OUT_SUFFIXES = {".mp4", ".mov", ".m4v", ".mkv"}
#: names tsam gives the frames of a folder output (``VideoWriter``): ``00000.png`` ...
FRAME_NAME = re.compile(r"^\d{5,}\.png$")
#: the hidden file tsam puts in every folder output: proof that tsam wrote the folder
MARKER = ".tsam-output"
#: names longer than this (bytes) get hashed temporary and lock names: the temporary adds about
#: 40 bytes to the name and most filesystems allow 255
_LONG_NAME = 200
#: the longest file name (bytes) Linux filesystems allow
_MAX_NAME = 255
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


def file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of ``path`` (links followed), None when it cannot be stat'ed: the same
    file under any name (hard links, symbolic links, ``..``, case variants)."""
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
    outer_id = file_identity(outer)
    for p in _ancestors_and_self(inner):
        if p == outer.resolve() or (outer_id is not None and file_identity(p) == outer_id):
            return True
    return False


def is_frame_folder(folder: Path) -> bool:
    """A folder tsam may replace: empty, or tsam's marker plus only ``NNNNN.png`` regular files."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return False
    if not entries:
        return True
    marker = [e for e in entries if e.name == MARKER]
    if not marker or not marker[0].is_file(follow_symlinks=False):
        return False  # frames without tsam's marker (or a "marker" that is a folder): someone else's
    return all(e.is_file(follow_symlinks=False) and FRAME_NAME.match(e.name) for e in entries if e.name != MARKER)


def output_kind(out: Path, suffixes=VIDEO_OUT_SUFFIXES, folders: bool = True, flag: str = "-o") -> str:
    """``"folder"`` for a path without suffix (or an existing folder) when ``folders``, else
    ``"file"``. Raises OutputError for a suffix not in ``suffixes``."""
    is_dir = out.is_dir() and not out.is_symlink()
    if folders and (out.suffix == "" or is_dir or not suffixes):  # no suffixes: always a folder
        return "folder"
    allowed = ", ".join(sorted(suffixes))
    if is_dir:
        raise OutputError(f"{flag} {out} is a folder: give a file name ending in {allowed}")
    if out.suffix.lower() not in suffixes:
        more = ", or a folder for PNG frames" if folders else ""
        raise OutputError(f"{flag} {out}: cannot write {out.suffix or 'suffix-less'!r} files: use a name ending in {allowed}{more}")
    return "file"


def _labelled(p) -> tuple[str, Path]:
    """``(label, path)`` from a protected entry given as a pair or a bare path."""
    return (p[0], Path(p[1])) if isinstance(p, tuple) else ("an input", Path(p))


def check_output_path(out: Path, protected: list, overwrite: bool, *, suffixes=VIDEO_OUT_SUFFIXES,
                      folders: bool = True, flag: str = "-o") -> str:
    """Refuse an output path that would destroy data or cannot be written; return its kind.

    Args:
        out: the path as given.
        protected: every input of the run (video, mask, mask folder, weight file, dataset), each
            a path or a ``(label, path)`` pair; the label names it in messages ("the input").
        overwrite: ``--overwrite`` was given.
        suffixes: the file suffixes this output may have; ``folders``: a folder of PNG frames
            is allowed too; ``flag``: the option that names the path, for messages.
    Returns ``"file"`` or ``"folder"``. Raises :class:`OutputError` (exit 5).
    """
    out = Path(out)
    if str(out) in ("", "."):
        raise OutputError(f"{flag} names the current folder: give a new file or folder name")
    if str(out) == "-":
        raise OutputError(f"{flag} -: tsam cannot write to standard output: give a file name")
    try:
        return _check_output_path(out, protected, overwrite, suffixes, folders, flag)
    except OSError as exc:  # a name too long for the filesystem, a folder that cannot be read
        raise OutputError(f"output {out}: {describe_os_error(exc, flag)}") from None


def _check_output_path(out: Path, protected: list, overwrite: bool, suffixes, folders: bool, flag: str) -> str:
    if len(os.fsencode(out.name)) > _MAX_NAME:
        raise OutputError(f"output name {out.name[:40]}... is {len(os.fsencode(out.name))} bytes, more than the "
                          f"{_MAX_NAME} a file name may have: choose a shorter {flag} name")
    if out.is_symlink():
        raise OutputError(f"output {out} is a symbolic link: give the real path, or a new name")
    kind = output_kind(out, suffixes, folders, flag)
    inputs = [_labelled(p) for p in protected]
    for what, p in [("the current folder", Path.cwd()), *inputs]:
        if file_identity(p) is not None and _contains(out, p):
            rel = f"is {what}" if file_identity(out) == file_identity(p) else f"contains {what} {p}"
            raise OutputError(f"output {out} {rel}, which tsam must not replace: choose another {flag} path")
    # an input folder (frames, masks, a dataset) is read as a whole: nothing is added to it
    refuse_inside(out, [(what, p) for what, p in inputs if p.is_dir()], flag)
    if out.exists():
        _check_replaceable(out, kind, overwrite, flag)
    _check_parent(out, flag)
    return kind


def refuse_inside(out: Path, folders: list, flag: str = "-o") -> None:
    """Refuse an output inside one of ``folders`` (``(label, path)`` pairs or paths): a dataset,
    a results folder, a mask folder are read as a whole, and a file added to one changes what
    the next read sees. Raises :class:`OutputError` (exit 5)."""
    for what, folder in (_labelled(f) for f in folders):
        if file_identity(folder) is not None and _contains(folder, Path(out)):
            raise OutputError(f"{flag} {out} is inside {what} {folder}, which tsam must not change: "
                              f"choose a {flag} path outside it")


def _check_replaceable(out: Path, kind: str, overwrite: bool, flag: str = "-o") -> None:
    mode = os.lstat(out).st_mode
    other = f"choose another {flag} path"
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise OutputError(f"output {out} is a device, FIFO or socket, not a file tsam can replace: {other}")
    if kind == "file" and not stat.S_ISREG(mode):
        raise OutputError(f"output {out} exists and is not a regular file: {other}")
    if kind == "folder" and not stat.S_ISDIR(mode):
        raise OutputError(f"output {out} exists and is not a folder: add .mp4 to write a video, or {other}")
    if not overwrite:
        raise OutputError(f"output {out} already exists: pass --overwrite or {other}")
    if kind == "folder" and not is_frame_folder(out):
        raise OutputError(
            f"output folder {out} holds files tsam did not write (only a folder tsam wrote, marked by its "
            f"{MARKER} file, may be replaced): choose an empty or new folder"
        )


def _check_parent(out: Path, flag: str = "-o") -> None:
    parent = out.parent
    if not parent.exists():
        raise OutputError(f"output folder {parent} does not exist: create it first")
    if not parent.is_dir():
        raise OutputError(f"{parent} is not a folder: choose an {flag} path inside a folder")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"output folder {parent} is not writable: choose another {flag} path")


def describe_os_error(exc: OSError, flag: str = "-o") -> str:
    """A short cause for an OSError while writing, naming full disks and read-only filesystems."""
    code = getattr(exc, "errno", None)
    other = f"choose another {flag} path"
    if code == errno.ENOSPC:
        return f"the disk is full: free some space or {other}"
    if code == errno.EROFS:
        return f"the filesystem is read-only: {other}"
    if code == errno.EDQUOT:
        return f"the disk quota is exhausted: free some space or {other}"
    if code == errno.EFBIG:
        return f"the file is larger than allowed (file size limit): {other}"
    if code in (errno.EACCES, errno.EPERM):
        return f"permission denied: {other}"
    if code == errno.ENAMETOOLONG:
        return f"the name is too long for this filesystem: {other}"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return f"{text}: check the {flag} location"


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


def take_lock(path: Path, umask: int, wait: bool) -> int | None:
    """``flock`` an exclusive lock on the file ``path`` (made if missing, never through a link);
    returns its descriptor, or None when another process holds it and ``wait`` is False.
    Release with :func:`drop_lock`, which removes the file: a lock leaves nothing behind.
    Raises OSError when the file cannot be made."""
    import fcntl

    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666 & ~umask)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError:
            os.close(fd)
            return None
        if file_identity(path) == (os.fstat(fd).st_dev, os.fstat(fd).st_ino):
            return fd
        os.close(fd)  # the previous owner removed the file meanwhile: take the new one


def drop_lock(path: Path, fd: int) -> None:
    """Remove the lock file, then release it (a waiter re-checks the file it locked)."""
    try:
        os.unlink(path)
    except OSError:
        pass  # already gone or the folder turned read-only: releasing the lock is what matters
    os.close(fd)


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

    def __init__(self, out: str | os.PathLike, protected: list, overwrite: bool, *, suffixes=VIDEO_OUT_SUFFIXES,
                 folders: bool = True, flag: str = "-o") -> None:
        self.path = Path(out)
        self.protected = list(protected)
        self.overwrite = overwrite
        self._rules = {"suffixes": suffixes, "folders": folders, "flag": flag}
        self.kind = check_output_path(self.path, self.protected, overwrite, **self._rules)
        self.tmp: Path | None = None
        self.committed = False
        self._lock_fd: int | None = None
        self._lock_path = self.path.parent / f"{self._prefix()}lock"
        self._umask = current_umask()

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> OutputTarget:
        self._lock()
        try:
            self._recover_stale()
            check_output_path(self.path, self.protected, self.overwrite, **self._rules)  # again, now under the lock
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
        """``.NAME.tsam-``: what temporaries, the lock and an old folder set aside begin with; a
        hash of the name instead when the name is so long that a temporary's would not fit."""
        name = self.path.name
        if len(os.fsencode(name)) > _LONG_NAME:
            name = hashlib.sha1(os.fsencode(name)).hexdigest()[:16]
        return f".{name}.tsam-"

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
            raise OutputError(f"cannot write to {parent}: {describe_os_error(exc, self._rules['flag'])}") from None

    def write_with(self, write: Callable[[Path], None]) -> None:
        """``write(tmp)`` fills the temporary, then the result is swapped in; an OSError while
        writing (full disk, read-only) becomes one OutputError line."""
        if self.tmp is None:
            raise RuntimeError("write_with() outside the with-block")
        try:
            write(self.tmp)
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: {describe_os_error(exc, self._rules['flag'])}") from None
        self.commit()

    # -- locking -----------------------------------------------------------------------
    def _lock(self) -> None:
        try:
            fd = take_lock(self._lock_path, self._umask, wait=False)
        except OSError as exc:
            raise OutputError(
                f"cannot write to {self.path.parent}: {describe_os_error(exc, self._rules['flag'])}") from None
        if fd is None:
            raise OutputError(
                f"another tsam run is writing {self.path} right now: wait for it to finish or choose another "
                f"{self._rules['flag']} path")
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            drop_lock(self._lock_path, self._lock_fd)
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
        if self.kind == "folder":
            self._mark(self.tmp)
        self._set_modes(self.tmp)
        with signals_held():
            hooks.pause_point("commit")
            try:
                aside = self._swap()
                self.committed = True
                hooks.pause_point("committed")
                self._remove(aside)
            except OSError as exc:
                raise OutputError(f"cannot write {self.path}: {describe_os_error(exc, self._rules['flag'])}") from None

    def _mark(self, folder: Path) -> None:
        """Leave tsam's marker in a folder output, so that a later ``--overwrite`` may replace it."""
        try:
            fd = os.open(folder / MARKER, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o666 & ~self._umask)
            os.close(fd)
        except OSError as exc:
            raise OutputError(f"cannot write {self.path}: {describe_os_error(exc, self._rules['flag'])}") from None

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
