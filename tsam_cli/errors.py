"""Typed errors for user-facing problems, and the one table that maps them to exit codes.

Every error a user can cause (bad path, bad mask, unwritable output, missing weights) is
raised as a subclass of :class:`TsamError`. The CLI catches ``TsamError`` in one place
(``tsam_cli.cli.main.main``), prints ``error: <message>`` on one line and exits with
``exit_code``. Anything else is a bug and shows a traceback only with ``--debug``.

Messages name the problem *and* the fix, e.g.
``mask has 40 frames but the video has 80: give a mask with at least 80 frames``.
"""

from __future__ import annotations


class TsamError(Exception):
    """Base class: a problem the user can fix. ``str(err)`` is the one-line message."""

    exit_code = 1


class InputError(TsamError):
    """The input video (or frame folder) is missing, unreadable or empty."""

    exit_code = 3


class MaskError(TsamError):
    """The mask is missing, unreadable, the wrong length, empty or covers everything."""

    exit_code = 4


class OutputError(TsamError):
    """The output path cannot be written (exists, is the input, folder not writable)."""

    exit_code = 5


class UsageError(TsamError):
    """An option value is invalid (e.g. ``--box`` not ``x,y,w,h``)."""

    exit_code = 2


class WeightsError(TsamError):
    """A weight file is missing, corrupt or cannot be downloaded."""

    exit_code = 6


class DatasetError(TsamError):
    """A dataset root is missing or does not have the expected layout."""

    exit_code = 7


class Interrupted(TsamError):
    """A run stopped by a signal: exit code 128 + the signal number (shell convention):
    130 for SIGINT (Ctrl-C), 143 for SIGTERM, 129 for SIGHUP. The message says what is on
    disk: nothing new, or (when the signal came after the swap) the complete output."""

    exit_code = 130

    def __init__(self, message: str, signum: int = 2) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


class Signalled(BaseException):
    """Raised by tsam's handler for SIGINT/SIGTERM/SIGHUP (:mod:`tsam_cli.entry`).

    A ``BaseException`` and not a ``KeyboardInterrupt``: click turns a KeyboardInterrupt
    into "Aborted!" with exit code 1, and ``except Exception`` must not swallow it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


#: what stops a run from outside: a signal through tsam's handler, or Ctrl-C without it
STOP_SIGNALS = (Signalled, KeyboardInterrupt)


def signal_number(exc: BaseException) -> int:
    """The signal behind a :data:`STOP_SIGNALS` exception (SIGINT for a bare KeyboardInterrupt)."""
    return getattr(exc, "signum", 2)


#: Exit code when some inputs of a batch failed and others succeeded.
EXIT_PARTIAL = 8
