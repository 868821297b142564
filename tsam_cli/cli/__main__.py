"""``python -m tsam_cli.cli ...`` (what torchrun launches): the same as the ``tsam`` command."""

from tsam_cli.entry import run

run()
