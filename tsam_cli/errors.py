"""Typed errors for user-facing problems, and the one table that maps them to exit codes.

Every error a user can cause (bad path, bad mask, unwritable output, missing weights) is
raised as a subclass of :class:`TsamError`. The CLI catches ``TsamError`` in one place
(``tsam_cli.cli.main``), prints ``error: <message>`` on one line and exits with
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
    """Ctrl-C during a run (shell convention 128 + SIGINT). Partial outputs are removed."""

    exit_code = 130


#: Exit code when some inputs of a batch failed and others succeeded.
EXIT_PARTIAL = 8
