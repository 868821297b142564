"""The ``tsam`` console entry point: signal handling from the first line, then the CLI.

SIGINT, SIGTERM and SIGHUP all raise :class:`~tsam_cli.errors.Signalled`; whatever is
being written is cleaned up by its :class:`~tsam_cli.media.output.OutputTarget` and the
process exits with 128 + the signal number (130, 143, 129) after one ``error:`` line.
The handlers are installed before the heavy imports, so a Ctrl-C during start-up gives
the same one line instead of a traceback.
"""

from __future__ import annotations

import signal
import sys

from tsam_cli.errors import Signalled, signal_number

_HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _raise_signalled(signum, _frame) -> None:
    raise Signalled(signum)


def install_signal_handlers() -> None:
    """SIGINT/SIGTERM/SIGHUP -> :class:`Signalled` in the main thread."""
    for sig in _HANDLED:
        signal.signal(sig, _raise_signalled)


def run() -> None:
    """Console script: ``tsam ...``."""
    install_signal_handlers()
    try:
        from tsam_cli import hooks, stdio

        stdio.install()  # closed/full/broken stdout and stderr never stop the work

        hooks.pause_point("startup")
        from tsam_cli.cli.main import main

        code = main()
    except (Signalled, KeyboardInterrupt) as exc:
        sys.stderr.write("error: interrupted during start-up: nothing was written\n")
        code = 128 + signal_number(exc)
    sys.exit(code)


if __name__ == "__main__":
    run()
