"""Standard streams that cannot stop the work: closed, full or broken stdout/stderr.

Installed by the console entry point (:mod:`tsam_cli.entry`) before anything else runs:

* **Closed descriptors** (``2>&-``): file descriptors 0-2 that are not open are pointed at
  ``/dev/null`` first. Without this the next file tsam opens would *become* descriptor 2, and
  every message of FFmpeg or Python would be written into the user's output file.
* **stderr** carries progress, warnings and errors: nice to have, never worth stopping a run
  for. A write that fails (``2>/dev/full``, ``2>&1 | head -c 10``) silences stderr for the
  rest of the run; the work goes on and the exit code is what it would have been.
* **stdout** carries results (tables, paths). The reader going away (``| head``: EPIPE) is not
  an error: stdout goes quiet and the work goes on. Any other failure (a full disk,
  ``>/dev/full``) loses data the user asked for: an :class:`~tsam_cli.errors.OutputError`
  (exit 5) with one line on stderr, raised at the write or at the final :func:`flush_stdout`.

The guard sits at the lowest level (a raw file object under Python's buffered text layer), so
every writer above it (print, typer/click echo, rich consoles, progress threads) is covered.
"""

from __future__ import annotations

import errno
import io
import os
import sys

from tsam_cli.errors import OutputError


class _GuardedRaw(io.RawIOBase):
    """An unbuffered writer on a descriptor that never lets a failed write escape, except
    (``fatal``) a data-losing one, once, as an OutputError."""

    def __init__(self, fd: int, name: str, fatal: bool) -> None:
        super().__init__()
        self._fd, self.name, self._fatal = fd, name, fatal
        self.broken = False

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def isatty(self) -> bool:
        return not self.broken and os.isatty(self._fd)

    def write(self, data) -> int:
        n = len(data)
        if self.broken:
            return n
        try:
            return os.write(self._fd, data)
        except OSError as exc:
            self._silence()
            if self._fatal and exc.errno != errno.EPIPE:
                raise OutputError(f"cannot write to standard output: {_cause(exc)}") from None
            return n

    def _silence(self) -> None:
        """From now on writes go nowhere (also at interpreter exit, where Python flushes)."""
        self.broken = True
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self._fd)
            os.close(null)
        except OSError:
            pass


def _cause(exc: OSError) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full: free some space or redirect the output elsewhere"
    return f"{exc.strerror or exc}: redirect the output elsewhere"


def ensure_std_fds() -> None:
    """Point descriptors 0, 1 and 2 at /dev/null when they are closed (see the module doc)."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


def _guarded_text(fd: int, old, name: str, fatal: bool) -> io.TextIOWrapper:
    raw = _GuardedRaw(fd, name, fatal)
    encoding = getattr(old, "encoding", None) or "utf-8"
    errors = getattr(old, "errors", None) or "backslashreplace"
    tty = os.isatty(fd)
    stream = io.TextIOWrapper(io.BufferedWriter(raw), encoding=encoding, errors=errors,
                              line_buffering=tty, write_through=not fatal)
    stream.mode = "w"  # what sys.stdout reports; some writers look at it
    return stream


def install() -> None:
    """Replace ``sys.stdout``/``sys.stderr`` by guarded streams (once per process)."""
    ensure_std_fds()
    if not _is_guarded(sys.stdout):
        _flush_quietly(sys.stdout)
        sys.stdout = _guarded_text(1, sys.stdout, "<stdout>", fatal=True)
    if not _is_guarded(sys.stderr):
        _flush_quietly(sys.stderr)
        sys.stderr = _guarded_text(2, sys.stderr, "<stderr>", fatal=False)


def _is_guarded(stream) -> bool:
    return isinstance(getattr(getattr(stream, "buffer", None), "raw", None), _GuardedRaw)


def _flush_quietly(stream) -> None:
    try:
        if stream is not None:
            stream.flush()
    except (OSError, ValueError):
        pass


def flush_stdout() -> None:
    """Push what is buffered for stdout now, so a full disk is reported (OutputError), not lost."""
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass  # an unguarded stream (tests, library use): nothing more to say
